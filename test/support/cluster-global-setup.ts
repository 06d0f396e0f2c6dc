import globalSetup from './global-setup';
import { startRedisCluster } from './redis-servers';

/**
 * The cluster project: the usual Redis (TEST_REDIS_URL, for specs that need a plain one), plus a
 * 3-master Redis Cluster on loopback for this run, stopped in cluster-global-teardown by process
 * id. Its node list goes to TEST_CLUSTER_PROJECT_NODES, which test/support/cluster-env.ts hands to
 * the project's files as TEST_REDIS_CLUSTER_NODES. A cluster given in TEST_REDIS_CLUSTER_NODES is
 * used as is.
 */
export default async function clusterGlobalSetup(): Promise<void> {
  if (!process.env.TEST_REDIS_URL) await globalSetup();
  if (process.env.TEST_CLUSTER_PROJECT_NODES) return;
  if (process.env.TEST_REDIS_CLUSTER_NODES) {
    process.env.TEST_CLUSTER_PROJECT_NODES = process.env.TEST_REDIS_CLUSTER_NODES;
    return;
  }
  const cluster = await startRedisCluster({ masters: 3 });
  for (const node of cluster.nodes) node.process?.unref();
  process.env.TEST_CLUSTER_PROJECT_NODES = cluster.spec;
  process.env.TEST_REDIS_CLUSTER_PIDS = cluster.nodes.map((n) => n.process?.pid).join(',');
}
