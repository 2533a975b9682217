// `cellmorpho` command line: score a dataset, prepare weights, generate the default synthetic data.
// Usage errors exit with code 2 and a one-line reason; failures exit with 1 and a one-line reason.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ENGINE_NAMES, type EngineName } from "./engines";
import {
  checkOutputDir, DEFAULT_ANCHORS, DEFAULT_FUSION, formatUnreadable, scoreDataset, writeScoreOutputs,
} from "./pipeline";
import { firstPairsPerCondition, formatPairingReport, openCelltool } from "./dataset";
import { writeJsonAtomic } from "./atomic";
import { defaultBackboneForValidation, RESNET18_SPEC } from "./backbones";
import { compareEncoders, comparisonScatter, formatComparison, truthBySample } from "./compare";
import { writeExtras } from "./extras";
import { saveFigure } from "./plots";
import { readTruth } from "./synth";
import type { GreyMode } from "./tfjsModel";
import { convertWeights, localWeightsFile, resolveWeightsSource, defaultWeightsDir } from "./weights";
import { generateSynthetic, contactSheet } from "./synth";

export class UsageError extends Error {}

const USAGE = `cellmorpho — EMT (TEM) scores from actin + nucleus images of single cells

Usage:
  cellmorpho score <Celltool.zip|folder> --out DIR [--engine auto|onnx|tfjs] [--anchors Ctrl,TNFTGF]
                   [--fusion 0.5,0.5] [--batch 64] [--no-cache | --cache-dir DIR] [--weights DIR] [--strict]
                   [--folds 5] [--bootstrap 1000] [--permutations 1000] [--seed 0] [--no-validation] [--oof]
                   [--encoder resnet18|tfjs:<model.json>[#layer]] [--grey third|replicate]
                   [--morphology] [--map] [--gallery]
  cellmorpho compare <Celltool.zip|folder> --out DIR [--encoders resnet18,tfjs:<model.json>] [--truth truth.csv]
                   [--per-condition N] [--engine] [--grey] [--anchors] [--fusion] [--folds 5] [--seed 0]
  cellmorpho weights [--from FILE] [--unverified] [--out DIR]
  cellmorpho synth --out DIR [--seed 0] [--scale 1] [--zip]
  cellmorpho contact-sheet <synthetic folder> --out FILE.png [--n 48] [--columns 8]
  cellmorpho help

score     writes DIR/tem_scores.csv, stats_by_condition.csv, metrics.json, pairing_report.json (all or none);
          a cell with an undecodable image is skipped and reported, or stops the run with --strict;
          metrics.json adds out-of-fold AUCs, bootstrap intervals and a permutation test (--oof: the
          out-of-fold scores as extra columns of tem_scores.csv); --morphology writes morphology.csv and
          morphology_correlations.csv, --map the PCA embedding maps, --gallery gallery.png
compare   scores the same cells with each encoder: in-sample and out-of-fold AUC, condition means, agreement
          between encoders, and Spearman with the latent state when truth.csv is there (synthetic data)
weights   converts torchvision's resnet18-f37072fd.pth (from --from, $CELLMORPHO_WEIGHTS,
          ../shared/weights/, or the official download) into weights/resnet18.{json,bin}
synth     writes a synthetic Celltool dataset with known EMT state (truth.csv)`;

function parseNumberList(text: string, what: string, count: number): number[] {
  const parts = text.split(",").map((s) => s.trim());
  const values = parts.map(Number);
  if (parts.length !== count || parts.some((p) => p === "") || values.some((v) => !Number.isFinite(v))) {
    throw new UsageError(`${what} must be ${count} comma-separated numbers, got "${text}"`);
  }
  return values;
}

function parsePositiveInt(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${what} must be a positive integer, got "${text}"`);
  return value;
}

function parseGrey(text: string): GreyMode {
  if (text !== "third" && text !== "replicate") throw new UsageError(`--grey must be third or replicate, got "${text}"`);
  return text;
}

function parseAnchors(text: string): [string, string] {
  const anchors = text.split(",").map((s) => s.trim());
  if (anchors.length !== 2 || anchors.some((a) => a === "")) {
    throw new UsageError(`--anchors must be two condition names, e.g. Ctrl,TNFTGF; got "${text}"`);
  }
  return anchors as [string, string];
}

function parseEngine(text: string): EngineName {
  if (!(ENGINE_NAMES as readonly string[]).includes(text)) {
    throw new UsageError(`unknown --engine "${text}"; valid: ${ENGINE_NAMES.join(", ")}`);
  }
  return text as EngineName;
}

function parseCount(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new UsageError(`${what} must be a whole number >= 0, got "${text}"`);
  return value;
}

function parseNonNegative(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${what} must be a positive number, got "${text}"`);
  return value;
}

type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

function parse<O extends OptionSpec>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const log = (msg: string) => console.error(msg);

