#!/usr/bin/env node
// Starts tslab from the project root, whatever folder Jupyter starts the kernel in: tslab only compiles files under
// its working directory, so `import ... from "./lib/pipeline"` in notebooks/main.ipynb needs the root as cwd.
"use strict";
const path = require("node:path");
const root = path.resolve(__dirname, "..");
process.chdir(root);
const tslabMain = require.resolve("tslab/dist/main.js", { paths: [root] });
process.argv = [process.argv[0], tslabMain, ...process.argv.slice(2)];
require(tslabMain).main();
