// lib/composite.ts: colour composites worked out by hand on tiny images, auto-contrast against numpy
// (scripts/reference/plots_reference.py -> test/fixtures/plots/composite_reference.json), PNG round trips, montages.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import {
  Colour, composite, compositeFromFiles, compositePng, GreyImageLike, montage, montageLayout, resizeNearest,
} from "../lib/composite";
import { BBBC021, FIXTURES, requireFile } from "./paths";

interface CompositeFixture {
  cases: {
    width: number; height: number; maxValue: number; actin: number[]; nucleus: number[];
    actinColour: Colour; nucleusColour: Colour; percentiles: [number, number]; rgb: number[];
  }[];
}

const grey = (width: number, height: number, data: number[], maxValue = 255): GreyImageLike =>
  ({ width, height, data: Uint8Array.from(data), maxValue });

/** The composite's pixels as [R, G, B] triples, which is how the expected values below are written. */
function pixels(rgb: Uint8Array): number[][] {
  return Array.from({ length: rgb.length / 3 }, (_, i) => [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]]);
}

async function rawRgb(png: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

describe("composite: colour mixing", () => {
  // 3x2 actin ramp and a nucleus lit at two corners.
  const actin = grey(3, 2, [0, 51, 102, 153, 204, 255]);
  const nucleus = grey(3, 2, [255, 0, 0, 0, 0, 255]);

  it("autoContrast off: value / maxValue times each colour, added, rounded, clipped at 255", () => {
    const out = composite(actin, nucleus,
      { autoContrast: false, actinColour: [255, 128, 0], nucleusColour: [0, 128, 255] });
    assert.deepEqual([out.width, out.height], [3, 2]);
    // actin a = [0, .2, .4, .6, .8, 1], nucleus n = [1, 0, 0, 0, 0, 1]:
    // R = 255a; G = 128a + 128n (25.6 -> 26, 51.2 -> 51, 76.8 -> 77, 102.4 -> 102, 256 -> 255); B = 255n.
    assert.deepEqual(pixels(out.rgb), [
      [0, 128, 255], [51, 26, 0], [102, 51, 0], [153, 77, 0], [204, 102, 0], [255, 255, 255],
    ]);
  });

  it("default colours are actin green, nucleus blue", () => {
    const out = composite(actin, nucleus, { autoContrast: false });
    assert.deepEqual(pixels(out.rgb), [[0, 0, 255], [0, 51, 0], [0, 102, 0], [0, 153, 0], [0, 204, 0], [0, 255, 255]]);
  });

  it("autoContrast: stretch between the 0.5th and 99.5th percentiles; a flat channel is not stretched", () => {
    const dim = grey(3, 2, [10, 20, 30, 40, 50, 60]);
    const flat = grey(3, 2, [7, 7, 7, 7, 7, 7]);
    const out = composite(dim, flat);
    // Percentile positions 0.005 * 5 = 0.025 and 0.995 * 5 = 4.975: low = 10 + 0.025 * 10 = 10.25,
    // high = 50 + 0.975 * 10 = 59.75. G = 255 (v - 10.25) / 49.5, clipped: 0, 50.23, 101.74, 153.26, 204.77, 255.
    // The flat nucleus (low = high) keeps 7 / 255, so B = 7 everywhere.
    assert.deepEqual(pixels(out.rgb), [[0, 0, 7], [0, 50, 7], [0, 102, 7], [0, 153, 7], [0, 205, 7], [0, 255, 7]]);
    // Percentiles 0 and 100 are the minimum and maximum: (v - 10) / 50.
    const minMax = composite(dim, flat, { percentiles: [0, 100] });
    assert.deepEqual(pixels(minMax.rgb).map((p) => p[1]), [0, 51, 102, 153, 204, 255]);
  });

  it("autoContrast equals numpy's percentile stretch on random 12-bit and 8-bit channels", () => {
    const fixture: CompositeFixture = JSON.parse(
      fs.readFileSync(path.join(FIXTURES, "plots", "composite_reference.json"), "utf8"));
    for (const c of fixture.cases) {
      const out = composite(
        { width: c.width, height: c.height, data: Uint16Array.from(c.actin), maxValue: c.maxValue },
        { width: c.width, height: c.height, data: Uint16Array.from(c.nucleus), maxValue: c.maxValue },
        { actinColour: c.actinColour, nucleusColour: c.nucleusColour, percentiles: c.percentiles },
      );
      // Same float64 operations in the same order as the script, so the rounded bytes are identical; any
      // difference in the percentile definition moves many of them.
      assert.deepEqual(Array.from(out.rgb), c.rgb, `${c.width}x${c.height}, maxValue ${c.maxValue}`);
    }
  });

  it("a nucleus of another size is resized to the actin size by nearest neighbour (pixel centres)", () => {
    // 6x4 nucleus whose value is its own index: output pixel (x, y) of 3x2 samples source (2x + 1, 2y + 1).
    const big = grey(6, 4, Array.from({ length: 24 }, (_, i) => i));
    assert.deepEqual(Array.from(resizeNearest(big, 3, 2).data), [7, 9, 11, 19, 21, 23]);
    const out = composite(actin, big, { autoContrast: false, nucleusColour: [0, 0, 10] });
    assert.deepEqual(pixels(out.rgb).map((p) => p[2]), [7, 9, 11, 19, 21, 23].map((v) => Math.round((v / 255) * 10)));
    // A single pixel fills the whole picture.
    const dot = composite(actin, grey(1, 1, [255]), { autoContrast: false });
    assert.ok(pixels(dot.rgb).every((p) => p[2] === 255));
  });

  it("bad input is refused with the channel and the problem named", () => {
    assert.throws(() => composite(grey(3, 2, [1, 2, 3]), nucleus), /actin image: 3 values for a 3x2 image/);
    assert.throws(() => composite(actin, { ...nucleus, maxValue: 0 }), /nucleus image: maxValue must be positive/);
    assert.throws(() => composite(actin, nucleus, { actinColour: [0, 300, 0] }), /actinColour: .*\[0, 300, 0\]/);
    assert.throws(() => composite(actin, nucleus, { percentiles: [50, 5] }), /percentiles must satisfy/);
  });
});

describe("composite: PNG and files", () => {
  let dir = "";
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "composite-test-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("compositePng decodes back to composite()'s bytes", async () => {
    const a = grey(3, 2, [0, 51, 102, 153, 204, 255]);
    const n = grey(3, 2, [255, 0, 0, 0, 0, 255]);
    const decoded = await rawRgb(await compositePng(a, n));
    assert.deepEqual([decoded.width, decoded.height], [3, 2]);
    assert.deepEqual(Uint8Array.from(decoded.data), composite(a, n).rgb);
  });

  it("compositeFromFiles reads both grey PNGs; a missing file is named in the error", async () => {
    const actinFile = path.join(dir, "actin.png");
    const nucleusFile = path.join(dir, "nucleus.png");
    const a = [10, 20, 30, 40, 50, 60];
    const n = [200, 0, 100, 0, 50, 0];
    await sharp(Buffer.from(a), { raw: { width: 3, height: 2, channels: 1 } }).png().toFile(actinFile);
    await sharp(Buffer.from(n), { raw: { width: 3, height: 2, channels: 1 } }).png().toFile(nucleusFile);
    const fromFiles = await rawRgb(await compositeFromFiles(actinFile, nucleusFile, { autoContrast: false }));
    const expected = composite(grey(3, 2, a), grey(3, 2, n), { autoContrast: false });
    assert.deepEqual(Uint8Array.from(fromFiles.data), expected.rgb);
    await assert.rejects(compositeFromFiles(path.join(dir, "absent.png"), nucleusFile), /absent\.png/);
  });

  it("a real BBBC021 cell composes at the actin image's size", async function () {
    const actinFile = path.join(BBBC021, "DMSO", "Actine", "DMSO1.png");
    requireFile(this, actinFile, "BBBC021 sample crop");
    const png = await compositeFromFiles(actinFile, path.join(BBBC021, "DMSO", "Noyaux", "DMSO1.png"));
    const [meta, actinMeta] = await Promise.all([sharp(png).metadata(), sharp(actinFile).metadata()]);
    assert.deepEqual([meta.width, meta.height, meta.channels], [actinMeta.width, actinMeta.height, 3]);
  });
});

