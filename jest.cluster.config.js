// `npm run test:cluster`: the whole e2e suite (but for the specs jest.projects.js lists as never on
// a Cluster, and why) against a real 3-master Redis Cluster that the run starts and stops itself.
// `npm test` runs a chosen part of it (jest.projects.js, ON_THE_CLUSTER_IN_NPM_TEST).
const { cluster, TEST_TIMEOUT_MS } = require('./jest.projects');

module.exports = { ...cluster({ whole: true }), maxWorkers: 2, testTimeout: TEST_TIMEOUT_MS };
