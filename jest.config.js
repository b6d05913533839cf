// `npm test`: every project's unit and integration tests, then the
// end-to-end tests in test/. Integration and e2e tests start their own
// nats-server on an ephemeral port; none touches a server on 4222.
module.exports = {
  projects: [
    '<rootDir>/libs/contracts',
    '<rootDir>/libs/config',
    '<rootDir>/libs/messaging',
    '<rootDir>/libs/runtime',
    '<rootDir>/libs/testing',
    '<rootDir>/libs/telemetry',
    '<rootDir>/libs/operations',
    '<rootDir>/services/ingest',
    '<rootDir>/services/router',
    '<rootDir>/services/processor',
    '<rootDir>/services/aggregator',
    '<rootDir>/services/sink',
    '<rootDir>/services/console',
    '<rootDir>/tools/mesh',
    '<rootDir>/tools/dev',
    '<rootDir>/test/fixtures/payouts',
    '<rootDir>/test',
  ],
  maxWorkers: 2,
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/tools/jest-summary-reporter.js'],
};