async function scoreCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    out: { type: "string" },
    engine: { type: "string", default: "auto" },
    anchors: { type: "string", default: DEFAULT_ANCHORS.join(",") },
    fusion: { type: "string", default: DEFAULT_FUSION.join(",") },
    batch: { type: "string", default: "64" },
    "no-cache": { type: "boolean", default: false },
    "cache-dir": { type: "string" },
    weights: { type: "string" },
    strict: { type: "boolean", default: false },
    folds: { type: "string", default: "5" },
    bootstrap: { type: "string", default: "1000" },
    permutations: { type: "string", default: "1000" },
    seed: { type: "string", default: "0" },
    "no-validation": { type: "boolean", default: false },
    oof: { type: "boolean", default: false },
    encoder: { type: "string", default: RESNET18_SPEC },
    grey: { type: "string", default: "third" },
    morphology: { type: "boolean", default: false },
    map: { type: "boolean", default: false },
    gallery: { type: "boolean", default: false },
  });
  if (positionals.length !== 1) throw new UsageError("score needs exactly one dataset (a Celltool zip or folder)");
  if (!values.out) throw new UsageError("score needs --out DIR");
  const engine = parseEngine(String(values.engine));
  const anchors = parseAnchors(String(values.anchors));
  const fusion = parseNumberList(String(values.fusion), "--fusion", 2);
  if (fusion.some((w) => w < 0) || fusion[0] + fusion[1] <= 0) {
    throw new UsageError(`--fusion weights must be >= 0 and not both 0, got "${values.fusion}"`);
  }
  const batchSize = parsePositiveInt(String(values.batch), "--batch");
  const grey = parseGrey(String(values.grey));
  if (values["no-cache"] && values["cache-dir"] !== undefined) throw new UsageError("give --no-cache or --cache-dir, not both");
  const cacheDir = values["no-cache"] ? null : (values["cache-dir"] as string | undefined);
  const folds = parsePositiveInt(String(values.folds), "--folds");
  if (folds < 3) throw new UsageError(`--folds must be at least 3 (the tuned fusion leaves two folds out), got "${values.folds}"`);
  const validation = values["no-validation"] ? false as const : {
    folds,
    bootstrap: parseCount(String(values.bootstrap), "--bootstrap"),
    permutations: parseCount(String(values.permutations), "--permutations"),
    seed: parseCount(String(values.seed), "--seed"),
  };
  if (values.oof && validation === false) throw new UsageError("--oof needs the validation; drop --no-validation");
  // Before minutes of embedding: an output folder that cannot be written fails now.
  checkOutputDir(String(values.out));

  const run = await scoreDataset(positionals[0], {
    engine,
    anchors,
    fusion: fusion as [number, number],
    batchSize,
    cacheDir,
    weightsDir: values.weights as string | undefined,
    onUnreadable: values.strict ? "fail" : "skip",
    validation,
    encoder: String(values.encoder),
    grey,
    log,
  });
  log(formatPairingReport(run.dataset.report));
  for (const line of formatUnreadable(run)) log(line);
  const files = writeScoreOutputs(run, String(values.out), { outOfFoldColumns: Boolean(values.oof) });
  files.push(...await writeExtras(run, String(values.out), {
    morphology: Boolean(values.morphology), map: Boolean(values.map), gallery: Boolean(values.gallery),
  }));
  const fused = run.metrics.scores.tem_fused;
  const skipped = run.dataset.pairs.length - run.scored.length;
  console.log(`scored ${run.rows.length} cells${skipped > 0 ? ` (${skipped} skipped as unreadable)` : ""}; ` +
    `anchors ${run.anchors.join(" vs ")}; ` +
    `AUC fused ${fused.auc.toFixed(3)} (actin ${run.metrics.scores.tem_actin.auc.toFixed(3)}, ` +
    `nucleus ${run.metrics.scores.tem_nucleus.auc.toFixed(3)})`);
  for (const s of fused.by_condition) console.log(`  ${s.condition.padEnd(12)} n=${String(s.n).padStart(4)}  mean ${s.mean.toFixed(3)}`);
  if ("result" in run.validation) {
    const v = run.validation.result.summary;
    console.log(`out-of-fold AUC (${v.settings.folds} folds): fused ${v.scores.tem_fused.auc_out_of_fold.toFixed(3)}, ` +
      `actin ${v.scores.tem_actin.auc_out_of_fold.toFixed(3)}, nucleus ${v.scores.tem_nucleus.auc_out_of_fold.toFixed(3)}` +
      (v.permutation ? `; permutation p (fused) = ${v.permutation.p.tem_fused.toPrecision(2)}` : ""));
  } else if (validation !== false && "reason" in run.validation) {
    console.log(`validation skipped: ${run.validation.reason}`);
  }
  console.log(`wrote ${files.map((f) => path.relative(process.cwd(), f)).join(", ")}`);
  if (run.warning) console.log(run.warning);
}

