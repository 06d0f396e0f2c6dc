// The two Jest projects (jest.config.js runs both in one `npm test`; jest.cluster.config.js runs the
// cluster one over the whole e2e suite for `npm run test:cluster`).
//
// Nest 12 ships ESM only and Jest on Node 20 cannot require ESM, so @swc/jest also compiles the
// ESM-only packages under node_modules to CommonJS (see shared STACK.md).
const esmOnly = [
  '@nestjs', 'file-type', '@tokenizer', 'strtok3', 'token-types', 'uint8array-extras', '@borewit',
  '@standard-schema',
];
const swc = ['@swc/jest', {
  jsc: {
    target: 'es2022',
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    keepClassNames: true,
  },
  module: { type: 'commonjs' },
}];

const shared = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: { '^.+\\.(t|j|mj)s$': swc },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
};

/** Unit specs and the e2e suite on one Redis (TEST_REDIS_URL, test/support/global-setup.ts). */
const main = {
  ...shared,
  displayName: 'redis',
  roots: ['<rootDir>/src', '<rootDir>/test', '<rootDir>/client/src'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  // The cluster-only specs run in the cluster project, against the cluster it starts.
  testPathIgnorePatterns: ['/node_modules/', '/test/(redis-cluster|cluster-transport)\\.e2e-spec\\.ts$'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
};

/** Jest takes the test timeout from the top-level config only; the cluster project raises it in its files. */
const TEST_TIMEOUT_MS = 20_000;

/**
 * E2e specs whose subject is not a gateway on a shared Redis, so never on the Cluster: another
 * deployment (Sentinel failover, the embedded first run, docker-compose, nginx, Prometheus), the
 * browser and SDK packaging, network namespaces (netlab: link faults, not storage), a socket's own
 * buffers and heap under a flood (slow-consumer: 40 s of load, nothing stored), the docs and README
 * checks, and the simulation (which has its own `--cluster` run).
 */
const NOT_ON_A_CLUSTER = [
  'redis-failover', 'first-run', 'deploy-', 'browser', 'console', 'sdk-package', 'netlab', 'slow-consumer',
  'openapi', 'readme-snippets', 'simulate',
];

/**
 * The specs `npm test` also runs on the Cluster: those whose subject is what the Cluster changes
 * (partitioned keys and scripts, the expiry index and sweeping, leases, event floors, fan-out and
 * takeover across instances, kill -9, uncertain writes, the rate limit inside the publish). The rest
 * of the 30 run there with `npm run test:cluster`: HTTP limits, schema and fuzz checks, budgets, the
 * SDK, webhooks (which has its own Cluster test in the redis project), and those whose subject a
 * Cluster does not change and whose storage steps the specs above already take there: data
 * fidelity, closing connections, token lifetimes, native push (its crash takeover stays), network
 * learning, the process's start checks (kill -9 stays, in redis-cluster and scale-out). Left out
 * for CI's time: on 2 cores under the suite's load they took some 150 worker-seconds.
 */
const ON_THE_CLUSTER_IN_NPM_TEST = [
  'redis-cluster', 'cluster-transport', 'events', 'delivery', 'rest', 'gateway', 'scale-out',
  'notification-events', 'push-fallback-crash', 'uncertain-writes', 'pending-acks', 'rest-rate-limits',
];

/**
 * The e2e suite against a real 3-master Redis Cluster that the run starts and stops itself
 * (test/support/cluster-global-setup.ts). In its files (test/support/cluster-env.ts), gateways the
 * specs start with `REDIS_URL: testRedisUrl()` go to the cluster instead (clusterSwitch), and the
 * specs' own checks use testRedis()/testKeys()/deviceKey(), and eventsSettled() before reading the
 * pull API (on a Cluster an event shows there once every partition's floor has passed it).
 */
function cluster({ whole }) {
  return {
    ...shared,
    displayName: 'cluster',
    roots: ['<rootDir>/test'],
    testMatch: whole ? ['<rootDir>/test/**/*.e2e-spec.ts'] : ON_THE_CLUSTER_IN_NPM_TEST.map((name) => `<rootDir>/test/${name}.e2e-spec.ts`),
    testPathIgnorePatterns: ['/node_modules/', ...NOT_ON_A_CLUSTER.map((name) => `/test/${name}[^/]*\\.e2e-spec\\.ts$`)],
    globalSetup: '<rootDir>/test/support/cluster-global-setup.ts',
    globalTeardown: '<rootDir>/test/support/cluster-global-teardown.ts',
    setupFiles: ['<rootDir>/test/support/cluster-env.ts'],
    // A round trip per partition and the event floors: 30 s per test (test/support/cluster-timeout.ts).
    setupFilesAfterEnv: ['<rootDir>/test/support/cluster-timeout.ts'],
  };
}

module.exports = { main, cluster, TEST_TIMEOUT_MS, ON_THE_CLUSTER_IN_NPM_TEST, NOT_ON_A_CLUSTER };
