// The PyTorch peer (bench/peer_torch.py) on the same images: its pairs come from a file this module writes, so
// both sides read exactly the same files in the same order.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CellPair } from "../lib/dataset";
import { projectRoot } from "../lib/paths";

/** Debian's interpreter: the one with torch, torchvision and PIL (the `python3` on PATH may have none of them). */
export const PEER_PYTHON = "/usr/bin/python3";

interface PeerTiming {
  images: number;
  seconds: number;
  imagesPerSecond: number;
  /** CPU seconds of the whole Python process (every thread) over the same interval. */
  cpuSeconds: number;
}

/** What peer_torch.py prints; decode and inference are absent with wholeOnly. */
export interface PeerResult {
  engine: "pytorch";
  backend: string;
  versions: Record<string, string>;
  pairs: number;
  whole: PeerTiming & { dataLoaderWorkers: number };
  /** Peak RSS of the whole run (it runs first in its process). */
  peakRssMiB: number;
  decode?: PeerTiming;
  inference?: PeerTiming & { batchSize: number };
}

export interface PeerOptions {
  pairs: CellPair[];
  anchors: [string, string];
  fusion: readonly [number, number];
  /** The torchvision .pth both sides use. */
  weights: string;
  threads: number;
  /** Only the whole run (the paired rounds), not decode and inference alone. */
  wholeOnly?: boolean;
  python?: string;
}

function checkPeerResult(value: unknown, wholeOnly: boolean): PeerResult {
  const r = value as PeerResult;
  for (const stage of wholeOnly ? ["whole"] as const : ["whole", "decode", "inference"] as const) {
    if (typeof r?.[stage]?.seconds !== "number") throw new Error(`peer_torch.py printed no "${stage}.seconds"`);
  }
  return r;
}

/** Runs the peer and returns its timings; its stderr passes through so a failure explains itself. */
export async function runPeer(options: PeerOptions): Promise<PeerResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellmorpho-peer-"));
  const pairsFile = path.join(dir, "pairs.json");
  try {
    fs.writeFileSync(pairsFile, JSON.stringify({
      pairs: options.pairs.map((p) => ({ condition: p.condition, actin: p.actinPath, nucleus: p.nucleusPath })),
      anchors: options.anchors,
      fusion: options.fusion,
    }));
    const script = path.join(projectRoot(), "bench", "peer_torch.py");
    const python = options.python ?? PEER_PYTHON;
    const stdout = await new Promise<string>((resolve, reject) => {
      const args = [script, "--pairs", pairsFile, "--weights", options.weights, "--threads", String(options.threads),
        ...(options.wholeOnly ? ["--whole-only"] : [])];
      const child = spawn(python, args, { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => { out += chunk; });
      child.on("error", (err) => reject(new Error(`cannot start ${python}: ${err.message}`)));
      child.on("close", (code) => (code === 0 ? resolve(out)
        : reject(new Error(`${python} ${script} exited with code ${code}`))));
    });
    const lastLine = stdout.trim().split("\n").pop() ?? "";
    try {
      return checkPeerResult(JSON.parse(lastLine), options.wholeOnly ?? false);
    } catch (err) {
      throw new Error(`peer_torch.py: unexpected output (${(err as Error).message}): ${lastLine.slice(0, 200)}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
