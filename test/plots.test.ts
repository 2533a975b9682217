// lib/plots.ts (figure specs, HTML), lib/display.ts (notebook bundles) and lib/browser.ts (headless Chromium).
// Histogram densities are checked against numpy (scripts/reference/plots_reference.py -> test/fixtures/plots/);
// the browser tests draw real pages and skip, saying so, where no Chromium is installed.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { dumpDom, findChromium, screenshotHtml } from "../lib/browser";
import { consoleSink, createNotebookDisplay, MimeBundle } from "../lib/display";
import {
  bar, boxByCondition, conditionColours, figureHtml, figureHtmlFragment, heatmap, markCells,
  orderConditions, PlotlyFigure, saveFigure, scatter, scoreHistogram, ScoreRow,
} from "../lib/plots";
import { FIXTURES, PROJECT_ROOT, requireFile } from "./paths";
import { histogram } from "../lib/metrics";

interface HistogramFixture {
  cases: { bins: number; values: number[]; edges: number[]; counts: number[]; density: number[] }[];
}

const WARNING = "WARNING: these scores were computed with resnet18-torchvision-seed0.pth (UNVERIFIED), NOT " +
  "torchvision's verified ImageNet ResNet18. They are not the method's results.";

const ROWS: ScoreRow[] = [
  { sample_id: "t1", condition: "TNFTGF", score: 0.9 },
  { sample_id: "c1", condition: "Ctrl", score: 0.0 },
  { sample_id: "x1", condition: "Xeno", score: 0.5 },
  { sample_id: "c2", condition: "Ctrl", score: 0.2 },
  { sample_id: "g1", condition: "TGF", score: 0.6 },
  { sample_id: "t2", condition: "TNFTGF", score: 1.0 },
  { sample_id: "t3", condition: "TNFTGF", score: 1.0 },
];

const PLOTLY_VERSION: string = JSON.parse(
  fs.readFileSync(path.join(PROJECT_ROOT, "node_modules", "plotly.js-dist-min", "package.json"), "utf8")).version;

/** The figure JSON a fragment draws, read back from its <script>. */
function figureInFragment(html: string): PlotlyFigure {
  const match = /var fig = (.*);\n/.exec(html);
  assert.ok(match, "the fragment defines var fig");
  return JSON.parse(match[1]);
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "plots-test-"));
}

