module.exports = { ...require('../../jest.preset.js'), displayName: 'sink', rootDir: __dirname };
