// Where an onnxruntime session runs. onnxruntime-node's InferenceSession.run() executes synchronously on the thread
// that calls it (its promise only defers the start with setImmediate): on the main thread it freezes the event loop
// for the whole call, so the next batch's decoding waits and a second session cannot run at the same time. A
// session hosted in a worker thread leaves the main thread free; the main-thread host stays for comparison
// (npm run bench -- --variants) and for when the worker script cannot be found.
import * as fs from "node:fs";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { projectRoot } from "./paths";

type Ort = typeof import("onnxruntime-node");
type SessionOptions = import("onnxruntime-node").InferenceSession.SessionOptions;

export type Provider = "cpu" | "cuda";
export type SessionThread = "worker" | "main";

/** A loaded model that maps one float32 input tensor to one float32 output tensor. */
export interface SessionHost {
  readonly thread: SessionThread;
  /** Runs the model on `input` with shape `dims`; resolves to the output tensor's values. */
  run(input: Float32Array, dims: readonly number[]): Promise<Float32Array>;
  release(): Promise<void>;
}

export interface SessionSpec {
  model: Uint8Array;
  provider: Provider;
  threads: number;
  inputName: string;
  outputName: string;
}

export function sessionOptions(provider: Provider, threads: number): SessionOptions {
  return {
    executionProviders: [provider],
    intraOpNumThreads: threads,
    graphOptimizationLevel: "all",
    // Spinning threads burn the cores that decoding and the other channel's session need while they wait.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
}

/** Checks a session's output and returns its values; shared by both hosts so they fail with the same message. */
export function outputValues(output: { type: string; dims: readonly number[]; data: unknown } | undefined,
  name: string): Float32Array {
  if (output === undefined) throw new Error(`onnxruntime returned no output named "${name}"`);
  if (!(output.data instanceof Float32Array)) {
    throw new Error(`onnxruntime returned ${output.type} [${output.dims}] for "${name}", expected float32`);
  }
  return output.data;
}

// ---------------------------------------------------------------------------------------------------------------
// Main thread

export async function openMainThreadSession(ort: Ort, spec: SessionSpec): Promise<SessionHost> {
  const session = await ort.InferenceSession.create(spec.model, sessionOptions(spec.provider, spec.threads));
  return {
    thread: "main",
    async run(input, dims) {
      const outputs = await session.run({ [spec.inputName]: new ort.Tensor("float32", input, dims) });
      return outputValues(outputs[spec.outputName], spec.outputName);
    },
    release: () => session.release(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Worker thread. Messages between the two sides:

export type ToWorker =
  /** First message. Not workerData: the worker would keep that copy of the model for its whole life. */
  | { kind: "init"; spec: SessionSpec }
  | { kind: "run"; id: number; input: Float32Array; dims: number[] }
  | { kind: "release" };

export type FromWorker =
  | { kind: "ready" }
  | { kind: "result"; id: number; values: Float32Array }
  | { kind: "error"; id: number; message: string }
  /** The session itself could not be loaded. */
  | { kind: "failed"; message: string };

const WORKER_SCRIPT = "onnxSessionWorker.js";

/**
 * The compiled worker script: beside this module when it runs from dist/, else (lib/*.ts run as source, as tslab
 * does) in the project's dist/lib. Null when neither exists, i.e. the project was never built.
 */
export function findWorkerScript(): string | null {
  const candidates = [path.join(__dirname, WORKER_SCRIPT)];
  try {
    candidates.push(path.join(projectRoot(__dirname), "dist", "lib", WORKER_SCRIPT));
  } catch {
    // no project root above this module: only the sibling file can exist
  }
  return candidates.find((file) => fs.existsSync(file)) ?? null;
}

interface Pending {
  resolve(values: Float32Array): void;
  reject(err: Error): void;
}

class WorkerSession implements SessionHost {
  readonly thread = "worker" as const;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Set once the worker is gone or failing: every later call rejects with it. */
  private failure: Error | null = null;
  private releasing = false;
  private readonly exited: Promise<void>;

  constructor(private readonly worker: Worker) {
    this.exited = new Promise((resolve) => worker.once("exit", (code) => {
      this.fail(new Error(`onnxruntime worker is gone (exit code ${code})`));
      resolve();
    }));
    worker.on("message", (msg: FromWorker) => this.receive(msg));
    worker.on("error", (err) => this.fail(new Error(`onnxruntime worker failed: ${err.message}`)));
    // Idle, the worker must not keep the process alive; it is referenced only while a batch is in flight.
    worker.unref();
  }

  run(input: Float32Array, dims: readonly number[]): Promise<Float32Array> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    // Posting copies, which leaves the caller's batch intact (~1 % of the batch's inference). A view is compacted
    // first: structured cloning a view copies its whole underlying buffer.
    const whole = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength;
    const message: ToWorker = { kind: "run", id, input: whole ? input : input.slice(), dims: [...dims] };
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(message);
    });
  }

  /** The worker releases its session and ends; resolves when it has exited. */
  async release(): Promise<void> {
    if (!this.releasing) {
      this.releasing = true;
      const healthy = this.failure === null;
      this.fail(new Error("onnxruntime session already released"));
      if (healthy) {
        this.worker.ref();
        this.worker.postMessage({ kind: "release" } satisfies ToWorker);
      } else {
        void this.worker.terminate(); // a failed worker may never answer
      }
    }
    await this.exited;
  }

  private receive(msg: FromWorker): void {
    if (msg.kind === "ready") return;
    if (msg.kind === "failed") {
      this.fail(new Error(msg.message));
      return;
    }
    const waiter = this.pending.get(msg.id);
    if (waiter === undefined) return;
    this.pending.delete(msg.id);
    if (this.pending.size === 0) this.worker.unref();
    if (msg.kind === "result") waiter.resolve(msg.values);
    else waiter.reject(new Error(msg.message));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }
}

/** Starts a worker thread holding one session; resolves once the session is loaded, rejects with its load error. */
export function openWorkerSession(script: string, spec: SessionSpec): Promise<SessionHost> {
  return new Promise<SessionHost>((resolve, reject) => {
    const worker = new Worker(script);
    const onStartError = (err: Error) => reject(new Error(`onnxruntime worker failed to start: ${err.message}`));
    const onEarlyExit = (code: number) => reject(new Error(`onnxruntime worker exited (code ${code}) before loading`));
    worker.once("error", onStartError);
    worker.once("exit", onEarlyExit);
    worker.once("message", (msg: FromWorker) => {
      worker.off("error", onStartError);
      worker.off("exit", onEarlyExit);
      if (msg.kind === "ready") {
        resolve(new WorkerSession(worker));
        return;
      }
      void worker.terminate();
      reject(new Error(msg.kind === "failed" ? msg.message : `onnxruntime worker sent "${msg.kind}" before "ready"`));
    });
    worker.postMessage({ kind: "init", spec } satisfies ToWorker);
  });
}
