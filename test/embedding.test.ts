// lib/embedding.ts: batching, both channels (concurrent or sequential), unreadable images (skip / fail in dataset
// order), errors stopping the other channel, and the cache (an interrupted batch is never cached). The encoder is a
// closed-form stand-in, so every expected row is computed here from the prepared image, independently of the code
// under test's plumbing, and the tests take milliseconds.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import type { CellPair } from "../lib/dataset";
import { embedImages, embedPairs, type PairEmbedOptions } from "../lib/embedding";
import { loadCell } from "../lib/preprocess";
import type { Encoder, EncoderInfo } from "../lib/encoder";

const SIZE = 8;
const DIM = 3;

/** [mean, first pixel, last pixel] of each image: exact in float32 for these inputs, and different for each cell. */
function closedForm(image: Float32Array): number[] {
  const mean = image.reduce((a, b) => a + b, 0) / image.length;
  return [mean, image[0], image[image.length - 1]];
}

class FakeEncoder implements Encoder {
  readonly inputSize = SIZE;
  readonly dim = DIM;
  readonly batches: number[] = [];
  readonly info: EncoderInfo = {
    encoder: "closed-form", engine: "onnx", backend: "cpu", device: "cpu",
    weights: { label: "none", sha256: "0".repeat(64), verified: false },
  };

  /** failOnCall: the call (0-based) that throws, as a crashing engine would; delayMs: time per batch. */
  constructor(private readonly failOnCall = -1, private readonly delayMs = 0) {}

  async embed(batch: Float32Array, n: number): Promise<Float32Array> {
    // a real engine answers later, letting the other channel run meanwhile
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.batches.length === this.failOnCall) {
      this.batches.push(-n);
      throw new Error("engine crashed");
    }
    this.batches.push(n);
    const out = new Float32Array(n * DIM);
    for (let k = 0; k < n; k++) out.set(closedForm(batch.subarray(k * SIZE * SIZE, (k + 1) * SIZE * SIZE)), k * DIM);
    return out;
  }

  async dispose(): Promise<void> {}
}

/** A 10 x 10 grey PNG whose pixels depend on `seed`: every file differs, so rows cannot be swapped unnoticed. */
function greyPng(seed: number): Promise<Buffer> {
  const pixels = Buffer.alloc(100);
  for (let i = 0; i < 100; i++) pixels[i] = (seed * 37 + i * (seed % 7 + 1)) % 256;
  return sharp(pixels, { raw: { width: 10, height: 10, channels: 1 } }).png().toBuffer();
}

