// Celltool discovery, pairing and safe zip extraction, on small trees and zips built here in os.tmpdir().
// Pairing never decodes images, so the "images" are a few bytes each; expected values are counted by hand.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import AdmZip from "adm-zip";
import {
  canonicalCondition, findCelltoolRoot, formatPairingReport, naturalCompare, openCelltool, resolveCondition,
} from "../lib/dataset";
import { EXTRACTION_MARKER, extractZipSafely, unsafePathReason } from "../lib/zipSafe";
import { BBBC021, PROJECT_ROOT, requireFile } from "./paths";

type Files = Record<string, string | Buffer>;

function writeTree(base: string, files: Files): void {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(base, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
}

function zipOf(files: Files): Buffer {
  const zip = new AdmZip();
  for (const [name, content] of Object.entries(files)) zip.addFile(name, Buffer.from(content));
  return zip.toBuffer();
}

/** Rewrite an entry name in the zip's bytes (local and central headers): adm-zip normalises names on write, so
 * hostile names such as "../evil.png" can only be made this way. Same length keeps every offset valid. */
function withRawName(zip: Buffer, placeholder: string, hostile: string): Buffer {
  assert.equal(Buffer.byteLength(placeholder), Buffer.byteLength(hostile));
  const text = zip.toString("latin1");
  assert.equal(text.split(placeholder).length - 1, 2, "placeholder must appear in the local and central header");
  return Buffer.from(text.split(placeholder).join(hostile), "latin1");
}

/** A small dataset: CTRL spelled in capitals, unpaired files, a near-miss, hidden files and a Mac resource fork. */
const SMALL: Files = {
  "CTRL/Actine/Ctrl1.png": "a", "CTRL/Noyaux/Ctrl1.png": "n",
  "CTRL/Actine/Ctrl2.png": "a", "CTRL/Noyaux/Ctrl2.png": "n",
  "CTRL/Actine/Ctrl10.png": "a", "CTRL/Noyaux/Ctrl10.png": "n",
  "CTRL/Actine/Ctrl3.png": "a", // actin only
  "CTRL/Actine/Ctrl7.PNG": "a", "CTRL/Noyaux/ctrl7.png": "n", // near-miss: case of name and extension
  "CTRL/Actine/.hidden.png": "h", "CTRL/Noyaux/.hidden.png": "h",
  "CTRL/Actine/notes.txt": "not an image",
  "TNFTGF/Actine/T1.tif": "a", "TNFTGF/Noyaux/T1.tif": "n",
  "TNFTGF/Noyaux/T2.tif": "n", // nucleus only
  "TGF/actine/G1.png": "a", "TGF/NOYAUX/G1.png": "n", // channel folders in other cases
  "TNF/Actine/F1.png": "a", // no Noyaux folder at all
  "__MACOSX/CTRL/Actine/._Ctrl1.png": "fork",
  ".Trash/CTRL/Actine/x.png": "a", ".Trash/CTRL/Noyaux/x.png": "n",
  "README.txt": "a dataset",
};

describe("dataset: natural order and condition names", () => {
  it("sorts digit runs by value, text ignoring case, deterministically", () => {
    const names = ["Ctrl10.png", "ctrl3.png", "Ctrl_x.png", "Ctrl2.png", "Ctrl02.png", "Ctrl1.png", "Ctrl1b.png", "Ctrl.png"];
    assert.deepEqual([...names].sort(naturalCompare),
      ["Ctrl.png", "Ctrl1.png", "Ctrl1b.png", "Ctrl2.png", "Ctrl02.png", "ctrl3.png", "Ctrl10.png", "Ctrl_x.png"]);
    // equal values: the later difference decides, leading zeros only break a full tie
    assert.deepEqual(["a007b", "a7c", "x007", "x7"].sort(naturalCompare), ["a007b", "a7c", "x7", "x007"]);
    // numbers longer than 2^53 compare by digits, not as floats
    assert.ok(naturalCompare("x90071992547409921", "x90071992547409922") < 0);
  });

  it("canonicalCondition prefers the exact name, else the one case-insensitive match", () => {
    assert.equal(canonicalCondition("Ctrl", ["CTRL", "TGF"]), "CTRL");
    assert.equal(canonicalCondition("TGF", ["TGF", "tgf"]), "TGF");
    assert.equal(canonicalCondition("Ctrl", ["TGF"]), undefined);
    assert.throws(() => canonicalCondition("Ctrl", ["CTRL", "ctrl"]), /"Ctrl" is ambiguous: "CTRL", "ctrl"/);
  });
});

describe("dataset: folders", () => {
  let tmp: string;
  beforeEach(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dataset-")); });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("pairs by exact name and reports what did not pair", () => {
    writeTree(path.join(tmp, "study", "Celltool"), SMALL);
    const ds = openCelltool(tmp);
    assert.equal(ds.root, path.join(tmp, "study", "Celltool"));
    assert.deepEqual(ds.conditions, ["CTRL", "TGF", "TNF", "TNFTGF"]);
    assert.deepEqual(ds.pairs.map((p) => p.sampleId),
      ["CTRL/Ctrl1.png", "CTRL/Ctrl2.png", "CTRL/Ctrl10.png", "TGF/G1.png", "TNFTGF/T1.tif"]);
    const g1 = ds.pairs[3];
    assert.equal(g1.actinPath, path.join(ds.root, "TGF", "actine", "G1.png"));
    assert.equal(g1.nucleusPath, path.join(ds.root, "TGF", "NOYAUX", "G1.png"));

    const [ctrl, tgf, tnf, tnftgf] = ds.report.conditions;
    assert.deepEqual(ctrl, {
      condition: "CTRL", actin: 5, nucleus: 4, pairs: 3,
      actinOnly: ["Ctrl3.png", "Ctrl7.PNG"], nucleusOnly: ["ctrl7.png"],
      nearMisses: [{ actin: "Ctrl7.PNG", nucleus: "ctrl7.png" }], missingChannelFolders: [],
    });
    assert.equal(tgf.pairs, 1);
    assert.deepEqual([tnf.actinOnly, tnf.missingChannelFolders], [["F1.png"], ["Noyaux"]]);
    assert.deepEqual(tnftgf.nucleusOnly, ["T2.tif"]);
    assert.equal(ds.report.totalPairs, 5);
    assert.equal(ds.report.totalUnpaired, 5); // Ctrl3, Ctrl7.PNG, ctrl7.png, F1, T2
  });

  it("resolveCondition finds CTRL for Ctrl and lists the conditions otherwise", () => {
    writeTree(tmp, SMALL);
    const ds = openCelltool(tmp);
    assert.equal(resolveCondition(ds, "Ctrl"), "CTRL");
    assert.equal(resolveCondition(ds, "tnftgf"), "TNFTGF");
    assert.throws(() => resolveCondition(ds, "EGF"), /"EGF" not found in .*; conditions found: CTRL, TGF, TNF, TNFTGF/);
  });

  it("formats a table and truncated name lists with counts", () => {
    const files: Files = { "Ctrl/Actine/c0.png": "a", "Ctrl/Noyaux/c0.png": "n" };
    for (let i = 1; i <= 14; i++) files[`Ctrl/Actine/lonely${i}.png`] = "a";
    writeTree(tmp, files);
    const text = formatPairingReport(openCelltool(tmp).report);
    const lines = text.split("\n");
    assert.equal(lines[1], "condition  actin  nucleus  pairs  actin only  nucleus only  near-misses");
    assert.equal(lines[2], "Ctrl          15        1      1          14             0            0");
    assert.match(text, /1 pairs, 14 unpaired files/);
    assert.match(text, /Ctrl: 14 in Actine only: lonely1\.png, lonely2\.png, .*lonely10\.png, \.\.\. and 4 more$/m);
  });

  it("refuses a folder with no Celltool layout, naming it", () => {
    writeTree(tmp, { "photos/a.png": "x", "Ctrl/images/a.png": "x" });
    assert.throws(() => openCelltool(tmp), (err: Error) => err.message.startsWith(`${tmp}: no Celltool dataset found`));
  });

  it("refuses two roots at the same depth rather than guessing", () => {
    writeTree(tmp, { "A/Ctrl/Actine/x.png": "a", "B/Ctrl/Noyaux/x.png": "n" });
    assert.throws(() => findCelltoolRoot(tmp), /several Celltool roots at the same depth/);
  });

  it("refuses a source that does not exist or is not a zip", () => {
    assert.throws(() => openCelltool(path.join(tmp, "absent")), /absent: no such file or folder/);
    fs.writeFileSync(path.join(tmp, "data.csv"), "a,b\n");
    assert.throws(() => openCelltool(path.join(tmp, "data.csv")), /data\.csv: neither a folder nor a zip archive/);
  });

  it("refuses a layout with no pairs at all, showing the report", () => {
    writeTree(tmp, { "Ctrl/Actine/a.png": "a", "Ctrl/Noyaux/b.png": "n" });
    assert.throws(() => openCelltool(tmp), /no actin\/nucleus image pairs found\nCelltool root:/);
  });
});