describe("composite: montage", () => {
  const solid = (colour: string, width = 20, height = 20) =>
    sharp({ create: { width, height, channels: 3, background: colour } }).png().toBuffer();

  it("layout: columns x rows of tiles with gaps, and a label strip under each tile when labelled", () => {
    const labelled = montageLayout(5, 2, 32, 4, true);
    assert.deepEqual([labelled.width, labelled.height], [2 * 32 + 4, 3 * (32 + 20) + 2 * 4]);
    assert.deepEqual(labelled.tiles[3], { left: 36, top: 56 });
    const strip = montageLayout(3, 10, 32, 4, false);
    assert.deepEqual([strip.width, strip.height], [3 * 32 + 2 * 4, 32], "fewer images than columns: no empty columns");
  });

  it("places each image in its tile, captions under it, background elsewhere", async () => {
    const images = await Promise.all([solid("#ff0000"), solid("#00ff00"), solid("#0000ff", 10, 20)]);
    const png = await montage(images, { columns: 2, tile: 32, gap: 4, labels: ["red", "green", "tall"] });
    const { data, width, height } = await rawRgb(png);
    assert.deepEqual([width, height], [68, 2 * 52 + 4]);
    const at = (x: number, y: number) => Array.from(data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3));
    assert.deepEqual(at(16, 16), [255, 0, 0]);
    assert.deepEqual(at(52, 16), [0, 255, 0]);
    assert.deepEqual(at(34, 16), [0, 0, 0], "gap");
    // The 10x20 image is scaled to 16x32 and centred: blue in the middle, background at the tile's sides.
    assert.deepEqual(at(16, 56 + 16), [0, 0, 255]);
    assert.deepEqual(at(2, 56 + 16), [0, 0, 0]);
    assert.deepEqual(at(52, 56 + 16), [0, 0, 0], "no fourth image");
    const captionPixels = (left: number, top: number) => {
      let lit = 0;
      for (let y = top; y < top + 20; y++) for (let x = left; x < left + 32; x++) if (at(x, y)[0] > 128) lit++;
      return lit;
    };
    assert.ok(captionPixels(0, 32) > 20, "the first caption is drawn in white under its tile");
    assert.equal(captionPixels(36, 56 + 32), 0, "nothing under the missing fourth tile");
  });

  it("refuses empty input, mismatched labels and undecodable images", async () => {
    await assert.rejects(montage([]), /no images/);
    const red = await solid("#ff0000");
    await assert.rejects(montage([red], { labels: ["a", "b"] }), /2 labels for 1 images/);
    await assert.rejects(montage([red, Buffer.from("not a png")]), /image 1 cannot be decoded/);
    await assert.rejects(montage([red], { columns: 0 }), /columns must be an integer >= 1, got 0/);
  });
});
