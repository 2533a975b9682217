// Seeded random byte mutations of a valid cell PNG and of a valid Celltool zip. Every mutant must either work or
// fail with an Error whose message names the input: never crash the process, never hang, never write outside the
// folders it was given. The seed fixes every mutant, so a failure here is replayed exactly by rerunning the test.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import AdmZip from "adm-zip";
import { openCelltool } from "../lib/dataset";
import { closeEncoders, openEncoders, scorePairs, writeScoreOutputs, type DualEncoders } from "../lib/pipeline";
import { decodeGrey } from "../lib/preprocess";
import { Rng } from "../lib/synthDraw";
import { PROJECT_ROOT } from "./paths";
import { celltoolCells, listFiles, seed0WeightsDir, tempDir } from "./robustnessKit";

const SEED = 6;
const PNG_MUTANTS = 100;
const ZIP_MUTANTS = 100;
/** Far above any honest case here (a decode takes milliseconds, a score of 8 cells well under a second). */
const CASE_TIME_LIMIT_MS = 20_000;

/** Where to hit: headers hold the lengths and sizes a parser trusts, so they get half of the mutations. */
function offset(rng: Rng, length: number): number {
  const where = rng.next();
  if (where < 0.25) return rng.int(0, Math.min(127, length - 1)); // file / first local header
  if (where < 0.5) return rng.int(Math.floor(length * 0.75), length - 1); // zip central directory, PNG's last chunks
  return rng.int(0, length - 1);
}

/** One mutant and a description of what was done to it (shown when it misbehaves). */
export function mutate(original: Buffer, rng: Rng): { bytes: Buffer; how: string } {
  const bytes = Buffer.from(original);
  const at = offset(rng, bytes.length);
  switch (rng.int(0, 4)) {
    case 0: {
      const count = rng.int(1, 8);
      for (let k = 0; k < count; k++) bytes[offset(rng, bytes.length)] = rng.int(0, 255);
      return { bytes, how: `${count} random bytes` };
    }
    case 1:
      return { bytes: bytes.subarray(0, at), how: `truncated to ${at} bytes` };
    case 2:
      bytes.fill(0xff, at, at + 4); // sizes and counts near 2^32
      return { bytes, how: `0xffffffff at ${at}` };
    case 3:
      bytes.fill(0x00, at, at + 4); // zero sizes, zero dimensions
      return { bytes, how: `0x00000000 at ${at}` };
    default: {
      const inserted = Buffer.from(Array.from({ length: rng.int(1, 64) }, () => rng.int(0, 255)));
      return { bytes: Buffer.concat([bytes.subarray(0, at), inserted, bytes.subarray(at)]), how: `${inserted.length} bytes inserted at ${at}` };
    }
  }
}

/** The promise's outcome, or a rejection after `ms`. A synchronous hang cannot be interrupted this way, but it
 * would still fail the run through mocha's own timeout instead of passing. */
