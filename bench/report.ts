// The benchmark's results: the JSON document bench.ts writes, and the plain-text table it prints. Pure functions.
import type { TargetResult, VariantResult, WholeResult } from "./child";
import { median, type PreprocessTimings, type Timing } from "./measure";
import type { PeerResult } from "./peer";


export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  /** 1-minute load average before and after: a busy machine explains slow numbers. */
  loadAverage: { before: number; after: number };
}

export interface Failed {
  /** The target or variant that could not be measured, and why. */
  name: string;
  error: string;
}

/** One round against the peer: our whole run, then the peer's, back to back so both see about the same load. */
export interface Round {
  ours: WholeResult;
  peer: PeerResult;
  /** ours / peer, wall seconds and CPU seconds. */
  ratio: number;
  cpuRatio: number;
}

export interface Comparison {
  rounds: Round[];
  /** Medians over the rounds. */
  ratio: number;
  cpuRatio: number;
}

export interface BenchResults {
  machine: MachineInfo;
  dataset: { dir: string; pairs: number; images: number; generated: boolean };
  weights: { label: string; sha256: string };
  repeat: number;
  preprocess: PreprocessTimings;
  targets: (TargetResult | Failed)[];
  variants: (VariantResult | Failed)[];
  /** Against the PyTorch peer (--peer): paired rounds; the first round's peer run also times its stages. */
  comparison: Comparison | Failed | null;
}

export function isFailed(value: object): value is Failed {
  return "error" in value;
}

export function pairRound(ours: WholeResult, peer: PeerResult): Round {
  return { ours, peer, ratio: ours.whole.seconds / peer.whole.seconds,
    cpuRatio: ours.whole.cpuSeconds / peer.whole.cpuSeconds };
}

export function compareRounds(rounds: Round[]): Comparison {
  if (rounds.length === 0) throw new Error("no round against the peer to compare");
  return { rounds, ratio: median(rounds.map((r) => r.ratio)), cpuRatio: median(rounds.map((r) => r.cpuRatio)) };
}

const fixed = (x: number, digits: number) => x.toFixed(digits);

/** "1046 img  9.81 s  106.6 img/s  (cpu 18.2 s)". */
export function formatTiming(t: Timing, unit = "img"): string {
  const spread = t.samples.length > 1
    ? ` [${fixed(Math.min(...t.samples), 2)}-${fixed(Math.max(...t.samples), 2)} s, ${t.samples.length} runs]` : "";
  return `${t.items} ${unit}  ${fixed(t.seconds, 2)} s  ${fixed(t.itemsPerSecond, 1)} ${unit}/s  ` +
    `(cpu ${fixed(t.cpuSeconds, 1)} s)${spread}`;
}

function row(label: string, width: number, text: string): string {
  return `  ${label.padEnd(width)} ${text}`;
}

function targetLines(t: TargetResult | Failed): string[] {
  if (isFailed(t)) return [`  ${t.name}: not measured (${t.error})`];
  const msPerImage = (1000 * t.inference.seconds) / t.inference.items;
  const lines = [`  ${t.target}: engine ${t.engine}, backend ${t.backend}, device ${t.device}, ` +
    `peak RSS ${fixed(t.peakRssMiB, 0)} MiB`,
    row(`inference, batch ${t.inference.batchSize}${t.inference.threads ? `, ${t.inference.threads} thr` : ""}`, 26,
      `${formatTiming(t.inference)}  ${fixed(msPerImage, 1)} ms/img` +
      (t.engine === "tfjs" ? "  (a subset: the whole set would take minutes)" : ""))];
  if (t.whole) lines.push(row("whole run, no cache", 26, formatTiming(t.whole)));
  if (t.coldCache) lines.push(row("whole run, empty cache", 26, formatTiming(t.coldCache)));
  if (t.warmCache) lines.push(row("whole run, warm cache", 26, formatTiming(t.warmCache)));
  if (t.scoring) lines.push(row("axes + metrics alone", 26, formatTiming(t.scoring, "cells")));
  if (t.validation) {
    lines.push(row("validation alone", 26, "skipped" in t.validation ? `not run (${t.validation.skipped})`
      : formatTiming(t.validation, "cells")));
  }
  return lines;
}

