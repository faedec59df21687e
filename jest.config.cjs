/** ltx and @xmpp/* ship ESM only; ts-jest turns them into CommonJS like our own code. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { allowJs: true, isolatedModules: true, module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(ltx|@xmpp)/)'],
  testTimeout: 20000,
  maxWorkers: 2,
};
