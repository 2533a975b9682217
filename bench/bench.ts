// `npm run bench`: how fast a `score` run is, stage by stage, per engine and backend, on a generated dataset (or
// one given), optionally against a PyTorch implementation of the same pipeline. See bench/README.md.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeJsonAtomic } from "../lib/atomic";
import { openCelltool, type CelltoolDataset } from "../lib/dataset";
import { loadOnnxRuntime } from "../lib/onnxEngine";
import { projectRoot } from "../lib/paths";
import { DEFAULT_FUSION } from "../lib/pipeline";
import { RESNET_INPUT_SIZE } from "../lib/engines";
import { generateSynthetic } from "../lib/synth";
import { convertWeights, loadWeights, WEIGHTS_MANIFEST } from "../lib/weights";
import {
  extractionVariants, type ChildTask, type TargetResult, type TaskBase, type VariantResult, type WholeResult,
} from "./child";
import { measurePreprocess } from "./measure";
import { BenchUsageError, FULL_SET_PAIRS, parseBenchArgs, targetName, USAGE, type BenchOptions } from "./options";
import { runPeer } from "./peer";
import {
  compareRounds, formatReport, pairRound, type BenchResults, type Comparison, type Failed, type MachineInfo, type Round,
} from "./report";

/** The shared test weights: seeded random ResNet18 in torchvision's format (timing does not depend on values). */
const SEED0_PTH = path.resolve(projectRoot(), "..", "shared", "weights", "resnet18-torchvision-seed0.pth");

function log(line: string): void {
  process.stderr.write(line + "\n");
}

function machineInfo(loadBefore: number): MachineInfo {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? "unknown",
    cores: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    loadAverage: { before: loadBefore, after: os.loadavg()[0] },
  };
}

/** Converted weights for the encoders and the .pth they came from (the peer loads the .pth itself). */
function benchWeights(cacheRoot: string): { dir: string; pth: string | null } {
  const dir = path.join(cacheRoot, "bench-weights");
  if (fs.existsSync(path.join(dir, WEIGHTS_MANIFEST))) return { dir, pth: fs.existsSync(SEED0_PTH) ? SEED0_PTH : null };
  if (!fs.existsSync(SEED0_PTH)) {
    throw new Error(`the benchmark converts ${SEED0_PTH} into ${dir}, and that file is not there`);
  }
  convertWeights({ source: SEED0_PTH, outDir: dir, unverified: true, log: () => undefined });
  return { dir, pth: SEED0_PTH };
}

/** The generated set for `cells` pairs, made once under .cache/ (the generator is deterministic for its seed). */
async function benchDataset(options: BenchOptions, cacheRoot: string): Promise<{ dir: string; generated: boolean }> {
  if (options.data !== null) return { dir: options.data, generated: false };
  const name = options.cells === FULL_SET_PAIRS ? "bench-data" : `bench-data-${options.cells}cells`;
  const dir = path.join(cacheRoot, name);
  if (!fs.existsSync(dir)) {
    log(`generating the synthetic set for ~${options.cells} pairs into ${dir} (once; ~1.5 min for 523)`);
    await generateSynthetic({ out: dir, seed: 0, scale: options.cells / FULL_SET_PAIRS, log });
  }
  return { dir, generated: true };
}

/** Runs one ChildTask in a fresh Node process; its stderr passes through, its last stdout line is the result. */
function runChild<T>(task: ChildTask): Promise<T> {
  const script = path.join(__dirname, "child.js");
  return new Promise<T>((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(task)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => { out += chunk; });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        reject(new Error(`exited with code ${code} (its message is above)`));
        return;
      }
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? "") as T);
      } catch {
        reject(new Error(`printed no result: ${out.slice(-200)}`));
      }
    });
  });
}

async function orFailed<T>(name: string, work: () => Promise<T>): Promise<T | Failed> {
  try {
    return await work();
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    log(`${name}: ${error}`);
    return { name, error };
  }
}

/**
 * Our whole run, then the peer's, `repeat` times. Back to back, both sides see about the same load, so each round's
 * ratio holds even on a shared machine whose load drifts. The first peer run also times its stages alone.
 */
async function againstPeer(options: BenchOptions, base: TaskBase, dataset: CelltoolDataset, pth: string):
  Promise<Comparison> {
  const rounds: Round[] = [];
  for (let round = 1; round <= options.repeat; round++) {
    log(`round ${round}/${options.repeat} against PyTorch: our whole run, then bench/peer_torch.py`);
    const ours = await runChild<WholeResult>({ ...base, repeat: 1, kind: "whole" });
    const peer = await runPeer({ pairs: dataset.pairs, anchors: options.anchors, fusion: DEFAULT_FUSION, weights: pth,
      threads: os.availableParallelism(), wholeOnly: round > 1 });
    rounds.push(pairRound(ours, peer));
  }
  return compareRounds(rounds);
}

async function bench(options: BenchOptions): Promise<BenchResults> {
  const loadBefore = os.loadavg()[0];
  const cacheRoot = path.join(projectRoot(), ".cache");
  const weights = benchWeights(cacheRoot);
  const data = await benchDataset(options, cacheRoot);
  const dataset: CelltoolDataset = openCelltool(data.dir);
  const files = dataset.pairs.flatMap((p) => [p.actinPath, p.nucleusPath]);
  const base = { dataDir: data.dir, weightsDir: weights.dir, anchors: options.anchors, repeat: options.repeat };

  log(`preprocessing ${files.length} images`);
  const preprocess = await measurePreprocess(files, RESNET_INPUT_SIZE, options.repeat);

  const targets: BenchResults["targets"] = [];
  for (const target of options.targets) {
    const name = targetName(target);
    // The whole run is timed for onnx choosing its own provider: what `cellmorpho score` does by default.
    const whole = target.engine === "onnx" && target.backend === undefined;
    log(`${name}: ${whole ? "whole run, cache, scoring, then " : ""}inference`);
    targets.push(await orFailed(name, () => runChild<TargetResult>({ ...base, kind: "target", target, whole })));
  }

  const variants: BenchResults["variants"] = [];
  if (options.variants) {
    if ("error" in loadOnnxRuntime()) {
      throw new Error("--variants compares onnx layouts, and onnxruntime-node does not load");
    }
    for (const variant of extractionVariants()) {
      log(`variant: ${variant.name}`);
      variants.push(await orFailed(variant.name, () => runChild<VariantResult>({ ...base, kind: "variant", variant })));
    }
  }

  let comparison: BenchResults["comparison"] = null;
  if (options.peer) {
    comparison = await orFailed("PyTorch peer", () => {
      const pth = weights.pth;
      if (pth === null) throw new Error(`it loads ${SEED0_PTH}, which is not there`);
      return againstPeer(options, base, dataset, pth);
    });
  }

  const { label, sha256 } = loadWeights(weights.dir).provenance;
  return {
    machine: machineInfo(loadBefore),
    dataset: { dir: data.dir, pairs: dataset.pairs.length, images: files.length, generated: data.generated },
    weights: { label, sha256 },
    repeat: options.repeat,
    preprocess,
    targets,
    variants,
    comparison,
  };
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let options: BenchOptions;
  try {
    options = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    log(`bench: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  const results = await bench(options);
  console.log(formatReport(results));
  if (options.out !== null) {
    writeJsonAtomic(options.out, results);
    log(`wrote ${options.out}`);
  }
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  log(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
