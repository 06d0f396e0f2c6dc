// `npm run test:cluster`: a chosen set of e2e specs against a real 3-master Redis Cluster that the
// run starts and stops itself (test/support/cluster-global-setup.ts). Gateways the specs start with
// `REDIS_URL: testRedisUrl()` go to the cluster instead (test/support/redis.ts clusterSwitch), and
// the specs' own checks use testRedis()/deviceKey(). The set covers heartbeats and sweeping
// (gateway), publishes to devices, users and topics across instances, takeover and kill -9
// (scale-out, process), deliveries and acks (delivery), events (events), and the cluster-only
// checks: key spread, the sharded adapter and mailboxes, a replica failover (redis-cluster,
// cluster-transport).
const base = require('./jest.config.js');

const CLUSTER_SPECS = ['redis-cluster', 'cluster-transport', 'gateway', 'scale-out', 'delivery', 'events', 'process'];

module.exports = {
  ...base,
  roots: ['<rootDir>/test'],
  testPathIgnorePatterns: ['/node_modules/'],
  testMatch: CLUSTER_SPECS.map((name) => `<rootDir>/test/${name}.e2e-spec.ts`),
  globalSetup: '<rootDir>/test/support/cluster-global-setup.ts',
  globalTeardown: '<rootDir>/test/support/cluster-global-teardown.ts',
  testSequencer: undefined,
  testTimeout: 30000,
};
