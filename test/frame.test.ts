// lib/frame.ts (danfo views) and lib/csv.ts (our own CSV text): closed-form cases.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { toCsv, writeCsvAtomic } from "../lib/csv";
import { SCORE_COLUMNS, SCORE_STATS_COLUMNS, frameToCsv, scoreRows, scoresFrame, statsFrame, statsRows } from "../lib/frame";
import { SCORE_NAMES, temMetrics } from "../lib/metrics";

const rows = scoreRows(["1", "2", "cell, \"three\""], ["Ctrl", "TNFTGF", "TNF"], {
  tem_actin: [0.1 + 0.2, 1, 0],
  tem_nucleus: Float64Array.from([1e-20, 0.5, 2 / 3]),
  tem_fused: [0.15000000000000002, 0.75, 1 / 3],
});

describe("csv: deterministic text", () => {
  it("writes full-precision numbers, RFC 4180 quoting and empty fields for null", () => {
    const text = toCsv([
      { name: "plain", value: 0.1 + 0.2, note: null },
      { name: "a,b", value: 1e-20, note: "say \"hi\"" },
      { name: "two\nlines", value: -0.5, note: undefined },
    ], ["name", "value", "note"]);
    assert.equal(text, "name,value,note\n" +
      "plain,0.30000000000000004,\n" +
      "\"a,b\",1e-20,\"say \"\"hi\"\"\"\n" +
      "\"two\nlines\",-0.5,\n");
  });

  it("puts preamble lines (the weights warning) before the header, and refuses line breaks in them", () => {
    assert.equal(toCsv([{ a: 1 }], ["a"], ["# WARNING: unverified weights"]), "# WARNING: unverified weights\na\n1\n");
    assert.throws(() => toCsv([{ a: 1 }], ["a"], ["ok", "two\nlines"]), /preamble line 1 contains a line break/);
  });

  it("every number reads back as the same float64", () => {
    const values = [Math.PI, 1 / 3, 2 ** -1074, 1e21, -123.456, 0];
    const lines = toCsv(values.map((value) => ({ value })), ["value"]).trimEnd().split("\n").slice(1);
    assert.deepEqual(lines.map(Number), values);
  });

  it("refuses NaN, Infinity, objects and missing columns, saying where", () => {
    assert.throws(() => toCsv([{ a: 1 }, { a: NaN }], ["a"]), /row 1, column "a" is NaN/);
    assert.throws(() => toCsv([{ a: Infinity }], ["a"]), /is Infinity/);
    assert.throws(() => toCsv([{ a: [1] }] as { a: unknown }[], ["a"]), /is of type object/);
    assert.throws(() => toCsv([{ a: 1 } as { a: number; b?: number }], ["a", "b"]), /row 0 has no column "b"/);
  });

  it("writeCsvAtomic writes the text and leaves no temporary file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "csv-test-"));
    try {
      const target = path.join(dir, "out", "scores.csv");
      const text = toCsv(rows, SCORE_COLUMNS);
      writeCsvAtomic(target, text);
      assert.equal(fs.readFileSync(target, "utf8"), text);
      assert.deepEqual(fs.readdirSync(path.dirname(target)), ["scores.csv"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("frame: danfo views of scores and statistics", () => {
  it("importing lib/frame does not load danfo (the CLI stays fast)", () => {
    // A fresh process: in this one another test may already have loaded danfo.
    const script = "require('./dist/lib/frame');" +
      "process.stdout.write(String(Object.keys(require.cache).some((k) => k.includes('danfojs'))))";
    const loaded = execFileSync(process.execPath, ["-e", script], { cwd: path.resolve(__dirname, "..", ".."), encoding: "utf8" });
    assert.equal(loaded, "false");
  });

  it("scoresFrame keeps the columns, string ids (even numeric-looking ones) and full-precision numbers", function () {
    this.timeout(30_000); // the first call loads danfo and TensorFlow.js: a few seconds on a busy 2-core machine
    const frame = scoresFrame(rows);
    assert.deepEqual(frame.columns, [...SCORE_COLUMNS]);
    assert.deepEqual(frame.shape, [3, 5]);
    const numericIds = scoresFrame(rows.slice(0, 2));
    assert.deepEqual(numericIds["sample_id"].values, ["1", "2"]);
    assert.deepEqual(numericIds.dtypes.slice(0, 2), ["string", "string"]);
    assert.deepEqual(frame.values, rows.map((row) => SCORE_COLUMNS.map((column) => row[column])));
    assert.equal(frameToCsv(frame), toCsv(rows, SCORE_COLUMNS));
    assert.equal(frameToCsv(frame, ["tem_fused"]), "tem_fused\n0.15000000000000002\n0.75\n0.3333333333333333\n");
  });

  it("an empty scores frame still has its columns", () => {
    const frame = scoresFrame([]);
    assert.deepEqual(frame.shape, [0, 5]);
    assert.equal(frameToCsv(frame), SCORE_COLUMNS.join(",") + "\n");
  });

  it("statsRows/statsFrame: every score's per-condition table, a one-cell condition's std null", () => {
    const conditions = ["E", "E", "E", "M", "M", "M", "X"];
    const score = [0.1, 0.2, 0.4, 0.7, 0.9, 1, 0.5];
    const metrics = temMetrics({
      scores: { tem_actin: score, tem_nucleus: score.map((x) => 1 - x), tem_fused: score.map((x) => 0.5 * x + 0.2) },
      conditions, anchors: ["E", "M"],
    });
    const table = statsRows(metrics);
    assert.deepEqual(table.map((r) => `${r.score}:${r.condition}`),
      SCORE_NAMES.flatMap((name) => ["E", "M", "X"].map((c) => `${name}:${c}`)));
    const frame = statsFrame(table);
    assert.deepEqual(frame.columns, [...SCORE_STATS_COLUMNS]);
    assert.deepEqual(frame.values, table.map((s) => SCORE_STATS_COLUMNS.map((column) => s[column])));
    assert.equal(frameToCsv(frame).split("\n")[3], "tem_actin,X,1,0.5,,0.5,0.5,0.5,0.5,0.5");
  });

  it("frameToCsv and scoreRows name what is wrong", () => {
    assert.throws(() => frameToCsv(scoresFrame(rows), ["tem_fused", "p"]), /no column\(s\) p/);
    assert.throws(() => scoreRows(["a", "b"], ["Ctrl", "TNF"], { tem_actin: [0, 1], tem_nucleus: [0], tem_fused: [0, 1] }),
      /2 sample ids but 1 tem_nucleus scores/);
    assert.throws(() => scoreRows(["a", "b"], ["Ctrl"], { tem_actin: [0, 1], tem_nucleus: [0, 1], tem_fused: [0, 1] }),
      /2 sample ids but 1 conditions/);
  });
});
