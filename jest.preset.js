// Shared Jest settings: TypeScript through ts-jest (transpile only; `npm run
// build` type-checks), and the libraries resolved to their sources.
const { join } = require('node:path');

const libs = ['contracts', 'config', 'messaging', 'runtime', 'testing', 'telemetry', 'operations'];

module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: join(__dirname, 'tsconfig.spec.json') }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: Object.fromEntries(libs.map((l) => [`^@mesh/${l}$`, join(__dirname, 'libs', l, 'src', 'index.ts')])),
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
  testTimeout: 30000,
};