describe("plots: histogram", () => {
  it("histogram (lib/metrics) equals numpy.histogram(density=True), edges and clipped 0/1 scores included", () => {
    const fixture: HistogramFixture = JSON.parse(
      fs.readFileSync(path.join(FIXTURES, "plots", "histogram_reference.json"), "utf8"));
    for (const c of fixture.cases) {
      const h = histogram(c.values, c.bins);
      assert.deepEqual(h.counts, c.counts, `counts, ${c.bins} bins`);
      assert.deepEqual(h.edges, c.edges, `edges, ${c.bins} bins`);
      // Same formula in the same operation order as numpy (count / width / total), so the values agree to the last
      // bit here; 1e-12 relative only leaves room for a different libm, far below any formula slip.
      h.density.forEach((d, i) => assert.ok(Math.abs(d - c.density[i]) <= 1e-12 * c.density[i],
        `density[${i}] ${d} vs ${c.density[i]}, ${c.bins} bins`));
    }
  });

  it("histogram: closed form, last bin closed, values outside the range ignored", () => {
    const h = histogram([0, 0.25, 0.5, 1, 1, -0.1, 1.5], 2);
    assert.deepEqual(h.edges, [0, 0.5, 1]);
    assert.deepEqual(h.counts, [2, 3]);
    assert.deepEqual(h.density, [2 / 0.5 / 5, 3 / 0.5 / 5]);
    assert.throws(() => histogram([0.5], 0), /bins must be a positive integer/);
  });

  it("scoreHistogram: one overlaid density trace per condition, in order, with the condition colours", () => {
    const fig = scoreHistogram(ROWS, { bins: 10, title: "tem_fused", conditionOrder: ["TNFTGF"] });
    assert.deepEqual(fig.data.map((t) => t.name), ["TNFTGF (n=3)", "Ctrl (n=2)", "TGF (n=1)", "Xeno (n=1)"]);
    assert.deepEqual(fig.data.map((t) => (t.marker as { color: string }).color),
      ["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c"]);
    for (const trace of fig.data) {
      assert.equal(trace.type, "bar");
      assert.equal(trace.opacity, 0.55);
      assert.equal((trace.x as number[]).length, 10);
      // Every cell is in some bin: the two TNFTGF cells at exactly 1.0 are not lost at the top edge.
      const counts = (trace.customdata as number[][]).map((bin) => bin[2]);
      assert.equal(counts.reduce((a, b) => a + b, 0), Number(/n=(\d+)/.exec(trace.name!)![1]));
    }
    const tnftgf = fig.data[0];
    assert.deepEqual((tnftgf.customdata as number[][]).map((bin) => bin[2]), [0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
    // Density integrates to 1 over [0, 1].
    const widths = tnftgf.width as number[];
    assert.ok(Math.abs((tnftgf.y as number[]).reduce((s, d, i) => s + d * widths[i], 0) - 1) < 1e-12);
    assert.equal(fig.layout.barmode, "overlay");
    assert.deepEqual((fig.layout.xaxis as { range: number[] }).range, [0, 1]);
    assert.equal(fig.layout.title.text, "tem_fused");
    const labelled = scoreHistogram(ROWS, { scoreLabel: "tem_actin" });
    assert.equal((labelled.layout.xaxis as { title: { text: string } }).title.text, "tem_actin");
  });

  it("scoreHistogram puts the warning in the title, wrapped, and makes room for it", () => {
    const plain = scoreHistogram(ROWS, { title: "t" });
    const warned = scoreHistogram(ROWS, { title: "t", warning: WARNING });
    const text = warned.layout.title.text;
    assert.ok(text.startsWith("t<br>"), text);
    assert.equal(text.replace(/<br>/g, " ").replace(/<[^>]+>/g, ""), `t ${WARNING}`);
    assert.ok(text.split("<br>").length >= 3, "a 150-character warning is wrapped over several lines");
    const top = (fig: PlotlyFigure) => (fig.layout.margin as { t: number }).t;
    assert.ok(top(warned) > top(plain));
  });

  it("scoreHistogram rejects scores outside [0, 1] and non-finite ones, naming the cell", () => {
    assert.throws(() => scoreHistogram([{ sample_id: "bad7", condition: "Ctrl", score: 1.2 }]),
      /bad7.*outside \[0, 1\]/);
    assert.throws(() => scoreHistogram([{ sample_id: "nan3", condition: "Ctrl", score: NaN }]), /nan3.*non-finite/);
  });

  it("condition colours and order: known conditions fixed, unknown ones from the spare palette", () => {
    assert.deepEqual(orderConditions(["b", "TNFTGF", "a", "Ctrl"]), ["Ctrl", "TNFTGF", "a", "b"]);
    assert.deepEqual(orderConditions(["b", "TNFTGF", "a", "Ctrl"], ["a", "missing"]), ["a", "Ctrl", "TNFTGF", "b"]);
    const colours = conditionColours(["DMSO", "Ctrl", "Noc"]);
    assert.equal(colours.get("Ctrl"), "#1f77b4");
    assert.equal(colours.get("DMSO"), "#2ca02c");
    assert.equal(colours.get("Noc"), "#8c564b");
  });
});

describe("plots: marks and other figures", () => {
  it("markCells adds a line and a label per cell to a copy, keeping earlier marks", () => {
    const fig = scoreHistogram(ROWS, { title: "t" });
    const once = markCells(fig, [{ sample_id: "c2", score: 0.2 }, { sample_id: "t1", score: 0.9, label: "most EMT" }]);
    const twice = markCells(once, [{ sample_id: "x1", score: 0.5 }]);
    assert.equal(fig.layout.shapes, undefined, "the input figure is not changed");
    assert.deepEqual(once.layout.shapes!.map((s) => [s.x0, s.x1, s.yref]), [[0.2, 0.2, "paper"], [0.9, 0.9, "paper"]]);
    assert.deepEqual(once.layout.annotations!.map((a) => [a.text, a.x]), [["c2", 0.2], ["most EMT", 0.9]]);
    // A label right of the middle runs leftwards, so it stays inside the plot area, clear of the legend.
    assert.deepEqual(once.layout.annotations!.map((a) => a.xanchor), ["left", "right"]);
    assert.deepEqual(twice.layout.annotations!.map((a) => a.text), ["c2", "most EMT", "x1"]);
    assert.equal(twice.data, fig.data);
    assert.throws(() => markCells(fig, [{ sample_id: "q", score: Infinity }]), /q.*non-finite/);
  });

  it("scatter: one trace per condition, hover shows the sample id; markup in ids is escaped", () => {
    const fig = scatter([
      { sample_id: "a<b>", condition: "Ctrl", x: 0.1, y: 0.2 },
      { sample_id: "t9", condition: "TNFTGF", x: 0.8, y: 0.7 },
    ], { xTitle: "tem_actin", yTitle: "tem_nucleus", warning: WARNING });
    assert.deepEqual(fig.data.map((t) => t.text), [["a&lt;b&gt;"], ["t9"]]);
    assert.match(fig.data[0].hovertemplate as string, /^%\{text\}<br>tem_actin %\{x:\.3f\}/);
    assert.deepEqual([fig.data[1].x, fig.data[1].y], [[0.8], [0.7]]);
    assert.match(fig.layout.title.text, /UNVERIFIED/);
  });

  it("boxByCondition, heatmap and bar carry their data and the warning", () => {
    const box = boxByCondition(ROWS, { warning: WARNING });
    assert.deepEqual(box.data.map((t) => t.y), [[0.0, 0.2], [0.6], [0.9, 1.0, 1.0], [0.5]]);
    assert.match(box.layout.title.text, /UNVERIFIED/);
    const hm = heatmap(["Ctrl", "TNFTGF"], ["Ctrl", "TNFTGF"], [[0, -1.5], [1.5, 0]], { zmid: 0, warning: WARNING });
    assert.deepEqual(hm.data[0].z, [[0, -1.5], [1.5, 0]]);
    assert.equal(hm.data[0].zmid, 0);
    assert.match(hm.layout.title.text, /UNVERIFIED/);
    assert.throws(() => heatmap(["a"], ["b"], [[1, 2]]), /1 rows of 1 values/);
    const b = bar(["actin", "nucleus"], [0.9, 0.7], { errors: [0.01, 0.02], warning: WARNING });
    assert.deepEqual(b.data[0].y, [0.9, 0.7]);
    assert.match(b.layout.title.text, /UNVERIFIED/);
    assert.throws(() => bar(["a"], [1, 2]), /1 categories/);
  });
});

describe("plots: HTML", () => {
  const fig = scoreHistogram(
    [...ROWS, { sample_id: "</script><script>alert(1)</script>", condition: "Ctrl", score: 0.3 }],
    { title: "tem_fused", warning: WARNING });

  it("figureHtml is a whole page with plotly.js inlined and the figure's data", () => {
    const html = figureHtml(fig);
    assert.ok(html.startsWith("<!DOCTYPE html>"));
    assert.ok(html.includes(`plotly.js v${PLOTLY_VERSION}`), "plotly.js source is inlined");
    assert.ok(html.length > 1_000_000);
    assert.ok(!/<script[^>]+src=/.test(html), "nothing is loaded from elsewhere");
    assert.deepEqual(figureInFragment(html), fig);
    assert.ok(!html.includes("<script>alert(1)"), "data cannot close the script element");
    assert.match(html, /<title>tem_fused WARNING: these scores/);
  });

  it("a fragment carries plotly.js only when asked, and says so when plotly.js is missing", () => {
    const bare = figureHtmlFragment(fig, { divId: "f1" });
    assert.ok(!bare.includes(`plotly.js v${PLOTLY_VERSION}`));
    assert.ok(bare.length < 20_000);
    assert.match(bare, /<div id="f1"/);
    assert.match(bare, /if \(!window\.Plotly\) \{\s+el\.textContent = "plotly\.js is not loaded/);
    assert.deepEqual(figureInFragment(bare), fig);
    assert.ok(figureHtmlFragment(fig, { includePlotly: true }).includes(`plotly.js v${PLOTLY_VERSION}`));
    assert.notEqual(/id="([^"]+)"/.exec(figureHtmlFragment(fig))![1], /id="([^"]+)"/.exec(figureHtmlFragment(fig))![1],
      "two figures on one page get different div ids");
  });

  it("saveFigure writes the page (and no PNG when asked not to); bad names are refused", async () => {
    const dir = tempDir();
    try {
      const saved = await saveFigure(fig, dir, "hist", { png: false });
      assert.deepEqual(saved, { html: path.join(dir, "hist.html") });
      assert.deepEqual(figureInFragment(fs.readFileSync(saved.html, "utf8")), fig);
      assert.deepEqual(fs.readdirSync(dir), ["hist.html"], "no temporary file left behind");
      await assert.rejects(saveFigure(fig, dir, "../escape"), /not a plain file name/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("display: notebook bundles", () => {
  const fig = scoreHistogram(ROWS, { title: "tem_fused", warning: WARNING });

  it("showFigure sends one bundle with plotly JSON and HTML; plotly.js only in the first", () => {
    const bundles: MimeBundle[] = [];
    const display = createNotebookDisplay((b) => bundles.push(b));
    display.showFigure(fig);
    display.showFigure(fig);
    assert.equal(bundles.length, 2);
    for (const b of bundles) {
      assert.deepEqual(Object.keys(b).sort(), ["application/vnd.plotly.v1+json", "text/html", "text/plain"]);
      assert.deepEqual(b["application/vnd.plotly.v1+json"], fig, "the figure itself, a JSON value (not a string)");
      assert.deepEqual(figureInFragment(b["text/html"] as string), fig);
      assert.match(b["text/plain"] as string, /^\[figure\] tem_fused WARNING: .*: Ctrl \(n=2\), TGF \(n=1\)/);
    }
    assert.ok((bundles[0]["text/html"] as string).includes(`plotly.js v${PLOTLY_VERSION}`));
    assert.ok(!(bundles[1]["text/html"] as string).includes(`plotly.js v${PLOTLY_VERSION}`));
  });

  it("showPng and showImages: base64 PNG, and an HTML table plus a montage", async () => {
    const red = await sharp({ create: { width: 8, height: 6, channels: 3, background: "#ff0000" } }).png().toBuffer();
    const bundles: MimeBundle[] = [];
    const display = createNotebookDisplay((b) => bundles.push(b));
    display.showPng(red, "red");
    await display.showImages([red, red, red], ["low", "mid", "high & <b>"]);
    assert.deepEqual(Buffer.from(bundles[0]["image/png"] as string, "base64"), red);
    const html = bundles[1]["text/html"] as string;
    assert.equal(html.match(/<img src="data:image\/png;base64,/g)!.length, 3);
    assert.match(html, /<figcaption>high &amp; &lt;b&gt;<\/figcaption>/);
    const meta = await sharp(Buffer.from(bundles[1]["image/png"] as string, "base64")).metadata();
    assert.deepEqual([meta.width, meta.height], [3 * 160 + 2 * 4, 160 + 20], "montage: 3 tiles of 160 + gaps, labels");
    await assert.rejects(display.showImages([red], ["a", "b"]), /2 captions for 1 images/);
  });

  it("in tslab: one bundle through the kernel's writer found beside tslab's module; else one MIME per output", () => {
    // A stand-in for tslab's dist/: public.js (what cells get for require("tslab")) and jupyter.js (the kernel).
    const dir = tempDir();
    const global = globalThis as { __tslab__?: unknown };
    try {
      fs.writeFileSync(path.join(dir, "public.js"),
        "exports.calls = []; exports.display = { raw: (mime, content) => exports.calls.push([mime, content]) };");
      fs.writeFileSync(path.join(dir, "jupyter.js"), "exports.lastWriteDisplayData = null;");
      const fakePublic = require(path.join(dir, "public.js"));
      const fakeKernel = require(path.join(dir, "jupyter.js"));
      global.__tslab__ = { require: (id: string) => (id === "tslab" ? fakePublic : require(id)) };
      const written: unknown[] = [];
      fakeKernel.lastWriteDisplayData = (message: unknown, update: boolean) => written.push([message, update]);
      createNotebookDisplay().showPng(new Uint8Array([1, 2]), "two bytes");
      assert.deepEqual(written, [[{
        data: { "image/png": Buffer.from([1, 2]).toString("base64"), "text/plain": "[image] two bytes" },
        metadata: {}, transient: {},
      }, false]]);
      // Without the kernel's writer (another tslab version): the public API, with the best single MIME type.
      fakeKernel.lastWriteDisplayData = null;
      createNotebookDisplay().showFigure(scoreHistogram(ROWS));
      assert.equal(fakePublic.calls.length, 1);
      assert.equal(fakePublic.calls[0][0], "text/html");
    } finally {
      delete global.__tslab__;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("outside tslab, each call prints one line instead of throwing", async () => {
    const lines: string[] = [];
    const display = createNotebookDisplay(consoleSink((line) => lines.push(line)));
    display.showFigure(fig);
    display.showPng(new Uint8Array([1, 2, 3]));
    assert.deepEqual(lines.map((l) => l.split(" ")[0]), ["[figure]", "[image]"]);
    assert.ok(lines.every((l) => !l.includes("\n")));
    // And the default sink, in this plain node process, is that console line.
    const logged: unknown[] = [];
    const original = console.log;
    console.log = (...args: unknown[]) => void logged.push(args.join(" "));
    try {
      createNotebookDisplay().showPng(new Uint8Array([1]), "one byte");
    } finally {
      console.log = original;
    }
    assert.deepEqual(logged, ["[image] one byte"]);
  });
});

describe("browser: finding Chromium", () => {
  it("findChromium answers null, not an error, when no candidate is executable", function () {
    if (process.env.CHROMIUM_PATH) this.skip(); // CHROMIUM_PATH is always tried first
    assert.equal(findChromium([path.join(os.tmpdir(), "no-such-browser")]), null);
  });
});

describe("browser: plotly figures drawn by headless Chromium", function () {
  const chromium = findChromium();
  const fig = scoreHistogram([
    ...Array.from({ length: 40 }, (_, i) => ({ sample_id: `c${i}`, condition: "Ctrl", score: (i % 20) / 40 })),
    ...Array.from({ length: 40 }, (_, i) => ({ sample_id: `t${i}`, condition: "TNFTGF", score: 0.5 + (i % 20) / 40 })),
    { sample_id: "t-top", condition: "TNFTGF", score: 1 },
  ], { bins: 20, title: "browser test", warning: WARNING });
  let dir = "";

  before(function () {
    if (!chromium) {
      console.log("      (skipped: no headless Chromium found; set CHROMIUM_PATH or install chromium)");
      this.skip();
    }
    dir = tempDir();
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the page draws plotly's SVG with one bar per bin and trace, the legend and the warning", async () => {
    const page = path.join(dir, "hist.html");
    fs.writeFileSync(page, figureHtml(fig));
    // plotly.js's own source mentions its class names, so only the DOM outside <script> elements counts.
    const dom = (await dumpDom(page, { chromium: chromium! })).replace(/<script[\s\S]*?<\/script>/g, "");
    assert.match(dom, /<svg class="main-svg"/);
    assert.equal(dom.match(/<g class="trace bars"/g)?.length, 2);
    assert.equal(dom.match(/<g class="point"><path d="M[^"]+"/g)?.length, 2 * 20);
    assert.match(dom, /Ctrl \(n=40\)/);
    assert.match(dom, /TNFTGF \(n=41\)/);
    assert.match(dom, /UNVERIFIED/);
    assert.ok(!dom.includes("plotly.js is not loaded"));
  });

  it("a fragment without plotly.js draws when the loader came earlier on the page, and says why when not", async () => {
    const head = "<!DOCTYPE html><html><body>";
    const withLoader = path.join(dir, "two.html");
    fs.writeFileSync(withLoader, head + figureHtmlFragment(fig, { includePlotly: true }) + figureHtmlFragment(fig) +
      "</body></html>");
    const drawn = (await dumpDom(withLoader, { chromium: chromium! })).replace(/<script[\s\S]*?<\/script>/g, "");
    assert.equal(drawn.match(/<g class="trace bars"/g)?.length, 2 * 2, "both figures drew both conditions");
    const alone = path.join(dir, "alone.html");
    fs.writeFileSync(alone, head + figureHtmlFragment(fig) + "</body></html>");
    const undrawn = await dumpDom(alone, { chromium: chromium! });
    assert.match(undrawn, />plotly\.js is not loaded on this page/);
  });

  it("saveFigure's PNG shows the bars in both condition colours inside the plot area", async () => {
    const saved = await saveFigure(fig, dir, "hist", { width: 800, height: 500 });
    assert.ok(saved.png, "a PNG is written where a browser is available");
    const { data, info } = await sharp(saved.png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [800, 500]);
    // Plot area: plotly's default side margins (80 px) and the title margin above. Bars are drawn at opacity 0.55
    // over white, so the condition colours appear lightened: Ctrl #1f77b4 -> ~(132,180,213), TNFTGF #d62728 ->
    // ~(232,129,130). Counting clearly blue and clearly red pixels needs no exact colour; each condition covers
    // ~40000 of the 127500 pixels here (measured), an undrawn plot none.
    let blue = 0;
    let red = 0;
    for (let y = 150; y < 400; y++) {
      for (let x = 90; x < 600; x++) {
        const i = (y * info.width + x) * 3;
        const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
        if (b > r + 50 && b > g + 15) blue++;
        if (r > g + 60 && r > b + 60) red++;
      }
    }
    assert.ok(blue > 20000, `blue (Ctrl) bar pixels: ${blue}`);
    assert.ok(red > 20000, `red (TNFTGF) bar pixels: ${red}`);
  });

  it("screenshotHtml reports a missing page clearly", async () => {
    const absent = path.join(dir, "absent.html");
    await assert.rejects(screenshotHtml(absent, path.join(dir, "x.png"), { width: 10, height: 10 }),
      /page .*absent\.html does not exist/);
  });
});
