// The ONE place that chooses TensorFlow.js's backend.
//
// TensorFlow.js keeps a single engine per process (tf.engine() lives on the global object), and every tensor
// belongs to the engine's current backend. Switching backends after tensors exist silently migrates them, so
// the choice is made once per process, here, and memoised: every TF.js-based encoder calls initTfjs() and gets
// the same runtime. Order of preference: tfjs-node-gpu, tfjs-node (native TensorFlow, optional peer deps),
// wasm, then the pure-JS cpu backend.
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";

export interface TfjsRuntime {
  tf: typeof import("@tensorflow/tfjs");
  backend: string;
  device: "cpu" | "gpu";
}

type Log = (msg: string) => void;

/** A backend candidate: how to make it available, tried in order. */
interface Candidate {
  name: string;
  /** Registers the backend with tf (or throws saying why it cannot). Returns the tf backend name to activate. */
  register(): string;
}

const NATIVE_BACKEND = "tensorflow";

/**
 * Loads a native tfjs-node package. The project's package.json aliases "@tensorflow/tfjs-node" to plain
 * @tensorflow/tfjs for danfojs, so a successful require() proves nothing: the "tensorflow" backend must
 * actually have been registered.
 */
function registerNative(pkg: string): string {
  require(pkg);
  if (tf.findBackendFactory(NATIVE_BACKEND) === null) {
    throw new Error(`${pkg} loaded but registered no "${NATIVE_BACKEND}" backend (not the native package)`);
  }
  return NATIVE_BACKEND;
}

function registerWasm(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wasm = require("@tensorflow/tfjs-backend-wasm") as typeof import("@tensorflow/tfjs-backend-wasm");
  // In Node the .wasm binaries are read from disk, not fetched: point the backend at its own dist/ folder.
  const distDir = path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
  wasm.setWasmPaths(distDir + path.sep);
  return "wasm";
}

const CANDIDATES: readonly Candidate[] = [
  { name: "tfjs-node-gpu", register: () => registerNative("@tensorflow/tfjs-node-gpu") },
  { name: "tfjs-node", register: () => registerNative("@tensorflow/tfjs-node") },
  { name: "wasm", register: registerWasm },
  { name: "cpu", register: () => "cpu" },
];

export const TFJS_BACKEND_NAMES: readonly string[] = CANDIDATES.map((c) => c.name);

/** The native backend knows whether TensorFlow placed ops on a GPU; every other backend here runs on the CPU. */
function deviceOf(backendName: string): "cpu" | "gpu" {
  if (backendName !== NATIVE_BACKEND) return "cpu";
  const backend = tf.backend() as unknown as { isUsingGpuDevice?: boolean };
  return backend.isUsingGpuDevice === true ? "gpu" : "cpu";
}

async function activate(candidate: Candidate): Promise<TfjsRuntime> {
  const tfName = candidate.register();
  const ok = await tf.setBackend(tfName);
  if (!ok) throw new Error(`tf.setBackend("${tfName}") returned false`);
  await tf.ready();
  return { tf, backend: tf.getBackend(), device: deviceOf(tfName) };
}

async function choose(log: Log, prefer: string | undefined): Promise<TfjsRuntime> {
  const candidates = prefer === undefined ? CANDIDATES : CANDIDATES.filter((c) => c.name === prefer);
  const failures: string[] = [];
  for (const candidate of candidates) {
    try {
      const runtime = await activate(candidate);
      log(`TF.js backend: ${runtime.backend} (${candidate.name}, device ${runtime.device})` +
        (failures.length > 0 ? `; skipped ${failures.join("; ")}` : ""));
      return runtime;
    } catch (err) {
      failures.push(`${candidate.name}: ${firstLine(err)}`);
    }
  }
  throw new Error(`no TF.js backend could be initialised: ${failures.join("; ")}`);
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split("\n")[0];
}

// Process-wide by necessity: it mirrors tfjs's own process-wide engine (see the header comment).
let chosen: { prefer: string | undefined; runtime: Promise<TfjsRuntime> } | null = null;

/**
 * Initialises TensorFlow.js once per process and returns the runtime every TF.js encoder shares.
 * `prefer` forces one backend ("tfjs-node-gpu", "tfjs-node", "wasm" or "cpu"), failing if it cannot start;
 * it only has effect on the first call, and a later call preferring a different backend is an error because
 * the process's engine is already committed.
 */
export async function initTfjs(log: Log = () => undefined, prefer?: string): Promise<TfjsRuntime> {
  if (prefer !== undefined && !TFJS_BACKEND_NAMES.includes(prefer)) {
    throw new Error(`unknown TF.js backend "${prefer}"; valid: ${TFJS_BACKEND_NAMES.join(", ")}`);
  }
  if (chosen === null) {
    const runtime = choose(log, prefer);
    chosen = { prefer, runtime };
    // A failed start must not poison the process: let a later call try again.
    runtime.catch(() => { chosen = null; });
  }
  const runtime = await chosen.runtime;
  if (prefer !== undefined && prefer !== chosen.prefer && !matches(runtime, prefer)) {
    throw new Error(`TF.js already runs on "${runtime.backend}" in this process (tfjs has one global engine); ` +
      `cannot switch to "${prefer}"`);
  }
  return runtime;
}

/** Whether an already-running runtime is what `prefer` would have chosen. */
function matches(runtime: TfjsRuntime, prefer: string): boolean {
  if (prefer === "tfjs-node" || prefer === "tfjs-node-gpu") return runtime.backend === NATIVE_BACKEND;
  return runtime.backend === prefer;
}
