// `npm start`: prepare what the main job needs (weights, default data, Jupyter kernel), then execute
// notebooks/main.ipynb headless and leave the executed notebook, its HTML report and every output in outputs/.
//   npm start                                   ImageNet weights from $CELLMORPHO_WEIGHTS, ../shared/weights or the web
//   npm start -- --weights FILE [--unverified]  convert FILE first (--unverified: a non-ImageNet file, clearly flagged)
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { executeNotebook, installKernel } from "../lib/jupyter";
import { projectRoot } from "../lib/paths";
import { convertWeights, defaultWeightsDir, localWeightsFile, resolveWeightsSource, WEIGHTS_MANIFEST } from "../lib/weights";

async function ensureWeights(from: string | undefined, unverified: boolean): Promise<void> {
  const dir = defaultWeightsDir();
  if (!from && fs.existsSync(path.join(dir, WEIGHTS_MANIFEST))) return;
  try {
    const source = resolveWeightsSource({ from });
    const file = await localWeightsFile(source, undefined, console.error);
    convertWeights({ source: file, outDir: dir, unverified, log: console.error });
  } catch (err) {
    throw new Error(`${(err as Error).message}\nWithout internet, convert a local file: ` +
      "npm start -- --weights FILE (add --unverified for a file that is not torchvision's ImageNet ResNet18)");
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { weights: { type: "string" }, unverified: { type: "boolean", default: false } },
    strict: true,
  });
  const root = projectRoot();
  await ensureWeights(values.weights, Boolean(values.unverified));
  const python = installKernel(root);
  console.error(`tslab kernel registered with ${python}`);
  const outDir = path.join(root, "outputs");
  const { ipynb, html } = executeNotebook({ notebook: path.join(root, "notebooks", "main.ipynb"), outDir });
  console.log(`executed notebook: ${path.relative(root, ipynb)}\nHTML report: ${path.relative(root, html!)}\n` +
    `scores and figures: ${path.relative(root, outDir)}/`);
}

main().catch((err) => {
  console.error(`npm start: ${(err as Error).message}`);
  process.exit(1);
});