describe("dataset: zips", () => {
  let tmp: string;
  beforeEach(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dataset-zip-")); });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function saveZip(name: string, bytes: Buffer): string {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, bytes);
    return file;
  }

  it("finds the root at depth 3, skips __MACOSX and dot-files, and reuses the extraction", () => {
    const files: Files = {};
    for (const [rel, content] of Object.entries(SMALL)) files[`export/2024/Celltool/${rel}`] = content;
    files[".DS_Store"] = "mac";
    const zip = saveZip("Celltool.zip", zipOf(files));
    const extractDir = path.join(tmp, "extracted");
    const ds = openCelltool(zip, { extractDir });
    assert.equal(ds.source, zip);
    assert.equal(ds.root, path.join(extractDir, "export", "2024", "Celltool"));
    assert.equal(ds.report.totalPairs, 5);
    assert.ok(!fs.existsSync(path.join(extractDir, "__MACOSX")));
    assert.ok(!fs.existsSync(path.join(extractDir, ".DS_Store")));
    assert.ok(!fs.existsSync(path.join(ds.root, "CTRL", "Actine", ".hidden.png")));
    assert.deepEqual(fs.readdirSync(tmp).sort(), ["Celltool.zip", "extracted"]); // no staging folder left

    const again = extractZipSafely(zip, extractDir);
    assert.deepEqual(again, { dir: extractDir, reused: true, files: 0, skipped: 0 });
  });

  it("re-extracts when the zip changed", () => {
    const zip = saveZip("d.zip", zipOf({ "Ctrl/Actine/a.png": "a", "Ctrl/Noyaux/a.png": "n" }));
    const dir = path.join(tmp, "out");
    assert.equal(extractZipSafely(zip, dir).files, 2);
    fs.writeFileSync(zip, zipOf({ "Ctrl/Actine/b.png": "a", "Ctrl/Noyaux/b.png": "n", "Ctrl/Noyaux/c.png": "n" }));
    const second = extractZipSafely(zip, dir);
    assert.deepEqual([second.reused, second.files], [false, 3]);
    assert.deepEqual(fs.readdirSync(path.join(dir, "Ctrl", "Noyaux")).sort(), ["b.png", "c.png"]);
    assert.ok(fs.existsSync(path.join(dir, EXTRACTION_MARKER)));
  });

  it("never replaces a folder it did not make", () => {
    const zip = saveZip("d.zip", zipOf({ "Ctrl/Actine/a.png": "a", "Ctrl/Noyaux/a.png": "n" }));
    const mine = path.join(tmp, "my-results");
    writeTree(mine, { "notes.txt": "precious" });
    assert.throws(() => extractZipSafely(zip, mine), /my-results already exists and is not an extraction made by this tool/);
    assert.equal(fs.readFileSync(path.join(mine, "notes.txt"), "utf8"), "precious");
  });

  it("extracts by default into <project>/.cache/datasets/<name>-<sha256 prefix>", () => {
    const zip = saveZip("tiny-default.zip", zipOf({ "Ctrl/Actine/a.png": "a", "Ctrl/Noyaux/a.png": "n" }));
    const ds = openCelltool(zip);
    try {
      assert.match(ds.root, /[/\\]\.cache[/\\]datasets[/\\]tiny-default-[0-9a-f]{12}$/);
      assert.ok(ds.root.startsWith(path.join(PROJECT_ROOT, ".cache", "datasets")));
    } finally {
      fs.rmSync(ds.root, { recursive: true, force: true });
    }
  });

  it("refuses a zip-slip entry by name and writes nothing", () => {
    const bytes = withRawName(zipOf({ "Ctrl/Actine/a.png": "a", "zz/evil.png": "payload" }), "zz/evil.png", "../evil.png");
    assert.ok(new AdmZip(bytes).getEntries().some((e) => e.entryName === "../evil.png"), "the zip really holds ../evil.png");
    const zip = saveZip("slip.zip", bytes);
    const dir = path.join(tmp, "sub", "out");
    assert.throws(() => openCelltool(zip, { extractDir: dir }), /slip\.zip: refusing entry "\.\.\/evil\.png": '\.\.' in the path/);
    // every entry is checked before anything is written: no evil.png, no target, no staging folder
    assert.deepEqual(fs.readdirSync(tmp), ["slip.zip"]);
  });

  it("refuses absolute, drive-letter and backslash names, and symbolic links", () => {
    const hostile: [string, RegExp][] = [
      ["/etc/evil", /"\/etc\/evil": absolute path/],
      ["C:/x/evil", /"C:\/x\/evil": drive-letter path/],
      ["a\\..\\evil", /"a\\\\\.\.\\\\evil": backslash in the name/],
    ];
    for (const [name, expected] of hostile) {
      const placeholder = "p".repeat(Buffer.byteLength(name));
      const zip = saveZip("h.zip", withRawName(zipOf({ [placeholder]: "x" }), placeholder, name));
      assert.throws(() => extractZipSafely(zip, path.join(tmp, "out")), expected);
    }
    const linked = new AdmZip();
    linked.addFile("Ctrl/Actine/link.png", Buffer.from("/etc/passwd"));
    linked.getEntry("Ctrl/Actine/link.png")!.attr = (0o120777 << 16) >>> 0; // S_IFLNK in the Unix mode bits
    const zip = saveZip("link.zip", linked.toBuffer());
    assert.throws(() => extractZipSafely(zip, path.join(tmp, "out")), /"Ctrl\/Actine\/link\.png": it is a symbolic link/);
    assert.ok(!fs.existsSync(path.join(tmp, "out")));
  });

  it("unsafePathReason accepts plain relative paths only", () => {
    assert.equal(unsafePathReason("Celltool/Ctrl/Actine/a..b.png"), null);
    for (const bad of ["", "a/../../b", "..", "/a", "C:a", "a\\b", "a\0b"]) assert.notEqual(unsafePathReason(bad), null, bad);
  });

  it("enforces entry-count, per-file and total size limits", () => {
    const zip = saveZip("big.zip", zipOf({ "a.png": Buffer.alloc(3000), "b.png": Buffer.alloc(3000), "c.png": "x" }));
    const out = path.join(tmp, "out");
    assert.throws(() => extractZipSafely(zip, out, { maxEntries: 2 }), /big\.zip: 3 entries, more than the limit of 2/);
    assert.throws(() => extractZipSafely(zip, out, { maxEntryBytes: 2999 }), /"a\.png": declares 3000 bytes/);
    assert.throws(() => extractZipSafely(zip, out, { maxTotalBytes: 5000 }), /"b\.png": the files up to this one declare 6000 bytes/);
    assert.ok(!fs.existsSync(out));
  });

  it("checks the inflated size too, when a header under-declares it", () => {
    const z = new AdmZip();
    z.addFile("a.png", Buffer.alloc(5000, 7));
    z.getEntry("a.png")!.header.method = 0; // stored: adm-zip returns every stored byte whatever the header says
    const bytes = z.toBuffer();
    const central = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bytes.writeUInt32LE(100, central + 24); // central header: uncompressed size
    bytes.writeUInt32LE(100, 22); // local header: uncompressed size
    const zip = saveZip("forged.zip", bytes);
    assert.throws(() => extractZipSafely(zip, path.join(tmp, "out"), { maxEntryBytes: 1000 }),
      /"a\.png": inflates to 5000 bytes, more than the per-file limit of 1000/);
  });

  it("refuses a file that is not a readable zip", () => {
    const zip = saveZip("broken.zip", Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(64)]));
    assert.throws(() => openCelltool(zip, { extractDir: path.join(tmp, "out") }), /broken\.zip: not a readable zip archive/);
  });
});

describe("dataset: the shared BBBC021 crops", () => {
  it("finds DMSO and ProteinSynthesis with 1000 pairs each", function () {
    requireFile(this, BBBC021, "shared BBBC021 crops");
    const ds = openCelltool(BBBC021);
    assert.deepEqual(ds.conditions, ["DMSO", "ProteinSynthesis"]);
    assert.deepEqual(ds.report.conditions.map((c) => c.pairs), [1000, 1000]);
    assert.equal(ds.report.totalUnpaired, 0);
    assert.deepEqual(ds.pairs.slice(0, 3).map((p) => p.sampleId), ["DMSO/DMSO1.png", "DMSO/DMSO2.png", "DMSO/DMSO3.png"]);
    assert.equal(resolveCondition(ds, "dmso"), "DMSO");
  });
});
