/** ltx and @xmpp/* ship ESM only; ts-jest turns them into CommonJS like our own code. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { allowJs: true, isolatedModules: true, module: 'commonjs', moduleResolution: 'node10', ignoreDeprecations: '6.0', esModuleInterop: true } }],
  },
  // Our sources import './x.js' as Node ESM resolution asks; jest finds the .ts beside it.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transformIgnorePatterns: ['/node_modules/(?!(ltx|@xmpp)/)'],
  globalSetup: '<rootDir>/test/global-setup.cjs',
  testTimeout: 20000,
  maxWorkers: 2,
};
