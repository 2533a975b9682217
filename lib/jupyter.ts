// Jupyter plumbing: register the project's tslab kernel and execute a notebook headless with nbconvert.
// Debian's Jupyter lives under /usr/bin/python3 (the PATH python may be another interpreter without it).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeJsonAtomic } from "./atomic";
import { projectRoot } from "./paths";

export const KERNEL_NAME = "cellmorphotem";

/** The python that has Jupyter: $CELLMORPHO_PYTHON, else Debian's /usr/bin/python3, else python3 on PATH. */
export function jupyterPython(): string {
  const candidates = [process.env.CELLMORPHO_PYTHON, "/usr/bin/python3", "python3"].filter((p): p is string => !!p);
  for (const python of candidates) {
    const probe = spawnSync(python, ["-c", "import nbconvert, nbclient, jupyter_client"], { stdio: "ignore" });
    if (probe.status === 0) return python;
  }
  throw new Error("no Python with Jupyter found: install Debian's jupyter-nbconvert python3-nbclient jupyter-client " +
    "python3-ipykernel (or `pip install jupyterlab`), or set CELLMORPHO_PYTHON (see environment.md)");
}

/** The kernel spec: node starts bin/tslab-kernel.js, which moves to the project root before starting tslab. */
export function kernelSpec(root = projectRoot()): Record<string, unknown> {
  return {
    argv: [process.execPath, path.join(root, "bin", "tslab-kernel.js"), "kernel", "--config-path", "{connection_file}"],
    display_name: "CellMorphoTEM (TypeScript)",
    language: "typescript",
  };
}

function run(python: string, args: string[], what: string): void {
  const result = spawnSync(python, args, { stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0) {
    throw new Error(`${what} failed (exit ${result.status ?? result.signal}): ${python} ${args.join(" ")}`);
  }
}

/** Registers the kernel for the current user (`jupyter kernelspec install --user`). Returns the python used. */
export function installKernel(root = projectRoot()): string {
  const python = jupyterPython();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellmorpho-kernel-"));
  const specDir = path.join(dir, KERNEL_NAME);
  try {
    writeJsonAtomic(path.join(specDir, "kernel.json"), kernelSpec(root));
    run(python, ["-m", "jupyter", "kernelspec", "install", "--user", "--name", KERNEL_NAME, specDir], "kernel install");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return python;
}

export interface ExecuteOptions {
  notebook: string;
  outDir: string;
  /** Environment for the kernel (the notebook's parameter cell reads CELLMORPHO_* variables). */
  env?: NodeJS.ProcessEnv;
  timeoutSeconds?: number;
  /** Also export the executed notebook to HTML (default true). */
  html?: boolean;
}

/** Starts EXECUTE_SCRIPT's report of a failed cell on stderr, after whatever the kernel logged there. */
const FAILED_MARK = "[cellmorpho: notebook cell failed]";

/**
 * Runs every cell with nbclient (what `nbconvert --execute` uses) and writes the executed notebook. On a failing cell
 * it still writes the notebook as far as it ran and exits 3 after printing that cell's source and error output:
 * tslab reports an error's text on the cell's stderr stream, not in the error reply, so nbconvert's own message
 * ("CellExecutionError ... <Error>:") would say nothing about what went wrong.
 */
const EXECUTE_SCRIPT = `
import sys
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

source, target, kernel, timeout, cwd = sys.argv[1:6]
FAILED_MARK = "${FAILED_MARK}"

class Client(NotebookClient):
    running = None
    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        self.running = cell_index
        return await super().async_execute_cell(cell, cell_index, *args, **kwargs)

nb = nbformat.read(source, as_version=4)
client = Client(nb, kernel_name=kernel, timeout=int(timeout), resources={"metadata": {"path": cwd}})
try:
    client.execute()
except CellExecutionError as err:
    nbformat.write(nb, target)
    cell = nb.cells[client.running]
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stderr")
    text += "".join(o.get("ename", "") + ": " + o.get("evalue", "") + "\\n" for o in cell.get("outputs", []) if o.get("output_type") == "error")
    sys.stderr.write("%s cell %d failed:\\n%s\\n--- its error output ---\\n%s\\n" % (FAILED_MARK, client.running, cell.source, text.strip() or str(err)))
    sys.exit(3)
nbformat.write(nb, target)
`;

/** Exit status of EXECUTE_SCRIPT when a cell failed (the notebook as far as it ran is written). */
const CELL_FAILED = 3;

/**
 * Executes a notebook with the project kernel; a failing cell fails the run, with that cell's source and error text
 * in the Error (no --allow-errors: with it tslab silently skips the next cell). Returns the executed .ipynb and,
 * if asked, the .html report.
 */
export function executeNotebook(options: ExecuteOptions): { ipynb: string; html?: string } {
  const python = jupyterPython();
  const base = path.basename(options.notebook, ".ipynb");
  fs.mkdirSync(options.outDir, { recursive: true });
  const executed = path.join(options.outDir, `${base}.executed.ipynb`);
  const result = spawnSync(python, [
    "-c", EXECUTE_SCRIPT, options.notebook, executed, KERNEL_NAME, String(options.timeoutSeconds ?? 3600),
    path.dirname(path.resolve(options.notebook)),
  ], { stdio: ["ignore", "inherit", "pipe"], env: { ...process.env, ...options.env }, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    const stderr = result.stderr ?? "";
    const detail = result.status === CELL_FAILED
      ? stderr.slice(stderr.indexOf(FAILED_MARK) + FAILED_MARK.length).trim() + `\n(the notebook as far as it ran: ${executed})`
      : stderr.split("\n").slice(-40).join("\n");
    throw new Error(`notebook ${options.notebook} failed to execute (exit ${result.status ?? result.signal}):\n${detail}`);
  }
  if (options.html === false) return { ipynb: executed };
  run(python, ["-m", "nbconvert", "--log-level=WARN", "--to", "html", "--output-dir", options.outDir, "--output", base, executed],
    "HTML export");
  return { ipynb: executed, html: path.join(options.outDir, `${base}.html`) };
}
