module.exports = { ...require('../../jest.preset.js'), displayName: 'processor', rootDir: __dirname };