describe("embedding: batches, channels, unreadable images, cache", () => {
  let work: string;
  let pairs: CellPair[];
  const N = 7;

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "embedding-test-"));
    pairs = [];
    for (let i = 0; i < N; i++) {
      const pair = { sampleId: `C/c${i}.png`, condition: "C", name: `c${i}.png`,
        actinPath: path.join(work, `a${i}.png`), nucleusPath: path.join(work, `n${i}.png`) };
      fs.writeFileSync(pair.actinPath, await greyPng(2 * i + 1));
      fs.writeFileSync(pair.nucleusPath, await greyPng(2 * i + 2));
      pairs.push(pair);
    }
  });

  after(() => fs.rmSync(work, { recursive: true, force: true }));

  /** Pairs whose images at the given (index, channel) are replaced by text files with an image's name. */
  function withUnreadable(bad: [number, "actin" | "nucleus"][]): CellPair[] {
    return pairs.map((p, i) => {
      const copy = { ...p };
      for (const [index, channel] of bad) {
        if (index !== i) continue;
        const file = path.join(work, `broken-${channel}-${i}.png`);
        fs.writeFileSync(file, "this is not an image\n");
        if (channel === "actin") copy.actinPath = file;
        else copy.nucleusPath = file;
      }
      return copy;
    });
  }

  async function expectedRows(files: string[]): Promise<number[]> {
    const rows = await Promise.all(files.map(async (f) => closedForm(await loadCell(f, { size: SIZE }))));
    return Array.from(Float32Array.from(rows.flat())); // the encoder hands back float32

  }

  const quiet: PairEmbedOptions = { progress: false, cacheDir: null, batchSize: 3 };

  for (const channels of ["concurrent", "sequential"] as const) {
    it(`${channels}: every row is its own image's embedding, in pair order, in batches of 3`, async () => {
      const encoders = { actin: new FakeEncoder(), nucleus: new FakeEncoder() };
      const result = await embedPairs(pairs, encoders, { ...quiet, channels });
      assert.deepEqual(Array.from(result.actin.vectors), await expectedRows(pairs.map((p) => p.actinPath)));
      assert.deepEqual(Array.from(result.nucleus.vectors), await expectedRows(pairs.map((p) => p.nucleusPath)));
      assert.deepEqual(result.rows, [0, 1, 2, 3, 4, 5, 6]);
      assert.deepEqual(result.unreadable, []);
      assert.deepEqual([result.actin.n, result.actin.dim, result.actin.cached], [N, DIM, 0]);
      assert.deepEqual(encoders.actin.batches, [3, 3, 1]);
      assert.deepEqual(encoders.nucleus.batches, [3, 3, 1]);
    });
  }

  it("skip: leaves out the cells with an unreadable image and lists each image, in pair order", async () => {
    const broken = withUnreadable([[4, "actin"], [1, "nucleus"], [4, "nucleus"]]);
    const result = await embedPairs(broken, { actin: new FakeEncoder(), nucleus: new FakeEncoder() },
      { ...quiet, onUnreadable: "skip" });
    const kept = [0, 2, 3, 5, 6];
    assert.deepEqual(result.rows, kept);
    assert.deepEqual(result.actin.rows, kept);
    assert.deepEqual(Array.from(result.actin.vectors), await expectedRows(kept.map((i) => pairs[i].actinPath)));
    assert.deepEqual(Array.from(result.nucleus.vectors), await expectedRows(kept.map((i) => pairs[i].nucleusPath)));
    assert.deepEqual(result.unreadable.map((u) => path.basename(u.file)),
      ["broken-nucleus-1.png", "broken-actin-4.png", "broken-nucleus-4.png"]);
    for (const u of result.unreadable) {
      assert.match(u.reason, /^not an image/, "the reason, without the file name in front");
    }
  });

  for (const channels of ["concurrent", "sequential"] as const) {
    it(`${channels} fail: throws the first unreadable image in pair order, actin before nucleus`, async () => {
      // The actin channel meets its bad image (pair 6) in its last batch, the nucleus channel (pair 3) in its
      // second: whichever comes first in time, pair 3's nucleus is first in pair order.
      const later = withUnreadable([[6, "actin"], [3, "nucleus"]]);
      await assert.rejects(embedPairs(later, { actin: new FakeEncoder(), nucleus: new FakeEncoder() },
        { ...quiet, channels }), /broken-nucleus-3\.png: not an image/);
      const tie = withUnreadable([[2, "nucleus"], [2, "actin"]]);
      await assert.rejects(embedPairs(tie, { actin: new FakeEncoder(), nucleus: new FakeEncoder() },
        { ...quiet, channels }), /broken-actin-2\.png: not an image/);
    });
  }

  it("an engine error stops the other channel, and only finished batches are cached", async () => {
    const cacheDir = path.join(work, "cache-crash");
    // actin crashes on its second batch; nucleus takes 100 ms a batch, so it is mid-run when that happens
    const encoders = { actin: new FakeEncoder(1), nucleus: new FakeEncoder(-1, 100) };
    await assert.rejects(embedPairs(pairs, encoders, { ...quiet, cacheDir }), /engine crashed/);
    const nucleusBatches = encoders.nucleus.batches.length;
    assert.ok(nucleusBatches < 3, `the nucleus channel ran all its batches (${nucleusBatches}) despite the error`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(encoders.nucleus.batches.length, nucleusBatches, "the nucleus channel kept embedding after the error");
    // 3 entries per finished batch: actin's first, nucleus's finished ones; none from actin's crashed batch
    const keys = fs.readdirSync(cacheDir);
    assert.equal(keys.length, 1, "both encoders share one cache key (same info)");
    const entries = (fs.readdirSync(path.join(cacheDir, keys[0]), { recursive: true }) as string[])
      .filter((f) => f.endsWith(".f32"));
    assert.equal(entries.length, 3 + 3 * nucleusBatches);
  });

  it("a warm cache answers every row without calling the encoder, with the same vectors", async () => {
    const cacheDir = path.join(work, "cache-warm");
    const files = pairs.map((p) => p.actinPath);
    const first = await embedImages(files, new FakeEncoder(), { ...quiet, cacheDir });
    const encoder = new FakeEncoder();
    const second = await embedImages(files, encoder, { ...quiet, cacheDir });
    assert.deepEqual(encoder.batches, []);
    assert.equal(second.cached, N);
    assert.deepEqual(second.vectors, first.vectors);
  });

  it("an aborted signal stops before the first batch, with the signal's reason", async () => {
    const encoder = new FakeEncoder();
    await assert.rejects(embedImages(pairs.map((p) => p.actinPath), encoder,
      { ...quiet, signal: AbortSignal.abort(new Error("user cancelled")) }), /user cancelled/);
    assert.deepEqual(encoder.batches, []);
  });
});
