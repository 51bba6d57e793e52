// Jest loads a reporter as it is, untransformed: this one is TypeScript, loaded through tsx, whose
// hooks are removed again at once (Jest's own transform compiles everything else).
const { register } = require('tsx/cjs/api');

const unregister = register();
try {
  module.exports = require('./log-reporter.ts').default;
} finally {
  unregister();
}
