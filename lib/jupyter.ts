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
    const probe = spawnSync(python, ["-c", "import nbconvert, jupyter_client"], { stdio: "ignore" });
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

/**
 * Executes a notebook with nbconvert and the project kernel; a failing cell fails the run (no --allow-errors:
 * with it tslab silently skips the next cell). Returns the executed .ipynb and, if asked, the .html report.
 */
export function executeNotebook(options: ExecuteOptions): { ipynb: string; html?: string } {
  const python = jupyterPython();
  const base = path.basename(options.notebook, ".ipynb");
  fs.mkdirSync(options.outDir, { recursive: true });
  const executed = path.join(options.outDir, `${base}.executed.ipynb`);
  const common = ["-m", "nbconvert", "--log-level=WARN"];
  const result = spawnSync(python, [
    ...common, "--to", "notebook", "--execute",
    `--ExecutePreprocessor.kernel_name=${KERNEL_NAME}`,
    `--ExecutePreprocessor.timeout=${options.timeoutSeconds ?? 3600}`,
    "--output-dir", options.outDir, "--output", path.basename(executed), options.notebook,
  ], { stdio: ["ignore", "inherit", "pipe"], env: { ...process.env, ...options.env }, encoding: "utf8" });
  if (result.status !== 0) {
    const tail = (result.stderr ?? "").split("\n").slice(-40).join("\n");
    throw new Error(`notebook ${options.notebook} failed to execute (exit ${result.status ?? result.signal}):\n${tail}`);
  }
  if (options.html === false) return { ipynb: executed };
  run(python, [...common, "--to", "html", "--output-dir", options.outDir, "--output", base, executed], "HTML export");
  return { ipynb: executed, html: path.join(options.outDir, `${base}.html`) };
}
