// `npm run test:unit`: the unit tests alone, in seconds. Every project's
// *.spec.ts except the integration tests (*.int.spec.ts, which start
// nats-server) and the end-to-end tests in test/ (which start the services).
const all = require('./jest.config.js');

module.exports = {
  ...all,
  projects: all.projects
    .filter((dir) => !dir.endsWith('/test'))
    .map((dir) => {
      const project = require(`${dir.replace('<rootDir>', __dirname)}/jest.config.js`);
      return { ...project, testPathIgnorePatterns: ['/node_modules/', '\\.int\\.spec\\.ts$'] };
    }),
};
