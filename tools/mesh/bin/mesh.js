#!/usr/bin/env node
// `npx mesh` (the workspace links this file as the `mesh` command): runs the
// built CLI. A committed, executable shim rather than dist/main.js itself,
// which is not there before the first build and not executable after it.
try {
  require.resolve('../dist/main.js');
} catch {
  process.stderr.write("mesh: the CLI is not built yet; run 'npm run build' first\n");
  process.exit(1);
}
require('../dist/main.js');
