// `npm run bench` command line. Pure: argv in, a checked BenchOptions out (or a BenchUsageError saying what is wrong).
import * as path from "node:path";
import { parseArgs } from "node:util";

/** Pairs in the synthetic set at scale 1, which mirrors the real 523-cell dataset. */
export const FULL_SET_PAIRS = 523;

/**
 * An engine with an optional backend: "onnx" (its own choice: CUDA if usable, else CPU), "onnx:cpu", "onnx:cuda",
 * "tfjs" (its own choice: native, else wasm, else cpu), "tfjs:wasm", "tfjs:cpu", "tfjs:tfjs-node", ...
 */
export interface Target {
  engine: "onnx" | "tfjs";
  backend?: string;
}

export interface BenchOptions {
  /** About this many cell pairs in the generated set (it rounds per condition; default 523). */
  cells: number;
  /** A Celltool folder to use instead of the generated set. */
  data: string | null;
  anchors: [string, string];
  targets: Target[];
  /** Run bench/peer_torch.py on the same images and compare. */
  peer: boolean;
  /** Also time extraction with the sessions on the main thread / sequential channels / other thread counts. */
  variants: boolean;
  /** Each timing is taken this many times; the median is reported, every sample kept. */
  repeat: number;
  out: string | null;
}

export class BenchUsageError extends Error {}

export const USAGE = `npm run bench -- [--cells N] [--data DIR --anchors A,B] [--engines onnx,tfjs,tfjs:cpu]
                     [--peer] [--variants] [--repeat N] [--out bench/results.json]

  --cells N      about N pairs in the generated synthetic set (default ${FULL_SET_PAIRS}; made once under .cache/)
  --data DIR     time a Celltool folder instead (e.g. ../shared/data/bbbc021-mcf7 --anchors DMSO,ProteinSynthesis)
  --engines      engines[:backend] to time (default onnx,tfjs: each engine on the backend it picks itself)
  --peer         also run bench/peer_torch.py (PyTorch, /usr/bin/python3) on the same images; prints ours/peer
  --variants     also time extraction laid out as before (main thread) and otherwise (channels in turn, threads)
  --repeat N     take every timing N times and report the median (default 1)
  --out FILE     write the results as JSON (atomically)`;

const ENGINES = new Set(["onnx", "tfjs"]);

export function parseTarget(text: string): Target {
  const [engine, backend, ...rest] = text.trim().split(":");
  if (!ENGINES.has(engine) || rest.length > 0 || backend === "") {
    throw new BenchUsageError(`--engines: "${text}" is not engine[:backend] with engine onnx or tfjs`);
  }
  const name = engine as Target["engine"];
  return backend === undefined ? { engine: name } : { engine: name, backend };
}

export function targetName(target: Target): string {
  return target.backend === undefined ? target.engine : `${target.engine}:${target.backend}`;
}

function positiveInt(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new BenchUsageError(`${what} must be a positive integer, got "${text}"`);
  }
  return value;
}

export function parseBenchArgs(argv: string[], cwd = process.cwd()): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        cells: { type: "string" },
        data: { type: "string" },
        anchors: { type: "string" },
        engines: { type: "string" },
        peer: { type: "boolean" },
        variants: { type: "boolean" },
        repeat: { type: "string" },
        out: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new BenchUsageError((err as Error).message);
  }
  if (values.data !== undefined && values.cells !== undefined) {
    throw new BenchUsageError("--cells sizes the generated set; it cannot be combined with --data");
  }
  const anchors = (values.anchors ?? "Ctrl,TNFTGF").split(",").map((a) => a.trim());
  if (anchors.length !== 2 || anchors.some((a) => a === "")) {
    throw new BenchUsageError(`--anchors must be two comma-separated conditions, got "${values.anchors}"`);
  }
  const targets = (values.engines ?? "onnx,tfjs").split(",").map(parseTarget);
  return {
    cells: values.cells === undefined ? FULL_SET_PAIRS : positiveInt(values.cells, "--cells"),
    data: values.data === undefined ? null : path.resolve(cwd, values.data),
    anchors: anchors as [string, string],
    targets,
    peer: values.peer ?? false,
    variants: values.variants ?? false,
    repeat: values.repeat === undefined ? 1 : positiveInt(values.repeat, "--repeat"),
    out: values.out === undefined ? null : path.resolve(cwd, values.out),
  };
}
