// The project root, found from wherever this module runs: compiled (dist/lib/*.js) or as source under tslab
// (lib/*.ts). Walking up to the package.json that names this project works for both, where a fixed "../.."
// would be right for only one of them.
import * as fs from "node:fs";
import * as path from "node:path";

export const PROJECT_NAME = "cellmorphotem";

/** Nearest ancestor of `startDir` (itself included) holding a package.json whose name is "cellmorphotem". */
export function projectRoot(startDir: string = __dirname): string {
  let dir = path.resolve(startDir);
  for (;;) {
    if (isProjectRoot(dir)) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`no ${PROJECT_NAME} project root above ${startDir}: no package.json with "name": "${PROJECT_NAME}"`);
    }
    dir = parent;
  }
}

function isProjectRoot(dir: string): boolean {
  const manifest = path.join(dir, "package.json");
  if (!fs.existsSync(manifest)) return false;
  try {
    return (JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: unknown }).name === PROJECT_NAME;
  } catch {
    return false; // an unreadable or malformed package.json belongs to no project of ours; keep climbing
  }
}
