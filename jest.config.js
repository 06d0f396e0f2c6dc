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

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test', '<rootDir>/client/src'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  // Cluster-only specs run in `npm run test:cluster` (jest.cluster.config.js), against the cluster it starts.
  testPathIgnorePatterns: ['/node_modules/', '/test/(redis-cluster|cluster-transport)\\.e2e-spec\\.ts$'],
  transform: { '^.+\\.(t|j|mj)s$': swc },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 20000,
  // Two workers on a 2-core machine: test/netlab-presence.e2e-spec.ts goes first and holds one for
  // about 5.5 minutes, mostly waiting on timers and links; everything else runs through the other.
  maxWorkers: 2,
  testSequencer: '<rootDir>/test/support/sequencer.cjs',
};
