/**
 * Runs first in every file of the cluster project: its specs see the run's Cluster as
 * TEST_REDIS_CLUSTER_NODES (testClusterNodes(), clusterSwitch()). The cluster project's global setup
 * leaves it in TEST_CLUSTER_PROJECT_NODES, so that files of the redis project, which run in the same
 * workers, keep one Redis: Jest gives each test file its own copy of process.env.
 */
if (process.env.TEST_CLUSTER_PROJECT_NODES) process.env.TEST_REDIS_CLUSTER_NODES = process.env.TEST_CLUSTER_PROJECT_NODES;