async function withinTime<T>(work: () => Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type Outcome = "ok" | "clean error";

/** "clean error" for an Error naming one of `names`; anything else fails the test with the mutant's description. */
async function outcome(work: () => Promise<void>, names: string[], what: string): Promise<Outcome> {
  try {
    await withinTime(work, CASE_TIME_LIMIT_MS, what);
    return "ok";
  } catch (err) {
    assert.ok(err instanceof Error, `${what}: threw a non-Error ${String(err)}`);
    const { message, stack } = err;
    assert.doesNotMatch(message, /still running after/, what);
    assert.ok(names.some((name) => message.includes(name)), `${what}: the error does not name the input: ${stack}`);
    return "clean error";
  }
}

function tally(outcomes: Outcome[]): string {
  const ok = outcomes.filter((o) => o === "ok").length;
  return `${ok} worked, ${outcomes.length - ok} refused cleanly`;
}

describe("fuzz: mutated inputs never crash or hang", function () {
  let work: string;
  let weights: string;
  let encoders: DualEncoders | undefined;
  before(async function () {
    work = tempDir("fuzz");
    weights = seed0WeightsDir(this);
    encoders = await openEncoders({ engine: "onnx", weightsDir: weights, log: () => undefined });
  });
  after(async () => {
    if (encoders) await closeEncoders(encoders);
    for (const dir of [work, weights]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`${PNG_MUTANTS} mutants of a cell PNG: decodeGrey, and the same verdict as a cell of a scored dataset`, async () => {
    const cells = await celltoolCells({ Ctrl: 3, TNFTGF: 2 });
    const dataset = path.join(work, "png-dataset");
    for (const [name, content] of Object.entries(cells)) {
      fs.mkdirSync(path.dirname(path.join(dataset, name)), { recursive: true });
      fs.writeFileSync(path.join(dataset, name), content);
    }
    const mutantCell = path.join(dataset, "Ctrl", "Actine", "c0.png");
    const original = cells["Ctrl/Actine/c0.png"] as Buffer;
    const cacheDir = path.join(work, "png-cache"); // the other cells are embedded once
    const rng = new Rng(SEED);
    const outcomes: Outcome[] = [];
    for (let i = 0; i < PNG_MUTANTS; i++) {
      const { bytes, how } = mutate(original, rng);
      const name = `mutant-${i}.png`;
      const what = `${name} (${how})`;
      const verdict = await outcome(async () => {
        const img = await decodeGrey({ bytes, name });
        assert.equal(img.data.length, img.width * img.height, `${what}: pixel count`);
      }, [`${name}: `], what);
      outcomes.push(verdict);
      // the pipeline decodes the same bytes: it scores the cell, or skips it for the reason decodeGrey gives
      fs.writeFileSync(mutantCell, bytes);
      const run = await withinTime(() => scorePairs(openCelltool(dataset), encoders!, {
        onUnreadable: "skip", cacheDir, progress: false,
      }), CASE_TIME_LIMIT_MS, what);
      const scored = run.rows.some((r) => r.sample_id === "Ctrl/c0.png");
      assert.equal(scored, verdict === "ok", `${what}: scored ${scored}, decodeGrey ${verdict}`);
      assert.equal(run.unreadable.length, scored ? 0 : 1, what);
      if (!scored) assert.equal(run.unreadable[0].file, mutantCell, what);
    }
    console.log(`      ${tally(outcomes)}`);
  });

  describe("the score command's path on mutants of a Celltool zip", function () {
    it(`openCelltool, scoring and writing on ${ZIP_MUTANTS} mutants`, async () => {
      const zip = new AdmZip();
      for (const [name, content] of Object.entries(await celltoolCells({ Ctrl: 2, TNFTGF: 2 }))) {
        zip.addFile(`study/${name}`, content as Buffer);
      }
      const original = zip.toBuffer();
      const projectCache = listFiles(path.join(PROJECT_ROOT, ".cache", "datasets"));
      // unchanged images are embedded once: the mutants that still open cost little
      const cacheDir = path.join(work, "cache");
      const rng = new Rng(SEED + 1);
      const outcomes: Outcome[] = [];
      for (let i = 0; i < ZIP_MUTANTS; i++) {
        const { bytes, how } = mutate(original, rng);
        const zipFile = path.join(work, `mutant-${i}.zip`);
        const extractDir = path.join(work, `extracted-${i}`);
        fs.writeFileSync(zipFile, bytes);
        outcomes.push(await outcome(async () => {
          const dataset = openCelltool(zipFile, { extractDir });
          const run = await scorePairs(dataset, encoders!, { onUnreadable: "skip", cacheDir, progress: false });
          writeScoreOutputs(run, path.join(work, `out-${i}`));
        }, [zipFile, extractDir], `mutant-${i}.zip (${how})`));
      }
      console.log(`      ${tally(outcomes)}`);
      const allowed = /^(png-cache|png-dataset|cache|mutant-\d+\.zip|extracted-\d+|out-\d+)$/;
      assert.deepEqual(fs.readdirSync(work).filter((name) => !allowed.test(name)), [], "nothing written elsewhere");
      assert.deepEqual(listFiles(path.join(PROJECT_ROOT, ".cache", "datasets")), projectCache);
    });
  });
});
