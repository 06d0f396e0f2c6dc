// `npm test`: unit specs and the e2e suite on one Redis (project "redis"), and the specs whose
// subject is what a Redis Cluster changes on a 3-master Cluster the run starts (project "cluster");
// jest.projects.js defines both. `npm run test:cluster` runs the whole e2e suite on the Cluster.
const { main, cluster, TEST_TIMEOUT_MS } = require('./jest.projects');

module.exports = {
  projects: [main, cluster({ whole: false })],
  // Three workers on a 2-core machine: test/netlab-presence.e2e-spec.ts goes first and holds one
  // for about 5.5 minutes, mostly waiting on timers and links; everything else, both projects,
  // goes through the other two meanwhile.
  maxWorkers: 3,
  testTimeout: TEST_TIMEOUT_MS,
  testSequencer: '<rootDir>/test/support/sequencer.cjs',
};
