module.exports = { ...require('../../jest.preset.js'), displayName: 'mesh-cli', rootDir: __dirname };
