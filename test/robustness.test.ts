// Issue 6, one test per row of the README's robustness table: every bad input gets a clear error or an explicit
// report, nothing is half-written, nothing escapes the target folder. Datasets are a few 40x40 cells built here;
// the encoders are the shared seed0 ResNet18 on onnxruntime (the numbers themselves are checked elsewhere).
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import AdmZip from "adm-zip";
import sharp from "sharp";
import { scoreTem } from "../lib/axis";
import { decodeGrey } from "../lib/preprocess";
import { scoreDataset, writeScoreOutputs, type ScoreRun } from "../lib/pipeline";
import { WEIGHTS_BIN, WEIGHTS_MANIFEST } from "../lib/weights";
import { FIXTURES, PROJECT_ROOT } from "./paths";
import {
  celltoolCells, cellPng, listFiles, runBin, runMain, seed0WeightsDir, tempDir, writeTree, type CellFiles,
} from "./robustnessKit";

const FORMATS = path.join(FIXTURES, "robustness");
const TINY_PTH = path.join(FIXTURES, "weights", "tiny.pth");

interface FormatCase { mode: string; width: number; height: number; maxValue?: number; grey?: number[] }
const formats = JSON.parse(fs.readFileSync(path.join(FORMATS, "expected.json"), "utf8")) as { cases: Record<string, FormatCase> };

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, "utf8")) as T;
}

/** A PNG whose header declares width x height over a few bytes of data: what a decompression bomb looks like. */
function pngDeclaring(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // 8-bit grey, the rest 0
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header),
    chunk("IDAT", zlib.deflateSync(Buffer.alloc(1024))), chunk("IEND", Buffer.alloc(0))]);
}

async function truncated(image: Promise<Buffer>): Promise<Buffer> {
  const bytes = await image;
  return bytes.subarray(0, bytes.length >> 1);
}

interface UnreadableSection {
  cells_skipped: number;
  images: { sample_id: string; condition: string; channel: string; file: string; reason: string }[];
}