async function weightsCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    from: { type: "string" },
    unverified: { type: "boolean", default: false },
    out: { type: "string" },
  });
  if (positionals.length > 0) throw new UsageError(`weights takes no positional arguments, got "${positionals.join(" ")}"`);
  const source = resolveWeightsSource({ from: values.from as string | undefined });
  log(`weights source: ${source.path} (${source.how})`);
  const file = await localWeightsFile(source, undefined, log);
  convertWeights({
    source: file,
    outDir: (values.out as string | undefined) ?? defaultWeightsDir(),
    unverified: Boolean(values.unverified),
    log: console.log,
  });
}

async function synthCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    out: { type: "string" },
    seed: { type: "string", default: "0" },
    scale: { type: "string", default: "1" },
    zip: { type: "boolean", default: false },
  });
  if (positionals.length > 0) throw new UsageError(`synth takes no positional arguments, got "${positionals.join(" ")}"`);
  if (!values.out) throw new UsageError("synth needs --out DIR");
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a non-negative integer, got "${values.seed}"`);
  const summary = await generateSynthetic({
    out: String(values.out),
    seed,
    scale: parseNonNegative(String(values.scale), "--scale"),
    zip: Boolean(values.zip),
    log,
  });
  console.log(JSON.stringify(summary));
}

async function contactSheetCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    out: { type: "string" },
    n: { type: "string", default: "48" },
    columns: { type: "string", default: "8" },
  });
  if (positionals.length !== 1) throw new UsageError("contact-sheet needs the synthetic dataset folder");
  if (!values.out) throw new UsageError("contact-sheet needs --out FILE.png");
  await contactSheet({
    dataset: positionals[0],
    out: String(values.out),
    n: parsePositiveInt(String(values.n), "--n"),
    columns: parsePositiveInt(String(values.columns), "--columns"),
  });
  console.log(`wrote ${values.out}`);
}

async function compareCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    out: { type: "string" },
    encoders: { type: "string" },
    truth: { type: "string" },
    "per-condition": { type: "string" },
    engine: { type: "string", default: "auto" },
    grey: { type: "string", default: "third" },
    anchors: { type: "string", default: DEFAULT_ANCHORS.join(",") },
    fusion: { type: "string", default: DEFAULT_FUSION.join(",") },
    folds: { type: "string", default: "5" },
    seed: { type: "string", default: "0" },
    weights: { type: "string" },
    "no-cache": { type: "boolean", default: false },
  });
  if (positionals.length !== 1) throw new UsageError("compare needs exactly one dataset (a Celltool zip or folder)");
  if (!values.out) throw new UsageError("compare needs --out DIR");
  const engine = parseEngine(String(values.engine));
  const grey = parseGrey(String(values.grey));
  const anchors = parseAnchors(String(values.anchors));
  const fusion = parseNumberList(String(values.fusion), "--fusion", 2) as [number, number];
  const folds = parsePositiveInt(String(values.folds), "--folds");
  const specs = values.encoders === undefined
    ? [RESNET18_SPEC, defaultBackboneForValidation({ weightsDir: values.weights as string | undefined }).spec]
    : String(values.encoders).split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (specs.length < 2) throw new UsageError(`compare needs at least two encoders, got "${values.encoders}"`);
  checkOutputDir(String(values.out));

  let dataset = openCelltool(positionals[0]);
  if (values["per-condition"] !== undefined) {
    dataset = firstPairsPerCondition(dataset, parsePositiveInt(String(values["per-condition"]), "--per-condition"));
  }
  // A synthetic set carries its latent EMT state in truth.csv beside the conditions.
  const truthFile = (values.truth as string | undefined) ?? path.join(dataset.root, "truth.csv");
  const truth = fs.existsSync(truthFile) ? truthBySample(readTruth(truthFile)) : undefined;
  if (values.truth !== undefined && !truth) throw new Error(`truth file ${truthFile} not found`);

  const result = await compareEncoders({
    dataset, specs, anchors, fusion, truth, folds,
    seed: parseCount(String(values.seed), "--seed"),
    cacheDir: values["no-cache"] ? null : undefined,
    backbone: { engine, weightsDir: values.weights as string | undefined, grey },
    log,
  });
  const outDir = String(values.out);
  writeJsonAtomic(path.join(outDir, "comparison.json"), result);
  const scatter = await saveFigure(comparisonScatter(result), outDir, "comparison_scatter");
  console.log(formatComparison(result));
  console.log(`wrote ${path.join(outDir, "comparison.json")} and ${scatter.html}`);
}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  compare: compareCommand,
  score: scoreCommand,
  weights: weightsCommand,
  synth: synthCommand,
  "contact-sheet": contactSheetCommand,
};

/** Runs one command line; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const handler = COMMANDS[command];
  try {
    if (!handler) throw new UsageError(`unknown command "${command}"; run "cellmorpho help"`);
    await handler(rest);
    return 0;
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (err instanceof UsageError) {
      console.error(`cellmorpho: ${message}`);
      return 2;
    }
    console.error(`cellmorpho: ${message}`);
    if (process.env.CELLMORPHO_DEBUG) console.error((err as Error).stack);
    return 1;
  }
}
