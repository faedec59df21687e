#!/usr/bin/env node
// The `vigil` command: runs the compiled CLI in this process, so signals reach the server directly.
require('../dist/src/cli/main.js');