describe("robustness: the README table, row by row", function () {
  let weights: string;
  let work: string;

  before(function () {
    weights = seed0WeightsDir(this);
    work = tempDir("robust");
  });
  after(() => {
    for (const dir of [weights, work]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const scoreArgs = (dataset: string, out: string, ...extra: string[]) =>
    ["score", dataset, "--out", out, "--engine", "onnx", "--weights", weights, "--no-cache", "--batch", "4", ...extra];

  it("zip entry with ../ or an absolute path: refused, nothing written outside the target, the entry named", async () => {
    const cells = await celltoolCells({ Ctrl: 2, TNFTGF: 2 });
    const outside = path.join(work, "zipslip");
    fs.mkdirSync(outside);
    const absolute = path.join(outside, "abs-evil.png");
    const hostileNames = ["../../../../evil.png", absolute];
    for (const hostile of hostileNames) {
      const placeholder = "x".repeat(hostile.length);
      const zip = new AdmZip();
      for (const [name, content] of Object.entries(cells)) zip.addFile(`data/${name}`, content as Buffer);
      zip.addFile(placeholder, Buffer.from("payload"));
      const text = zip.toBuffer().toString("latin1");
      const zipFile = path.join(outside, "hostile.zip");
      fs.writeFileSync(zipFile, Buffer.from(text.split(placeholder).join(hostile), "latin1"));
      const extractDir = path.join(outside, "extracted");

      await assert.rejects(scoreDataset(zipFile, { extractDir, weightsDir: weights, engine: "onnx", cacheDir: null }),
        (err: Error) => err.message.includes(`refusing entry ${JSON.stringify(hostile)}`));
      // the default extraction place (<project>/.cache/datasets) via the CLI: same refusal, exit code 1
      const cli = await runMain(scoreArgs(zipFile, path.join(outside, "out")));
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, new RegExp(`refusing entry "${hostile.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}"`));

      assert.deepEqual(fs.readdirSync(outside), ["hostile.zip"], "no extraction, no output folder, no escaped file");
      assert.equal(fs.existsSync(path.resolve(extractDir, "../../../../evil.png")), false);
      const cached = path.join(PROJECT_ROOT, ".cache", "datasets");
      assert.deepEqual(listFiles(cached).filter((f) => f.includes("hostile")), [], "nothing in the project cache");
    }
  });

  describe("corrupt or truncated PNG/TIFF, a non-image with an image extension", () => {
    let dataset: string;
    const broken = new Map<string, RegExp>();

    before(async () => {
      const cells = await celltoolCells({ Ctrl: 4, TNFTGF: 4, TGF: 2 });
      const tiff = (seed: number) => cellPng(seed).then((png) => sharp(png).tiff().toBuffer());
      const extra: CellFiles = {
        "Ctrl/Actine/c1.png": await truncated(cellPng(901)),
        "TNFTGF/Actine/c3.png": "this is a text file with an image's name\n",
        "TGF/Actine/t0.tif": await tiff(902),
        "TGF/Noyaux/t0.tif": await truncated(tiff(903)),
        "TGF/Actine/bomb.png": pngDeclaring(100_000, 100_000),
        "TGF/Noyaux/bomb.png": await cellPng(904),
      };
      dataset = writeTree(path.join(work, "broken"), { ...cells, ...extra });
      // in dataset order: conditions, then names, in natural order; actin before nucleus
      broken.set("Ctrl/c1.png actin", /truncated or corrupt image data/);
      broken.set("TGF/bomb.png actin", /image too large: more than the limit of 67108864 pixels/);
      broken.set("TGF/t0.tif nucleus", /truncated or corrupt TIFF \(the file starts as one but cannot be decoded\)/);
      broken.set("TNFTGF/c3.png actin", /not an image \(unrecognised or unsupported format\)/);
    });

    it("are skipped and reported with file and reason: console, metrics.json, pairing_report.json", async () => {
      const out = path.join(work, "broken-out");
      const cli = await runMain(scoreArgs(dataset, out));
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /^scored 8 cells \(4 skipped as unreadable\)/);
      assert.match(cli.stderr, /4 cell\(s\) skipped: 4 image\(s\) could not be decoded/);

      for (const report of ["metrics.json", "pairing_report.json"]) {
        const section = readJson<{ unreadable: UnreadableSection }>(path.join(out, report)).unreadable;
        assert.equal(section.cells_skipped, 4, report);
        assert.deepEqual(section.images.map((u) => `${u.sample_id} ${u.channel}`), [...broken.keys()], report);
        for (const u of section.images) {
          assert.match(u.reason, broken.get(`${u.sample_id} ${u.channel}`)!, `${report}: ${u.sample_id}`);
          assert.ok(fs.existsSync(u.file) && u.file.startsWith(dataset), `${report} names the real file: ${u.file}`);
          assert.ok(cli.stderr.includes(u.file), `the console names ${u.file}`);
        }
      }
      const scored = fs.readFileSync(path.join(out, "tem_scores.csv"), "utf8");
      for (const id of ["Ctrl/c1.png", "TNFTGF/c3.png", "TGF/t0.tif", "TGF/bomb.png"]) assert.ok(!scored.includes(id), id);
      assert.equal(scored.trim().split("\n").filter((l) => !l.startsWith("#")).length, 1 + 8);
    });

    it("stop the run with --strict, naming the first unreadable file in dataset order, writing nothing", async () => {
      const out = path.join(work, "strict-out");
      const cli = await runMain(scoreArgs(dataset, out, "--strict"));
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /cellmorpho: .*\/broken\/Ctrl\/Actine\/c1\.png: truncated or corrupt image data/);
      assert.equal(fs.existsSync(out), false);
    });
  });

  describe("anchor condition missing or with < 2 usable pairs", () => {
    it("absent: stops before loading the encoders, naming the conditions found", async () => {
      const dataset = writeTree(path.join(work, "anchors-absent"), await celltoolCells({ Ctrl: 2, TNFTGF: 3 }));
      const cli = await runMain(scoreArgs(dataset, path.join(work, "anchors-absent-out"), "--anchors", "Ctrl,EMT"));
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /anchor condition "EMT" not found in .*; conditions found \(usable pairs\): Ctrl 2, TNFTGF 3/);
      assert.doesNotMatch(cli.stderr, /encoder resnet18/, "no encoder was opened");
    });

    it("one pair: stops before loading the encoders", async () => {
      const dataset = writeTree(path.join(work, "anchors-one"), await celltoolCells({ Ctrl: 1, TNFTGF: 3 }));
      const cli = await runMain(scoreArgs(dataset, path.join(work, "anchors-one-out")));
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /anchor condition "Ctrl" has 1 usable pair\(s\), at least 2 are needed; conditions found \(usable pairs\): Ctrl 1, TNFTGF 3/);
      assert.doesNotMatch(cli.stderr, /encoder resnet18/);
    });

    it("two pairs of which one is unreadable: stops after decoding, saying why", async () => {
      const cells = await celltoolCells({ Ctrl: 2, TNFTGF: 2 });
      cells["Ctrl/Noyaux/c0.png"] = "not an image";
      const dataset = writeTree(path.join(work, "anchors-unreadable"), cells);
      const cli = await runMain(scoreArgs(dataset, path.join(work, "anchors-unreadable-out")));
      assert.equal(cli.code, 1);
      assert.ok(cli.stderr.includes(`anchor condition "Ctrl" has 1 usable pair(s), at least 2 are needed (1 cell(s) left ` +
        `out as unreadable: ${dataset}/Ctrl/Noyaux/c0.png (not an image (unrecognised or unsupported format))); ` +
        "conditions found (usable pairs): Ctrl 1, TNFTGF 2"), cli.stderr);
    });
  });

  describe("a messy but usable folder, scored once", () => {
    let dataset: string;
    let out: string;
    let run: ScoreRun;
    let pairing: {
      conditions: { condition: string; actin: number; nucleus: number; pairs: number; actinOnly: string[];
        nucleusOnly: string[]; nearMisses: { actin: string; nucleus: string }[]; missingChannelFolders: string[] }[];
      totalPairs: number;
      unreadable: UnreadableSection;
    };
    const formatCell = (file: string) => fs.readFileSync(path.join(FORMATS, file));

    before(async () => {
      const files: CellFiles = {
        ...await celltoolCells({ Ctrl: 3, TNFTGF: 3 }),
        // hidden files and a Mac resource fork folder: never data
        "Ctrl/.DS_Store": "x", "Ctrl/Actine/.DS_Store": "x", "Ctrl/Actine/._c0.png": "fork",
        "__MACOSX/Ctrl/Actine/._c0.png": "fork", ".DS_Store": "x",
        // a condition with one channel folder, one with both empty, a folder with no channel folder at all
        "TNF/Actine/f0.png": await cellPng(700),
        "TGF/Actine/.keep": "", "TGF/Noyaux/.keep": "",
        "Empty/.keep": "",
        // unpaired files, and near-misses: names that differ only in case or extension
        "Ctrl/Actine/c9.png": await cellPng(701),
        "TNFTGF/Noyaux/extra.png": await cellPng(702),
        "Ctrl/Actine/c7.png": await cellPng(703), "Ctrl/Noyaux/C7.png": await cellPng(704),
        "TNFTGF/Actine/m5.tif": await cellPng(705), "TNFTGF/Noyaux/m5.png": await cellPng(706),
        // every pixel format: colour actin channels, 16-bit nuclei, and a float image
        "Ctrl/Actine/rgb.png": formatCell("rgb_6x4.png"), "Ctrl/Noyaux/rgb.png": await cellPng(707),
        "Ctrl/Actine/rgba.png": formatCell("rgba_6x4.png"), "Ctrl/Noyaux/rgba.png": await cellPng(708),
        "Ctrl/Actine/palette.png": formatCell("palette_6x4.png"), "Ctrl/Noyaux/palette.png": await cellPng(709),
        "TNFTGF/Actine/g16.png": await cellPng(710, true), "TNFTGF/Noyaux/g16.png": formatCell("grey16_6x4.png"),
        "TNFTGF/Actine/g16.tif": await cellPng(711, true), "TNFTGF/Noyaux/g16.tif": formatCell("grey16_6x4.tif"),
        "TNFTGF/Actine/float.tif": formatCell("float32_6x4.tif"), "TNFTGF/Noyaux/float.tif": await cellPng(712),
      };
      fs.rmSync(path.join(work, "messy"), { recursive: true, force: true });
      fs.mkdirSync(path.join(work, "messy", "Empty"), { recursive: true });
      dataset = writeTree(path.join(work, "messy"), files);
      out = path.join(work, "messy-out");
      run = await scoreDataset(dataset, {
        engine: "onnx", weightsDir: weights, cacheDir: null, batchSize: 8, onUnreadable: "skip", progress: false,
        log: () => undefined,
      });
      writeScoreOutputs(run, out);
      pairing = readJson(path.join(out, "pairing_report.json"));
    });

    it("condition folder without Actine/ or Noyaux/, empty folder, hidden files: reported or ignored, no crash", () => {
      const byName = new Map(pairing.conditions.map((c) => [c.condition, c]));
      // natural order; "Empty" has no channel folder, so it is no condition; __MACOSX and dot-folders are never looked at
      assert.deepEqual([...byName.keys()], ["Ctrl", "TGF", "TNF", "TNFTGF"]);
      assert.deepEqual(byName.get("TNF"), {
        condition: "TNF", actin: 1, nucleus: 0, pairs: 0, actinOnly: ["f0.png"], nucleusOnly: [], nearMisses: [],
        missingChannelFolders: ["Noyaux"],
      });
      assert.deepEqual(byName.get("TGF"), {
        condition: "TGF", actin: 0, nucleus: 0, pairs: 0, actinOnly: [], nucleusOnly: [], nearMisses: [],
        missingChannelFolders: [],
      });
      // hidden files are not counted: Ctrl's actin folder holds c0-c2, c7, c9, rgb, rgba, palette (+ 2 dot-files)
      assert.equal(byName.get("Ctrl")!.actin, 8);
      const stats = run.metrics.scores.tem_fused.by_condition.map((s) => s.condition);
      assert.deepEqual(stats, ["Ctrl", "TNFTGF"], "conditions without cells get no statistics, not NaN");
    });

    it("unpaired files and names differing only in case or extension: listed, never paired", () => {
      const ctrl = pairing.conditions.find((c) => c.condition === "Ctrl")!;
      const tnftgf = pairing.conditions.find((c) => c.condition === "TNFTGF")!;
      assert.deepEqual(ctrl.actinOnly, ["c7.png", "c9.png"]);
      assert.deepEqual(ctrl.nucleusOnly, ["C7.png"]);
      assert.deepEqual(ctrl.nearMisses, [{ actin: "c7.png", nucleus: "C7.png" }]);
      assert.deepEqual(tnftgf.actinOnly, ["m5.tif"]);
      assert.deepEqual(tnftgf.nucleusOnly, ["extra.png", "m5.png"]);
      assert.deepEqual(tnftgf.nearMisses, [{ actin: "m5.tif", nucleus: "m5.png" }]);
      const ids = run.rows.map((r) => r.sample_id);
      for (const id of ["Ctrl/c7.png", "Ctrl/C7.png", "Ctrl/c9.png", "TNFTGF/m5.tif", "TNFTGF/extra.png"]) {
        assert.ok(!ids.includes(id), id);
      }
    });

    it("RGB, RGBA, 16-bit, float TIFF, palette PNG: one grey channel as PIL gives it; 16-bit keeps its range", async () => {
      for (const [file, expected] of Object.entries(formats.cases)) {
        if (expected.grey === undefined) continue;
        const img = await decodeGrey(path.join(FORMATS, file));
        assert.deepEqual([img.width, img.height, img.maxValue], [expected.width, expected.height, expected.maxValue], file);
        assert.deepEqual(Array.from(img.data), expected.grey, `${file} (${expected.mode})`);
      }
      // sharp cannot write a float TIFF (it casts to 8 bits): this one comes from PIL. Its range is undefined, and
      // PIL's convert("L") truncates it to 0..255 (a [0, 1] image turns black), so it is refused, not guessed.
      await assert.rejects(decodeGrey(path.join(FORMATS, "float32_6x4.tif")),
        /float32_6x4\.tif: unsupported colour space \/ sample format b-w\/float/);
      // not in the table, found on the way: .bmp counts as an image extension, but sharp has no BMP decoder
      await assert.rejects(decodeGrey(path.join(FORMATS, "grey_6x4.bmp")),
        /grey_6x4\.bmp: BMP images cannot be decoded here; convert them to PNG or TIFF/);
      // in a run: the colour and 16-bit cells are scored, the float cell is reported
      const ids = run.rows.map((r) => r.sample_id);
      for (const id of ["Ctrl/rgb.png", "Ctrl/rgba.png", "Ctrl/palette.png", "TNFTGF/g16.png", "TNFTGF/g16.tif"]) {
        assert.ok(ids.includes(id), id);
      }
      assert.deepEqual(pairing.unreadable.images.map((u) => [u.sample_id, u.channel]), [["TNFTGF/float.tif", "actin"]]);
      assert.match(pairing.unreadable.images[0].reason, /unsupported colour space \/ sample format b-w\/float/);
    });

    it("output folder not writable, disk full mid-write: previous outputs intact, no temporary file", async () => {
      const before = new Map(listFiles(out).map((f) => [f, fs.readFileSync(path.join(out, f))]));
      assert.deepEqual([...before.keys()], ["metrics.json", "pairing_report.json", "stats_by_condition.csv", "tem_scores.csv"]);
      let writes = 0;
      const diskFullOnSecondFile = (file: string, text: string) => {
        if (++writes === 2) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        fs.writeFileSync(file, text.replace(/0\./g, "9.")); // different content: a half-applied update would show
      };
      assert.throws(() => writeScoreOutputs(run, out, { writeFile: diskFullOnSecondFile }),
        /could not write stats_by_condition\.csv to .*messy-out \(ENOSPC: no space left on device, write\); the previous outputs there are unchanged/);
      assert.deepEqual(fs.readdirSync(out).sort(), [...before.keys()], "no temporary file or staging folder left");
      for (const [file, bytes] of before) assert.ok(fs.readFileSync(path.join(out, file)).equals(bytes), file);

      // not writable: a path under a regular FILE (chmod means nothing to root); refused before any embedding
      const blocker = path.join(work, "a-file");
      fs.writeFileSync(blocker, "");
      const target = path.join(blocker, "out");
      const cli = await runMain(scoreArgs(dataset, target));
      assert.equal(cli.code, 1);
      assert.ok(cli.stderr.includes(`cannot write outputs to ${target}: ${blocker} is a file, not a folder`), cli.stderr);
      assert.doesNotMatch(cli.stderr, /encoder resnet18/, "checked before the encoders load");
      assert.throws(() => writeScoreOutputs(run, target), /is a file, not a folder/);
    });
  });

  it("very large image (decompression bomb), zero-size image: refused with a limit message", async () => {
    await assert.rejects(decodeGrey({ bytes: pngDeclaring(100_000, 100_000), name: "bomb.png" }),
      /^Error: bomb\.png: image too large: more than the limit of 67108864 pixels \(Input image exceeds pixel limit\)$/);
    await assert.rejects(decodeGrey({ bytes: pngDeclaring(8193, 8193), name: "big.png" }, { maxPixels: 8192 * 8192 }),
      /big\.png: image too large: more than the limit of 67108864 pixels/);
    await assert.rejects(decodeGrey({ bytes: pngDeclaring(0, 10), name: "zero.png" }), /zero\.png: .*invalid image width/);
    await assert.rejects(decodeGrey({ bytes: Buffer.alloc(0), name: "empty.png" }), /empty\.png: empty file \(0 bytes\), not an image/);
    // in a run, the bomb is one more unreadable cell: see the "corrupt or truncated" row (TGF/bomb.png)
  });

  describe("all cells identical (zero-length axis), constant scores", () => {
    it("identical images: a clear error naming the channel, no output written", async () => {
      const same = await cellPng(1);
      const files: CellFiles = {};
      for (const c of ["Ctrl", "TNFTGF"]) for (const k of [0, 1, 2]) for (const ch of ["Actine", "Noyaux"]) files[`${c}/${ch}/c${k}.png`] = same;
      const dataset = writeTree(path.join(work, "identical"), files);
      const out = path.join(work, "identical-out");
      const cli = await runMain(scoreArgs(dataset, out));
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /cannot score .*identical \(anchors Ctrl vs TNFTGF\): scoreTem, actin channel: temAxis: the two anchors have identical mean embeddings: no axis/);
      assert.equal(fs.existsSync(out), false);
    });

    it("constant scores (p1 = p99): a clear error, never NaN", () => {
      // 300 cells: 296 at a, 2 mesenchymal anchors at b (so the axis exists), 2 more at a. s is 0 for 298 cells;
      // numpy's p99 sits at index 299 * 0.99 = 296.01, still among the zeros, so p1 = p99 = 0.
      const n = 300;
      const emb = new Float64Array(n * 2);
      const conditions: string[] = [];
      for (let i = 0; i < n; i++) {
        const mesenchymal = i >= n - 2;
        emb.set(mesenchymal ? [0, 1] : [1, 0], i * 2);
        conditions.push(mesenchymal ? "TNFTGF" : i < 150 ? "Ctrl" : "Other");
      }
      assert.throws(() => scoreTem({ actin: { emb, n, d: 2 }, nucleus: { emb, n, d: 2 }, conditions, anchors: ["Ctrl", "TNFTGF"] }),
        /scoreTem, actin channel: robustScale: the 1% and 99% percentiles are equal \(0\): the scores are constant/);
    });
  });

  it("interrupted run (SIGINT): no tem_scores.csv, only complete cache entries, the rerun equals a fresh run", async () => {
    const dataset = writeTree(path.join(work, "sigint"), await celltoolCells({ Ctrl: 12, TNFTGF: 12 }));
    const images = 48;
    const cache = path.join(work, "sigint-cache");
    const args = (out: string, ...extra: string[]) => ["score", dataset, "--out", path.join(work, out), "--engine", "onnx",
      "--weights", weights, "--batch", "2", ...extra];
    const entries = () => listFiles(cache).filter((f) => f.endsWith(".f32"));

    // interrupt as soon as the first batch is in the cache
    const interrupted = await runBin(args("sigint-out", "--cache-dir", cache), (child) => {
      const poll = setInterval(() => {
        if (entries().length > 0) child.kill("SIGINT");
      }, 10);
      child.on("close", () => clearInterval(poll));
    });
    assert.equal(interrupted.signal, "SIGINT", `the run should have been interrupted:\n${interrupted.stderr}`);
    const kept = entries();
    assert.ok(kept.length > 0 && kept.length < images, `${kept.length} cache entries after the interruption`);
    for (const entry of kept) assert.equal(fs.statSync(path.join(cache, entry)).size, 512 * 4, entry);
    assert.deepEqual(listFiles(path.join(work, "sigint-out")), [], "no output, not even a temporary one");

    const resumed = await runBin(args("sigint-out", "--cache-dir", cache));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(entries().length, images);
    const fresh = await runBin(args("fresh-out", "--no-cache"));
    assert.equal(fresh.code, 0, fresh.stderr);
    const scores = (out: string) => fs.readFileSync(path.join(work, out, "tem_scores.csv"), "utf8");
    // exact: a cached embedding is the engine's float32 output, and the engine gives an image the same output
    // whatever batch it is in
    assert.equal(scores("sigint-out"), scores("fresh-out"));
  });

  it("weights file with a wrong hash, truncated, or another architecture: refused with the expected hash/shape", async () => {
    const out = path.join(work, "weights-out");
    const wrongHash = await runMain(["weights", "--from", TINY_PTH, "--out", out]);
    assert.equal(wrongHash.code, 1);
    assert.match(wrongHash.stderr, /tiny\.pth: sha256 [0-9a-f]{64} is not torchvision's ImageNet ResNet18 \(sha256 f37072fd\.\.\.\)\. Convert it anyway with --unverified/);

    const otherArch = await runMain(["weights", "--from", TINY_PTH, "--out", out, "--unverified"]);
    assert.equal(otherArch.code, 1);
    assert.match(otherArch.stderr, /tiny\.pth: not a torchvision ResNet18 state_dict: missing conv1\.weight \[64,3,7,7\]/);

    const cut = path.join(work, "cut.pth");
    const tiny = fs.readFileSync(TINY_PTH);
    fs.writeFileSync(cut, tiny.subarray(0, tiny.length - 100));
    const truncatedPth = await runMain(["weights", "--from", cut, "--out", out, "--unverified"]);
    assert.equal(truncatedPth.code, 1);
    assert.match(truncatedPth.stderr, /cut\.pth: not a zip .*expected torch\.save's zip format/);
    assert.equal(fs.existsSync(out), false, "a refused file writes nothing");

    // converted weights whose .bin was cut short: the score command refuses them with the expected size
    const cutWeights = path.join(work, "cut-weights");
    fs.mkdirSync(cutWeights);
    fs.copyFileSync(path.join(weights, WEIGHTS_MANIFEST), path.join(cutWeights, WEIGHTS_MANIFEST));
    fs.writeFileSync(path.join(cutWeights, WEIGHTS_BIN), fs.readFileSync(path.join(weights, WEIGHTS_BIN)).subarray(0, 4096));
    const dataset = writeTree(path.join(work, "weights-ds"), await celltoolCells({ Ctrl: 2, TNFTGF: 2 }));
    const score = await runMain(["score", dataset, "--out", out, "--engine", "onnx", "--weights", cutWeights, "--no-cache"]);
    assert.equal(score.code, 1);
    assert.match(score.stderr, /resnet18\.bin: 4096 bytes, but .*resnet18\.json describes 44744448; run `npx cellmorpho weights` again/);
  });

  it("non-numeric --fusion, unknown --engine, --batch 0: usage error, exit code 2", async () => {
    const dataset = path.join(work, "not-even-read");
    const cases: [string[], RegExp][] = [
      [["--fusion", "half,half"], /--fusion must be 2 comma-separated numbers, got "half,half"/],
      [["--fusion", "0.5"], /--fusion must be 2 comma-separated numbers, got "0\.5"/],
      [["--engine", "cuda"], /unknown --engine "cuda"; valid: auto, onnx, tfjs/],
      [["--batch", "0"], /--batch must be a positive integer, got "0"/],
    ];
    for (const [extra, message] of cases) {
      const cli = await runMain(["score", dataset, "--out", path.join(work, "usage-out"), ...extra]);
      assert.equal(cli.code, 2, extra.join(" "));
      assert.match(cli.stderr, message);
    }
    // the real process exit code, once
    const child = await runBin(["score", dataset, "--out", path.join(work, "usage-out"), "--batch", "0"]);
    assert.equal(child.code, 2);
    assert.match(child.stderr, /^cellmorpho: --batch must be a positive integer, got "0"\n$/);
  });
});
