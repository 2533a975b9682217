// Decoding and resizing checked against PIL 9.4 / torchvision 0.14 themselves (fixtures written by
// scripts/reference/preprocess_reference.py). 8-bit results must be identical to PIL's, byte for byte, and the
// float32 tensors identical to torchvision's (compared by sha256 of their bytes): the method's embeddings are
// only reproducible if the pixels are.
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CELL_SIZE, decodeGrey, GreyImage, loadCell, resampleBilinearFloat32, resampleBilinearUint8, resizeBilinear,
} from "../lib/preprocess";
import { BBBC021, FIXTURES, requireFile } from "./paths";

const DIR = path.join(FIXTURES, "preprocess");

interface SampledLines { lines: number[]; dtype: "<u2" | "<f4"; rowsBase64: string; colsBase64: string }
interface Case {
  file: string; mode: string; width: number; height: number; maxValue: number; greySha256: string;
  pil224?: string; greyL?: string; torchvisionSha256?: string;
  pilI224Lines?: SampledLines; pilF224Lines?: SampledLines;
}
interface Manifest { size: number; cases: Case[]; realData: { file: string; torchvisionSha256: string }[] }

const manifest = JSON.parse(fs.readFileSync(path.join(DIR, "manifest.json"), "utf8")) as Manifest;
const eightBit = manifest.cases.filter((c) => c.maxValue === 255);
const sixteenBit = manifest.cases.filter((c) => c.maxValue === 65535);

/** sha256 of a typed array's bytes (little-endian on every platform Node ships for). */
function sha256(a: ArrayBufferView): string {
  return createHash("sha256").update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest("hex");
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Decode the fixture's sampled rows and columns to [row or column][224 values]. */
function decodeLines(s: SampledLines, size: number): { rows: number[][]; cols: number[][] } {
  const decode = (b64: string): number[][] => {
    const bytes = Buffer.from(b64, "base64");
    const values = s.dtype === "<f4"
      ? Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(4 * i))
      : Array.from({ length: bytes.length / 2 }, (_, i) => bytes.readUInt16LE(2 * i));
    return s.lines.map((_, j) => values.slice(j * size, (j + 1) * size));
  };
  return { rows: decode(s.rowsBase64), cols: decode(s.colsBase64) };
}

/** Largest |ours * scale - reference| over the fixture's sampled rows and columns. */
function worstOnLines(ours: Float32Array, s: SampledLines, size: number, scale: number): number {
  const ref = decodeLines(s, size);
  let worst = 0;
  s.lines.forEach((line, j) => {
    for (let i = 0; i < size; i++) {
      worst = Math.max(worst, Math.abs(ours[line * size + i] * scale - ref.rows[j][i]));
      worst = Math.max(worst, Math.abs(ours[i * size + line] * scale - ref.cols[j][i]));
    }
  });
  return worst;
}

function grey8(width: number, height: number, values: number[]): GreyImage {
  return { width, height, data: Uint8Array.from(values), maxValue: 255 };
}

describe("preprocess: decodeGrey", () => {
  for (const c of manifest.cases) {
    it(`${c.file} (${c.mode}) decodes to PIL's convert("L") pixels`, async () => {
      const img = await decodeGrey(path.join(DIR, c.file));
      assert.equal(img.width, c.width);
      assert.equal(img.height, c.height);
      assert.equal(img.maxValue, c.maxValue);
      assert.ok(c.maxValue === 255 ? img.data instanceof Uint8Array : img.data instanceof Uint16Array);
      if (c.greyL) {
        // a readable diff first, then the exact check
        const pilGrey = await decodeGrey(path.join(DIR, c.greyL));
        assert.equal(maxAbsDiff(img.data, pilGrey.data), 0);
      }
      assert.equal(sha256(img.data), c.greySha256);
    });
  }

  it("accepts bytes with a name", async () => {
    const c = eightBit[0];
    const img = await decodeGrey({ bytes: fs.readFileSync(path.join(DIR, c.file)), name: "cell.png" });
    assert.equal(sha256(img.data), c.greySha256);
  });

  describe("bad input names the file and the problem", () => {
    let dir: string;
    before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "preprocess-")); });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    const cases: [string, (f: string) => void, RegExp][] = [
      ["empty.png", (f) => fs.writeFileSync(f, Buffer.alloc(0)), /empty\.png: empty file/],
      ["notes.png", (f) => fs.writeFileSync(f, "these are notes, not pixels\n".repeat(20)), /notes\.png: not an image/],
      ["truncated.png", (f) => {
        const png = fs.readFileSync(path.join(DIR, "grey_300x150.png"));
        fs.writeFileSync(f, png.subarray(0, png.length >> 1));
      }, /truncated\.png: truncated or corrupt/],
    ];
    for (const [name, make, expected] of cases) {
      it(name, async () => {
        const file = path.join(dir, name);
        make(file);
        await assert.rejects(decodeGrey(file), expected);
      });
    }

    it("missing file", async () => {
      await assert.rejects(decodeGrey(path.join(dir, "absent.png")), /absent\.png: cannot read image file \(ENOENT\)/);
    });

    it("more pixels than allowed", async () => {
      await assert.rejects(decodeGrey(path.join(DIR, "grey_300x150.png"), { maxPixels: 300 * 150 - 1 }),
        /grey_300x150\.png: image too large/);
    });
  });
});

