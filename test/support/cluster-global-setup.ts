import globalSetup from './global-setup';
import { startRedisCluster } from './redis-servers';

/**
 * `npm run test:cluster`: the usual Redis (TEST_REDIS_URL, for specs that need a plain one), plus a
 * 3-master Redis Cluster on loopback for this run (TEST_REDIS_CLUSTER_NODES), stopped in
 * cluster-global-teardown by process id. A cluster given in TEST_REDIS_CLUSTER_NODES is used as is.
 */
export default async function clusterGlobalSetup(): Promise<void> {
  await globalSetup();
  if (process.env.TEST_REDIS_CLUSTER_NODES) return;
  const cluster = await startRedisCluster({ masters: 3 });
  for (const node of cluster.nodes) node.process?.unref();
  process.env.TEST_REDIS_CLUSTER_NODES = cluster.spec;
  process.env.TEST_REDIS_CLUSTER_PIDS = cluster.nodes.map((n) => n.process?.pid).join(',');
}
