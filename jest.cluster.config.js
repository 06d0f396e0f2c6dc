// `npm run test:cluster`: the e2e suite against a real 3-master Redis Cluster that the run starts
// and stops itself (test/support/cluster-global-setup.ts). Gateways the specs start with
// `REDIS_URL: testRedisUrl()` go to the cluster instead (test/support/redis.ts clusterSwitch), and
// the specs' own checks use testRedis()/testKeys()/deviceKey(), and eventsSettled() before reading
// the pull API (on a Cluster an event shows there once every partition's floor has passed it).
//
// Every e2e spec runs here except those whose subject is not a gateway on a shared Redis: another
// deployment (Sentinel failover, the embedded first run, docker-compose, nginx, Prometheus), the
// browser and SDK packaging, network namespaces (netlab: link faults, not storage), a socket's
// own buffers and heap under a flood (slow-consumer: 40 s of load, nothing stored), the docs and
// README checks, and the simulation (which has its own `--cluster` run).
const base = require('./jest.config.js');

const NOT_ON_A_CLUSTER = [
  'redis-failover',
  'first-run',
  'deploy-',
  'browser',
  'console',
  'sdk-package',
  'netlab',
  'slow-consumer',
  'openapi',
  'readme-snippets',
  'simulate',
];

module.exports = {
  ...base,
  roots: ['<rootDir>/test'],
  testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', ...NOT_ON_A_CLUSTER.map((name) => `/test/${name}[^/]*\\.e2e-spec\\.ts$`)],
  globalSetup: '<rootDir>/test/support/cluster-global-setup.ts',
  globalTeardown: '<rootDir>/test/support/cluster-global-teardown.ts',
  testSequencer: undefined,
  testTimeout: 30000,
};