describe("preprocess: PIL-exact bilinear resize", () => {
  for (const c of eightBit) {
    it(`${c.file} ${c.width}x${c.height} -> ${manifest.size}: PIL's uint8, exactly`, async () => {
      const img = await decodeGrey(path.join(DIR, c.file));
      const ours = resampleBilinearUint8(img.data as Uint8Array, img.width, img.height, manifest.size, manifest.size);
      const pil = await decodeGrey(path.join(DIR, c.pil224!));
      // PIL's result is integer arithmetic on integers: any difference, even one grey level, is a bug
      assert.equal(maxAbsDiff(ours, pil.data), 0);
    });

    it(`${c.file}: loadCell equals torchvision's ToTensor(Resize(img)) float32 bytes`, async () => {
      const cell = await loadCell(path.join(DIR, c.file));
      assert.equal(cell.length, CELL_SIZE * CELL_SIZE);
      assert.equal(sha256(cell), c.torchvisionSha256);
    });
  }

  for (const c of sixteenBit) {
    it(`${c.file} (16-bit) follows PIL's float path and keeps the 16-bit range`, async () => {
      const cell = await loadCell(path.join(DIR, c.file));
      // PIL "F" resize / 65535: both sides accumulate in double in the same order and store float32, so they
      // agree to float32 rounding of the final division (~3e-8); 1e-6 leaves room for nothing else.
      const worstFloat = worstOnLines(cell, c.pilF224Lines!, manifest.size, 65535) / 65535;
      assert.ok(worstFloat <= 1e-6, `float path off by ${worstFloat}`);
      // PIL's integer mode "I" rounds after each pass (<= 0.5 level each, the vertical weights sum to 1), so it
      // may differ from the float path by up to one 16-bit level, plus float32 rounding of values near 65535.
      const worstInt = worstOnLines(cell, c.pilI224Lines!, manifest.size, 65535);
      assert.ok(worstInt <= 1 + 0.01, `integer path off by ${worstInt} levels`);
      assert.ok(worstInt > 0, "expected the float path to differ from PIL's integer rounding somewhere");
    });
  }

  it("closed form: 4 -> 2 pixels averages over the widened triangle (antialiasing), rounded half up", () => {
    // scale 2 widens the triangle to support 2; output 0 is centred at 1.0 and reads inputs 0..2 with weights
    // 0.75, 0.75, 0.25 (normalised: 3/7, 3/7, 1/7); output 1 is centred at 3.0 and reads inputs 1..3 with 1/7,
    // 3/7, 3/7. So [0, 100, 200, 50] -> [500/7, 850/7] = [71.43, 121.43].
    assert.deepEqual(Array.from(resampleBilinearUint8(Uint8Array.from([0, 100, 200, 50]), 4, 1, 2, 1)), [71, 121]);
    const asFloat = resampleBilinearFloat32([0, 100, 200, 50], 4, 1, 2, 1);
    // float32 holds 71.43 to ~4e-6
    assert.ok(maxAbsDiff(asFloat, [500 / 7, 850 / 7]) < 1e-5);
    // the same along the other axis: a column is resized by the vertical pass alone
    assert.deepEqual(Array.from(resampleBilinearUint8(Uint8Array.from([0, 100, 200, 50]), 1, 4, 1, 2)), [71, 121]);
  });

  it("closed form: 2 -> 4 pixels interpolates linearly, clamping at the borders", () => {
    // upscale: output centres sit at 0.25, 0.75, 1.25, 1.75 input pixels. The outer two see only the nearest
    // input (the window is cut at the border, weights renormalised to 1); the inner two mix 0.75 / 0.25.
    assert.deepEqual(Array.from(resampleBilinearUint8(Uint8Array.from([0, 200]), 2, 1, 4, 1)), [0, 50, 150, 200]);
  });

  it("closed form: a constant image stays constant at any size", () => {
    for (const [w, h, ow, oh] of [[7, 3, 224, 224], [500, 9, 224, 224], [1, 1, 224, 224], [224, 224, 3, 5]]) {
      const out = resampleBilinearUint8(new Uint8Array(w * h).fill(173), w, h, ow, oh);
      assert.equal(out.length, ow * oh);
      assert.ok(out.every((v) => v === 173), `${w}x${h} -> ${ow}x${oh}`);
    }
  });

  it("same size returns a copy of the pixels, scaled by maxValue", () => {
    const img = grey8(2, 2, [0, 51, 102, 255]);
    const out = resizeBilinear(img, 2, 2);
    assert.deepEqual(Array.from(out), [0, 51, 102, 255].map((v) => Math.fround(v / 255)));
    const sixteen: GreyImage = { width: 2, height: 1, data: Uint16Array.from([0, 65535]), maxValue: 65535 };
    assert.deepEqual(Array.from(resizeBilinear(sixteen, 2, 1)), [0, 1]);
  });

  it("refuses sizes that do not match the pixels", () => {
    assert.throws(() => resizeBilinear(grey8(2, 2, [1, 2, 3]), 4, 4), /3 pixels given for a 2x2 image/);
    assert.throws(() => resampleBilinearUint8(new Uint8Array(4), 2, 2, 0, 4), /output width must be a positive integer/);
  });
});

describe("preprocess: real BBBC021 crops", () => {
  it("loadCell equals torchvision on shared crops; timing of decode + resize", async function () {
    requireFile(this, BBBC021, "shared BBBC021 crops");
    for (const ref of manifest.realData) {
      assert.equal(sha256(await loadCell(path.join(BBBC021, ref.file))), ref.torchvisionSha256, ref.file);
    }
    const dir = path.join(BBBC021, "DMSO", "Actine");
    const files = fs.readdirSync(dir).filter((f) => f.endsWith(".png")).slice(0, 200);
    const t0 = process.hrtime.bigint();
    for (const f of files) await loadCell(path.join(dir, f));
    const msPerImage = Number(process.hrtime.bigint() - t0) / 1e6 / files.length;
    console.log(`      decode + resize to ${CELL_SIZE}x${CELL_SIZE}: ${msPerImage.toFixed(2)} ms per 68x68 crop ` +
      `(${files.length} crops, one at a time)`);
  });
});
