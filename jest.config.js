/** Unit and integration tests run from the TypeScript sources; end-to-end tests drive the built CLI. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 120000,
  cacheDirectory: '<rootDir>/node_modules/.cache/jest',
};
