#!/usr/bin/env node
// Entry point of `npx cellmorpho`: runs the compiled CLI (built by `npm ci` / `npm run build` into dist/).
"use strict";
const path = require("node:path");
const fs = require("node:fs");
const cli = path.join(__dirname, "..", "dist", "lib", "cli.js");
if (!fs.existsSync(cli)) {
  console.error("cellmorpho: the TypeScript sources are not built yet; run `npm run build` in " + path.dirname(__dirname));
  process.exit(1);
}
require(cli).main(process.argv.slice(2)).then((code) => process.exit(code));
