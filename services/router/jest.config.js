module.exports = { ...require('../../jest.preset.js'), displayName: 'router', rootDir: __dirname };
