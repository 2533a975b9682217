// Seeded sampling on top of synthDraw's Rng (the project's one PRNG): shuffles and draws with replacement.
// The generator is always passed in, never module state, so a caller's seed fixes every result.
import type { Rng } from "./synthDraw";

/** A uniformly random permutation of items (Fisher-Yates); the input is left untouched. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** items.length draws, uniformly and with replacement, from items: one bootstrap resample. */
export function resampled<T>(items: readonly T[], rng: Rng): T[] {
  if (items.length === 0) throw new Error("resampled: cannot resample an empty list");
  return Array.from(items, () => items[rng.int(0, items.length - 1)]);
}