function variantLine(v: VariantResult | Failed, width: number): string {
  if (isFailed(v)) return `  ${v.name}: not measured (${v.error})`;
  return row(v.variant.name, width, `${formatTiming(v.extraction)}  peak RSS ${fixed(v.peakRssMiB, 0)} MiB`);
}

type PeerStage = NonNullable<PeerResult["decode"]>;

function peerTiming(t: PeerStage): string {
  return `${t.images} img  ${fixed(t.seconds, 2)} s  ${fixed(t.imagesPerSecond, 1)} img/s  ` +
    `(cpu ${fixed(t.cpuSeconds, 1)} s)`;
}

function comparisonLines(c: Comparison | Failed): string[] {
  if (isFailed(c)) return [`PyTorch peer: not measured (${c.error})`];
  const first = c.rounds[0].peer;
  const lines = [`PyTorch peer (${first.backend}, bench/peer_torch.py), same images:`];
  if (first.decode) lines.push(row("decode + resize", 26, peerTiming(first.decode)));
  if (first.inference) {
    const ms = (1000 * first.inference.seconds) / first.inference.images;
    lines.push(row(`inference, batch ${first.inference.batchSize}`, 26,
      `${peerTiming(first.inference)}  ${fixed(ms, 1)} ms/img`));
  }
  const rounds = `${c.rounds.length} round${c.rounds.length === 1 ? "" : "s"}`;
  lines.push(`whole run, ours then PyTorch, back to back (${rounds}):`);
  c.rounds.forEach((round, i) => {
    const ours = round.ours.whole;
    const peer = round.peer.whole;
    lines.push(`  ${i + 1}. ours ${fixed(ours.seconds, 2)} s (cpu ${fixed(ours.cpuSeconds, 1)} s, ` +
      `peak RSS ${fixed(round.ours.peakRssMiB, 0)} MiB) | PyTorch ${fixed(peer.seconds, 2)} s (cpu ` +
      `${fixed(peer.cpuSeconds, 1)} s, peak RSS ${fixed(round.peer.peakRssMiB, 0)} MiB) | ours/PyTorch ` +
      `${fixed(round.ratio, 2)} wall, ${fixed(round.cpuRatio, 2)} cpu`);
  });
  lines.push(`whole run, ours / PyTorch: ${fixed(c.ratio, 2)} (wall), ${fixed(c.cpuRatio, 2)} (cpu)` +
    (c.rounds.length > 1 ? ", medians of the rounds" : ""));
  return lines;
}

export function formatReport(r: BenchResults): string {
  const m = r.machine;
  const lines = [
    `CellMorphoTEM benchmark: ${r.dataset.pairs} pairs (${r.dataset.images} images) from ${r.dataset.dir}`,
    `machine: ${m.cpu}, ${m.cores} cores, ${fixed(m.memoryGiB, 0)} GiB, Node ${m.node}, ${m.platform}; ` +
      `load average ${fixed(m.loadAverage.before, 1)} before, ${fixed(m.loadAverage.after, 1)} after` +
      (r.repeat > 1 ? `; medians of ${r.repeat} runs` : ""),
    `weights: ${r.weights.label} (timings do not depend on the weight values)`,
    "",
    "preprocessing (shared by every engine; 64 images at a time as extraction does):",
    row("decode (sharp + grey)", 26, formatTiming(r.preprocess.decode)),
    row("resize (PIL-exact, JS)", 26, formatTiming(r.preprocess.resize)),
    row("decode + resize", 26, formatTiming(r.preprocess.decodeAndResize)),
    row("sha256 (cache keys)", 26, formatTiming(r.preprocess.hash)),
    "",
    "engines:",
    ...r.targets.flatMap(targetLines),
  ];
  if (r.variants.length > 0) {
    const width = Math.max(...r.variants.map((v) => (isFailed(v) ? 0 : v.variant.name.length)));
    lines.push("", "extraction variants (both channels, no cache; onnx on the CPU):",
      ...r.variants.map((v) => variantLine(v, width)));
  }
  if (r.comparison !== null) lines.push("", ...comparisonLines(r.comparison));
  return lines.join("\n");
}
