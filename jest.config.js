/** Unit and integration tests run from the TypeScript sources; end-to-end tests drive the built CLI. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 120000,
  // Two files at a time: end-to-end files mostly wait on their labs (each in namespaces and cgroups
  // of its own prefix), so a second worker halves the suite's time on 2 cores (24.5 -> 15 min).
  maxWorkers: 2,
  cacheDirectory: '<rootDir>/node_modules/.cache/jest',
};
