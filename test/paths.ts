// Where tests find the project's fixtures and the workplace's shared data, from the compiled dist/test/ folder.
import * as fs from "node:fs";
import * as path from "node:path";

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
export const FIXTURES = path.join(PROJECT_ROOT, "test", "fixtures");
export const SHARED = path.resolve(PROJECT_ROOT, "..", "shared");
export const SEED0_WEIGHTS = path.join(SHARED, "weights", "resnet18-torchvision-seed0.pth");
export const IMAGENET_WEIGHTS = path.join(SHARED, "weights", "resnet18-f37072fd.pth");
export const DARKNET_TINY = path.join(SHARED, "weights", "darknet-tiny-imagenet", "model.json");
export const BBBC021 = path.join(SHARED, "data", "bbbc021-mcf7");

/** Skip the calling test (with a visible reason) when a file it needs is absent. */
export function requireFile(ctx: Mocha.Context, file: string, what: string): void {
  if (!fs.existsSync(file)) {
    console.log(`      (skipped: ${what} not found at ${file})`);
    ctx.skip();
  }
}
