// Drawing one synthetic fluorescence cell (actin + nucleus) from its latent EMT state e in [0, 1].
// The raster primitives come first (seeded PRNG, Gaussian blur, Euclidean distance transform, line splats, camera
// model), then the cell model that uses them. Everything works on Float32Array planes (row-major) so a 320 px
// cell renders in milliseconds without an image library; the same (e, seed) always gives the same pixels.

/** A float image, row-major. */
export interface Plane {
  width: number;
  height: number;
  data: Float32Array;
}

export function newPlane(width: number, height: number): Plane {
  return { width, height, data: new Float32Array(width * height) };
}

/**
 * Seeded pseudo-random numbers (mulberry32): small, fast and identical on every platform, which is what makes a
 * dataset reproducible byte for byte from its seed. Not for cryptography.
 */
export class Rng {
  private state: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spareNormal !== null) {
      const spare = this.spareNormal;
      this.spareNormal = null;
      return spare;
    }
    const u = 1 - this.next(); // (0, 1]: log(u) stays finite
    const radius = Math.sqrt(-2 * Math.log(u));
    const angle = 2 * Math.PI * this.next();
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** Gamma(shape, 1) by Marsaglia & Tsang (2000); shapes below 1 use the u^(1/shape) boost. */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new Error(`gamma shape must be > 0, got ${shape}`);
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(1 - this.next(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const v0 = 1 + c * x;
      if (v0 <= 0) continue;
      const v = v0 * v0 * v0;
      const u = 1 - this.next();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
    }
  }

  /** Beta(a, b) as a ratio of two gammas. */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    return x / (x + this.gamma(b));
  }
}

/** Mixes integers into one 32-bit seed (murmur3 finaliser per part), so each cell gets an independent stream. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

function gaussianKernel(sigma: number): Float32Array {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const w = Math.exp((-i * i) / (2 * sigma * sigma));
    kernel[i + radius] = w;
    sum += w;
  }
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  return kernel;
}

/** Above this sigma a Gaussian is approximated by three box blurs, whose cost does not grow with the width. */
const BOX_APPROXIMATION_SIGMA = 2.5;

/**
 * Gaussian blur, zero outside the plane (a cell on a black background loses nothing at the edge). Narrow blurs
 * (the optics' PSF) use the exact separable kernel; wide ones (haze, textures, masks) three box passes, which
 * match a Gaussian to a few percent at a fraction of the cost.
 */
export function gaussianBlur(src: Plane, sigma: number): Plane {
  if (sigma <= 0) return { width: src.width, height: src.height, data: src.data.slice() };
  if (sigma > BOX_APPROXIMATION_SIGMA) return tripleBoxBlur(src, sigma);
  return separableGaussianBlur(src, sigma);
}

function separableGaussianBlur(src: Plane, sigma: number): Plane {
  const { width, height } = src;
  const kernel = gaussianKernel(sigma);
  const radius = (kernel.length - 1) / 2;
  const rows = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const k0 = Math.max(0, radius - x);
      const k1 = Math.min(kernel.length - 1, radius + width - 1 - x);
      let acc = 0;
      for (let k = k0; k <= k1; k++) acc += kernel[k] * src.data[row + x + k - radius];
      rows[row + x] = acc;
    }
  }
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const k0 = Math.max(0, radius - y);
    const k1 = Math.min(kernel.length - 1, radius + height - 1 - y);
    for (let k = k0; k <= k1; k++) {
      const w = kernel[k];
      const srcRow = (y + k - radius) * width;
      const dstRow = y * width;
      for (let x = 0; x < width; x++) out[dstRow + x] += w * rows[srcRow + x];
    }
  }
  return { width, height, data: out };
}

/** Half-widths of three successive box filters whose combined variance matches sigma^2 (Wells 1986). */
function boxRadiiForGaussian(sigma: number): number[] {
  const passes = 3;
  const ideal = Math.sqrt((12 * sigma * sigma) / passes + 1);
  let lower = Math.floor(ideal);
  if (lower % 2 === 0) lower--;
  const upper = lower + 2;
  const lowerCount = Math.round((12 * sigma * sigma - passes * lower * lower - 4 * passes * lower - 3 * passes) / (-4 * lower - 4));
  return Array.from({ length: passes }, (_, k) => ((k < lowerCount ? lower : upper) - 1) / 2);
}

/** Box blur of half-width r along rows (stride 1) or columns (stride width), zero outside, by running sums. */
function boxBlurLines(src: Float32Array, dst: Float32Array, lines: number, length: number, lineStride: number, step: number, r: number): void {
  const norm = 1 / (2 * r + 1);
  for (let line = 0; line < lines; line++) {
    const base = line * lineStride;
    let acc = 0;
    for (let k = 0; k < Math.min(r, length); k++) acc += src[base + k * step];
    for (let k = 0; k < length; k++) {
      if (k + r < length) acc += src[base + (k + r) * step];
      if (k - r - 1 >= 0) acc -= src[base + (k - r - 1) * step];
      dst[base + k * step] = acc * norm;
    }
  }
}

function tripleBoxBlur(src: Plane, sigma: number): Plane {
  const { width, height } = src;
  let a = src.data.slice();
  let b = new Float32Array(a.length);
  for (const r of boxRadiiForGaussian(sigma)) {
    boxBlurLines(a, b, height, width, width, 1, r);
    boxBlurLines(b, a, width, height, 1, width, r);
  }
  return { width, height, data: a };
}

/** Stands for "no foreground here" in the squared distance transform; finite so the envelope arithmetic stays exact. */
const FAR = 1e20;

/** 1-D squared distance transform of a sampled function (Felzenszwalb & Huttenlocher 2012). */
function distanceTransform1d(f: Float64Array, n: number, out: Float64Array, v: Int32Array, z: Float64Array): void {
  const intersection = (q: number, p: number): number => (f[q] + q * q - (f[p] + p * p)) / (2 * q - 2 * p);
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    let s = intersection(q, v[k]);
    while (s <= z[k]) {
      k--;
      s = intersection(q, v[k]);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    out[q] = (q - v[k]) * (q - v[k]) + f[v[k]];
  }
}

/**
 * Euclidean distance (px) from each pixel with `inside(value)` true to the nearest pixel where it is false;
 * 0 outside. Pixels beyond the border count as outside, so a cell touching the edge still has a membrane there.
 */
export function distanceToOutside(src: Plane, inside: (value: number) => boolean): Plane {
  const { width, height } = src;
  const w = width + 2; // one ring of "outside" around the plane
  const h = height + 2;
  const grid = new Float64Array(w * h).fill(0);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) if (inside(src.data[y * width + x])) grid[(y + 1) * w + x + 1] = FAR;
  }
  const n = Math.max(w, h);
  const f = new Float64Array(n);
  const d = new Float64Array(n);
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) f[y] = grid[y * w + x];
    distanceTransform1d(f, h, d, v, z);
    for (let y = 0; y < h; y++) grid[y * w + x] = d[y];
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) f[x] = grid[y * w + x];
    distanceTransform1d(f, w, d, v, z);
    for (let x = 0; x < w; x++) grid[y * w + x] = d[x];
  }
  const out = newPlane(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out.data[y * width + x] = Math.sqrt(grid[(y + 1) * w + x + 1]);
  }
  return out;
}

/**
 * Adds a thin line from (x0, y0) to (x1, y1) by bilinear splats every half pixel, with intensity (per px of
 * length) fading linearly from i0 to i1. The width comes later from the optical blur, as in a real microscope.
 */
export function splatSegment(
  target: Plane, x0: number, y0: number, x1: number, y1: number, i0: number, i1: number,
): void {
  const length = Math.hypot(x1 - x0, y1 - y0);
  const steps = Math.max(1, Math.ceil(length * 2));
  const weight = length / steps;
  for (let s = 0; s <= steps; s++) {
    const t = s / steps;
    splatPoint(target, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, weight * (i0 + (i1 - i0) * t));
  }
}

/** Adds `amount` at a sub-pixel position, shared over the four nearest pixel centres. */
export function splatPoint(target: Plane, x: number, y: number, amount: number): void {
  const fx = x - 0.5; // pixel centres sit at integer + 0.5
  const fy = y - 0.5;
  const ix = Math.floor(fx);
  const iy = Math.floor(fy);
  const ax = fx - ix;
  const ay = fy - iy;
  const add = (px: number, py: number, w: number): void => {
    if (px >= 0 && py >= 0 && px < target.width && py < target.height) target.data[py * target.width + px] += w * amount;
  };
  add(ix, iy, (1 - ax) * (1 - ay));
  add(ix + 1, iy, ax * (1 - ay));
  add(ix, iy + 1, (1 - ax) * ay);
  add(ix + 1, iy + 1, ax * ay);
}

/** Smooth random texture: white noise blurred at `sigma`, rescaled to zero mean and unit standard deviation. */
export function noiseField(rng: Rng, width: number, height: number, sigma: number): Plane {
  const white = newPlane(width, height);
  // Uniform noise is enough: after the blur it is Gaussian by the central limit theorem, and 3x cheaper to draw.
  for (let i = 0; i < white.data.length; i++) white.data[i] = rng.next() - 0.5;
  const field = gaussianBlur(white, sigma);
  let sum = 0;
  let sumSq = 0;
  for (const value of field.data) {
    sum += value;
    sumSq += value * value;
  }
  const n = field.data.length;
  const mean = sum / n;
  const sd = Math.sqrt(Math.max(sumSq / n - mean * mean, 1e-12));
  for (let i = 0; i < n; i++) field.data[i] = (field.data[i] - mean) / sd;
  return field;
}

/** How a camera turns light into 8-bit grey levels. */
export interface CameraModel {
  /** Grey level of the brightest expected signal (signal 1). */
  peak: number;
  /** Dark offset plus out-of-focus background light, in grey levels. */
  background: number;
  /** Photo-electrons per grey level: the lower, the stronger the shot noise. */
  electronsPerGrey: number;
  /** Gaussian read noise, in grey levels. */
  readNoise: number;
}

/**
 * Expose a signal plane (1 = peak) through the camera: offset, Poisson-like shot noise (its Gaussian limit,
 * variance proportional to the signal, accurate above a few electrons), read noise, then the segmentation
 * mask (Celltool crops are black outside the cell) and 8-bit quantisation.
 */
export function expose(signal: Plane, mask: Uint8Array, camera: CameraModel, rng: Rng): Uint8Array {
  const out = new Uint8Array(signal.data.length);
  for (let i = 0; i < out.length; i++) {
    if (!mask[i]) continue; // rng is drawn for masked pixels only: the stream stays a function of the cell
    const grey = camera.background + camera.peak * signal.data[i];
    const shot = Math.sqrt(Math.max(grey, 0) / camera.electronsPerGrey) * rng.normal();
    const value = grey + shot + camera.readNoise * rng.normal();
    out[i] = Math.min(255, Math.max(0, Math.round(value)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The cell model. Every parameter is a smooth function of e plus per-cell noise, so cells form a continuum rather
// than two templates: low e = compact polygonal cobblestone cell with a cortical actin ring and a round nucleus;
// high e = elongated, spread cell (aspect ratio up to ~4.5) with a lamellipodium, filopodia, parallel stress
// fibres along the long axis and an elongated nucleus.

/** Angular resolution of the outlines r(theta). */
const OUTLINE_SAMPLES = 720;
/** Image side limits (px): the brief's "a few hundred pixels". */
export const MIN_SIDE = 192;
export const MAX_SIDE = 320;
/** Blank margin (px) kept between the cell's furthest reach and the image edge, for the blur tails. */
const EDGE_MARGIN = 10;

/** A straight actin structure in the cell frame (px), with per-px-of-length intensity fading from i0 to i1. */
interface Segment {
  u0: number;
  v0: number;
  u1: number;
  v1: number;
  i0: number;
  i1: number;
}

/** A dark nucleolus: Gaussian dip in the DNA signal, in the nucleus frame (px). */
interface Nucleolus {
  u: number;
  v: number;
  sigma: number;
  depth: number;
}

interface NucleusPlan {
  /** Centre in the cell frame (px). */
  u: number;
  v: number;
  /** Long-axis angle relative to the cell's long axis. */
  angle: number;
  outline: Float32Array;
  nucleoli: Nucleolus[];
}

/** Everything random about one cell, decided before any pixel is drawn. Lengths in px. */
export interface CellPlan {
  emt: number;
  side: number;
  /** Long axis of the cell in the image, radians from +x towards +y. */
  angle: number;
  /** Cell radius per angle in the cell frame (theta = 0: long axis, front). */
  outline: Float32Array;
  nucleus: NucleusPlan;
  stressFibres: Segment[];
  filopodia: Segment[];
  // Actin levels, relative (the brightest pixel later becomes the camera's peak).
  cytoplasm: number;
  /** Cortical ring at the membrane, decaying inwards over cortexWidth px. */
  cortex: number;
  cortexWidth: number;
  /** Dense actin band at the front, lamellipodiumWidth px deep, concentrated around theta = 0 (von Mises kappa). */
  lamellipodiumBrightness: number;
  lamellipodiumWidth: number;
  lamellipodiumFocus: number;
  /** Fraction of cytoplasmic actin missing over the nucleus. */
  nuclearShadow: number;
  // Optics (px): in-focus PSF, and the width and weight of the out-of-focus haze.
  psfSigma: number;
  hazeSigma: number;
  haze: number;
  actinCamera: CameraModel;
  nucleusCamera: CameraModel;
}

export interface CellImages {
  side: number;
  /** 8-bit grey, side x side, black outside the cell mask. */
  actin: Uint8Array;
  nucleus: Uint8Array;
}

const lerp = (a: number, b: number, t: number): number => a + (b - a) * t;
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
const thetaOf = (k: number): number => (2 * Math.PI * k) / OUTLINE_SAMPLES;

/** r(theta) by linear interpolation around the circle. */
function radiusAt(outline: Float32Array, theta: number): number {
  let t = (theta / (2 * Math.PI)) * OUTLINE_SAMPLES;
  t = ((t % OUTLINE_SAMPLES) + OUTLINE_SAMPLES) % OUTLINE_SAMPLES;
  const k = Math.floor(t);
  const f = t - k;
  return outline[k] * (1 - f) + outline[(k + 1) % OUTLINE_SAMPLES] * f;
}

function ellipseRadius(semiMajor: number, semiMinor: number, theta: number): number {
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  return (semiMajor * semiMinor) / Math.sqrt((semiMinor * c) ** 2 + (semiMajor * s) ** 2);
}

/** Irregular polygon inscribed in the unit circle, as r(theta) normalised to mean 1: the cobblestone facets. */
function polygonProfile(rng: Rng): Float32Array {
  const sides = rng.int(5, 7);
  const rotation = rng.uniform(0, 2 * Math.PI);
  const vertices: number[] = [];
  for (let k = 0; k < sides; k++) vertices.push(rotation + ((k + rng.uniform(-0.3, 0.3)) * 2 * Math.PI) / sides);
  const profile = new Float32Array(OUTLINE_SAMPLES);
  let sum = 0;
  for (let k = 0; k < OUTLINE_SAMPLES; k++) {
    const theta = thetaOf(k);
    for (let j = 0; j < sides; j++) {
      const a = vertices[j];
      const b = j + 1 < sides ? vertices[j + 1] : vertices[0] + 2 * Math.PI;
      const rel = (((theta - a) % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI);
      if (rel <= b - a) {
        const half = (b - a) / 2;
        profile[k] = Math.cos(half) / Math.cos(rel - half); // chord between two vertices on the unit circle
        break;
      }
    }
    sum += profile[k];
  }
  for (let k = 0; k < OUTLINE_SAMPLES; k++) profile[k] /= sum / OUTLINE_SAMPLES;
  return profile;
}

/** Von Mises bump: 1 at theta = mu, falling off with concentration kappa. */
const bump = (theta: number, mu: number, kappa: number): number => Math.exp(kappa * (Math.cos(theta - mu) - 1));

/** Circular moving average: rounds the polygon corners as a membrane under tension would. */
function smoothCircular(values: Float32Array, halfWindow: number): Float32Array {
  const n = values.length;
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    let acc = 0;
    for (let j = -halfWindow; j <= halfWindow; j++) acc += values[(k + j + n) % n];
    out[k] = acc / (2 * halfWindow + 1);
  }
  return out;
}

function cellOutline(e: number, semiMajor: number, semiMinor: number, rng: Rng): Float32Array {
  const polygon = polygonProfile(rng);
  const polygonWeight = 0.85 * Math.pow(1 - e, 1.5); // facets fade as the cell loses its neighbours
  const harmonics = Array.from({ length: 7 }, (_, j) => ({
    order: j + 2,
    amplitude: (rng.normal() * (0.012 + 0.05 * e)) / Math.pow(j + 2, 0.7),
    phase: rng.uniform(0, 2 * Math.PI),
  }));
  // Front lamellipodium (theta = 0), a trailing retraction tail (theta = pi) and a few lateral protrusions, all
  // scaled by e so an epithelial cell has none of them.
  const lamellipodium = { amplitude: e * rng.uniform(0.03, 0.12), kappa: rng.uniform(3, 7) };
  // Migrating cells fan out at the front: the half-width grows towards the lamellipodium (a teardrop, not a needle).
  const fan = e * rng.uniform(0.2, 0.6);
  const tail = { amplitude: e * rng.uniform(0, 0.3), kappa: rng.uniform(25, 60) };
  const protrusions: Array<{ mu: number; amplitude: number; kappa: number }> = [];
  for (let j = 0; j < 3; j++) {
    const mu = rng.uniform(0, 2 * Math.PI);
    const amplitude = rng.uniform(0.1, 0.4);
    const kappa = rng.uniform(20, 80);
    if (rng.next() < 0.8 * e) protrusions.push({ mu, amplitude: amplitude * e, kappa });
  }
  const raw = new Float32Array(OUTLINE_SAMPLES);
  for (let k = 0; k < OUTLINE_SAMPLES; k++) {
    const theta = thetaOf(k);
    const halfWidth = semiMinor * (1 + fan * Math.max(0, Math.cos(theta)));
    let r = ellipseRadius(semiMajor, halfWidth, theta) * (1 + polygonWeight * (polygon[k] - 1));
    let wobble = 1;
    for (const h of harmonics) wobble += h.amplitude * Math.cos(h.order * theta + h.phase);
    r *= Math.max(wobble, 0.6);
    r *= 1 + lamellipodium.amplitude * bump(theta, 0, lamellipodium.kappa) + tail.amplitude * bump(theta, Math.PI, tail.kappa);
    for (const p of protrusions) r *= 1 + p.amplitude * bump(theta, p.mu, p.kappa);
    raw[k] = r;
  }
  return smoothCircular(raw, 4);
}

/** Outward unit normal of the outline at sample k, in the cell frame. */
function outlineNormal(outline: Float32Array, k: number): [number, number] {
  const n = OUTLINE_SAMPLES;
  const theta = thetaOf(k);
  const r = outline[k];
  const dr = (outline[(k + 1) % n] - outline[(k - 1 + n) % n]) / (2 * ((2 * Math.PI) / n));
  const tu = dr * Math.cos(theta) - r * Math.sin(theta);
  const tv = dr * Math.sin(theta) + r * Math.cos(theta);
  const len = Math.hypot(tu, tv);
  return [tv / len, -tu / len]; // tangent turned clockwise points outwards for a counter-clockwise curve
}

interface FilopodiumSeed {
  sample: number;
  length: number;
  tilt: number;
  intensity: number;
}

function filopodiumSeeds(e: number, rng: Rng): FilopodiumSeed[] {
  const count = Math.floor(e * rng.uniform(4, 14) + rng.uniform(0, 1.2));
  const seeds: FilopodiumSeed[] = [];
  for (let j = 0; j < count; j++) {
    // Most filopodia sprout from the leading edge; the rest anywhere on the membrane.
    const theta = rng.next() < 0.6 ? rng.normal() * 0.6 : rng.uniform(0, 2 * Math.PI);
    const k = Math.round((((theta % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI)) / ((2 * Math.PI) / OUTLINE_SAMPLES));
    seeds.push({
      sample: k % OUTLINE_SAMPLES,
      length: rng.uniform(6, 20) * (0.6 + 0.8 * e),
      tilt: rng.normal() * 0.3,
      intensity: rng.uniform(0.3, 0.7),
    });
  }
  return seeds;
}

function filopodiaSegments(outline: Float32Array, seeds: FilopodiumSeed[], unit: number): Segment[] {
  return seeds.map((seed) => {
    const theta = thetaOf(seed.sample);
    const r = outline[seed.sample] - 1.5; // rooted just inside the membrane
    const [nu, nv] = outlineNormal(outline, seed.sample);
    const c = Math.cos(seed.tilt);
    const s = Math.sin(seed.tilt);
    const du = nu * c - nv * s;
    const dv = nu * s + nv * c;
    const u0 = r * Math.cos(theta);
    const v0 = r * Math.sin(theta);
    const length = seed.length * unit;
    return { u0, v0, u1: u0 + du * length, v1: v0 + dv * length, i0: seed.intensity, i1: 0.1 * seed.intensity };
  });
}

const insideOutline = (outline: Float32Array, u: number, v: number, margin: number): boolean =>
  Math.hypot(u, v) <= radiusAt(outline, Math.atan2(v, u)) * margin;

/**
 * Stress fibres: random at low e (short, any direction, faint), long, bright and parallel to the long axis at
 * high e; each ends short of the membrane, where focal adhesions would anchor it.
 */
function stressFibres(e: number, outline: Float32Array, rng: Rng): Segment[] {
  const count = Math.round(4 + 34 * e * rng.uniform(0.7, 1.3));
  const spread = 1.3 * (1 - e) ** 3 + 0.05; // radians: ~isotropic at e = 0, aligned from mid-range on
  const fibres: Segment[] = [];
  for (let j = 0; j < count; j++) {
    const theta = rng.uniform(0, 2 * Math.PI);
    const rho = Math.sqrt(rng.next()) * 0.8 * radiusAt(outline, theta);
    const cu = rho * Math.cos(theta);
    const cv = rho * Math.sin(theta);
    const direction = rng.normal() * spread;
    const du = Math.cos(direction);
    const dv = Math.sin(direction);
    const reach = (sign: number): number => {
      let t = 0;
      while (t < 400 && insideOutline(outline, cu + sign * (t + 1) * du, cv + sign * (t + 1) * dv, 0.9)) t++;
      return t;
    };
    const lengthFraction = lerp(rng.uniform(0.15, 0.45), rng.uniform(0.7, 0.98), e);
    const forward = reach(1) * lengthFraction;
    const backward = reach(-1) * lengthFraction;
    const intensity = (0.08 + 0.62 * e ** 1.5) * rng.uniform(0.6, 1.3);
    fibres.push({
      u0: cu - backward * du, v0: cv - backward * dv, u1: cu + forward * du, v1: cv + forward * dv,
      i0: intensity, i1: intensity,
    });
  }
  return fibres;
}

function nucleusOutline(semiMajor: number, semiMinor: number, rng: Rng): Float32Array {
  const harmonics = [2, 3, 4, 5].map((order) => ({ order, amplitude: rng.normal() * 0.02, phase: rng.uniform(0, 2 * Math.PI) }));
  const outline = new Float32Array(OUTLINE_SAMPLES);
  for (let k = 0; k < OUTLINE_SAMPLES; k++) {
    const theta = thetaOf(k);
    let wobble = 1;
    for (const h of harmonics) wobble += h.amplitude * Math.cos(h.order * theta + h.phase);
    outline[k] = ellipseRadius(semiMajor, semiMinor, theta) * wobble;
  }
  return outline;
}

/** True when the whole nucleus lies inside the cell with `gap` px to spare. */
function nucleusFits(cell: Float32Array, nucleus: NucleusPlan, gap: number): boolean {
  const c = Math.cos(nucleus.angle);
  const s = Math.sin(nucleus.angle);
  for (let k = 0; k < OUTLINE_SAMPLES; k += 8) {
    const r = nucleus.outline[k];
    const a = r * Math.cos(thetaOf(k));
    const b = r * Math.sin(thetaOf(k));
    const u = nucleus.u + a * c - b * s;
    const v = nucleus.v + a * s + b * c;
    if (Math.hypot(u, v) > radiusAt(cell, Math.atan2(v, u)) - gap) return false;
  }
  return true;
}

function planNucleus(e: number, cell: Float32Array, cellSemiMajor: number, radius: number, rng: Rng): NucleusPlan {
  const aspect = Math.max(1, 1.06 + 1.35 * e + 0.1 * rng.normal());
  let semiMajor = radius * Math.sqrt(aspect);
  let semiMinor = radius / Math.sqrt(aspect);
  const nucleus: NucleusPlan = {
    // Migrating cells carry the nucleus behind the lamellipodium, towards the rear.
    u: cellSemiMajor * e * rng.uniform(-0.3, 0.05),
    v: rng.normal() * 2,
    angle: rng.normal() * (0.1 + 0.4 * (1 - e)),
    outline: nucleusOutline(semiMajor, semiMinor, rng),
    nucleoli: [],
  };
  // Pull the nucleus towards the centre, then shrink it, until it sits inside the cell.
  for (let attempt = 0; !nucleusFits(cell, nucleus, 3) && attempt < 60; attempt++) {
    if (attempt < 8) {
      nucleus.u *= 0.7;
      nucleus.v *= 0.7;
    } else {
      for (let k = 0; k < OUTLINE_SAMPLES; k++) nucleus.outline[k] *= 0.95;
      semiMajor *= 0.95;
      semiMinor *= 0.95;
    }
  }
  const count = rng.int(1, 3);
  for (let j = 0; j < count; j++) {
    const rho = Math.sqrt(rng.next()) * 0.55;
    const phi = rng.uniform(0, 2 * Math.PI);
    nucleus.nucleoli.push({
      u: rho * semiMajor * Math.cos(phi),
      v: rho * semiMinor * Math.sin(phi),
      sigma: rng.uniform(1.2, 2.4) * Math.sqrt(radius / 16),
      depth: rng.uniform(0.12, 0.3),
    });
  }
  return nucleus;
}

function camera(rng: Rng): CameraModel {
  return {
    peak: rng.uniform(150, 235), // per-cell staining and gain variation
    background: rng.uniform(2, 8),
    electronsPerGrey: rng.uniform(3, 8),
    readNoise: rng.uniform(0.8, 2),
  };
}

/** Draws all random choices for a cell of latent state `emt`. */
export function planCell(emt: number, rng: Rng): CellPlan {
  if (!(emt >= 0 && emt <= 1)) throw new Error(`EMT state must be in [0, 1], got ${emt}`);
  const e = emt;
  const baseRadius = rng.uniform(44, 58); // equivalent radius of an epithelial cell (px)
  const radius = baseRadius * Math.sqrt(1 + e); // spreading: area up to doubles
  const aspect = Math.max(1.05, 1.12 + 2.9 * e + rng.normal() * (0.06 + 0.25 * e));
  const semiMajor = radius * Math.sqrt(aspect);
  const outline = cellOutline(e, semiMajor, radius / Math.sqrt(aspect), rng);
  const filoSeeds = filopodiumSeeds(e, rng);

  // Shrink cells too large for the biggest image; otherwise pick a side with some random slack.
  const maxRadius = outline.reduce((m, r) => Math.max(m, r), 0);
  const reach = maxRadius + filoSeeds.reduce((m, f) => Math.max(m, f.length), 0) + EDGE_MARGIN;
  const unit = Math.min(1, MAX_SIDE / (2 * reach));
  for (let k = 0; k < OUTLINE_SAMPLES; k++) outline[k] *= unit;
  const side = Math.round(clamp(2 * reach * unit + rng.uniform(0, 40), MIN_SIDE, MAX_SIDE));

  const nucleus = planNucleus(e, outline, semiMajor * unit, baseRadius * unit * rng.uniform(0.5, 0.6), rng);
  return {
    emt,
    side,
    angle: rng.uniform(0, 2 * Math.PI),
    outline,
    nucleus,
    stressFibres: stressFibres(e, outline, rng),
    filopodia: filopodiaSegments(outline, filoSeeds, unit),
    cytoplasm: rng.uniform(0.22, 0.35),
    cortex: (1.05 - 0.75 * e) * rng.uniform(0.8, 1.2),
    cortexWidth: rng.uniform(1.8, 3.2),
    lamellipodiumBrightness: 0.9 * e * rng.uniform(0.6, 1.2),
    lamellipodiumWidth: rng.uniform(4, 8),
    lamellipodiumFocus: rng.uniform(2, 5),
    nuclearShadow: rng.uniform(0.15, 0.35),
    psfSigma: rng.uniform(1.0, 1.5),
    hazeSigma: rng.uniform(7, 12),
    haze: rng.uniform(0.08, 0.22),
    actinCamera: camera(rng),
    nucleusCamera: camera(rng),
  };
}

/** Per-pixel geometry of a plan: cell and nucleus coverage (0..1), angle in the cell frame, nucleolar dips. */
interface CellGeometry {
  body: Plane;
  nucleus: Plane;
  theta: Float32Array;
  nucleolarDip: Float32Array;
}

function rasteriseGeometry(plan: CellPlan): CellGeometry {
  const { side } = plan;
  const centre = side / 2;
  const c = Math.cos(plan.angle);
  const s = Math.sin(plan.angle);
  const nc = Math.cos(plan.nucleus.angle);
  const ns = Math.sin(plan.nucleus.angle);
  const body = newPlane(side, side);
  const nucleus = newPlane(side, side);
  const theta = new Float32Array(side * side);
  const nucleolarDip = new Float32Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const i = y * side + x;
      const dx = x + 0.5 - centre;
      const dy = y + 0.5 - centre;
      const u = dx * c + dy * s;
      const v = -dx * s + dy * c;
      const t = Math.atan2(v, u);
      theta[i] = t;
      // Radial distance to the outline approximates the signed distance well enough for a 1 px anti-aliased edge.
      body.data[i] = clamp(radiusAt(plan.outline, t) - Math.sqrt(u * u + v * v) + 0.5, 0, 1);
      if (body.data[i] === 0) continue;
      const un = (u - plan.nucleus.u) * nc + (v - plan.nucleus.v) * ns;
      const vn = -(u - plan.nucleus.u) * ns + (v - plan.nucleus.v) * nc;
      nucleus.data[i] = clamp(radiusAt(plan.nucleus.outline, Math.atan2(vn, un)) - Math.sqrt(un * un + vn * vn) + 0.5, 0, 1);
      if (nucleus.data[i] === 0) continue;
      let dip = 0;
      for (const n of plan.nucleus.nucleoli) dip += n.depth * Math.exp(-((un - n.u) ** 2 + (vn - n.v) ** 2) / (2 * n.sigma * n.sigma));
      nucleolarDip[i] = Math.min(dip, 0.6);
    }
  }
  return { body, nucleus, theta, nucleolarDip };
}

function splatSegments(side: number, angle: number, segments: Segment[]): Plane {
  const plane = newPlane(side, side);
  const centre = side / 2;
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const toX = (u: number, v: number): number => centre + u * c - v * s;
  const toY = (u: number, v: number): number => centre + u * s + v * c;
  for (const g of segments) splatSegment(plane, toX(g.u0, g.v0), toY(g.u0, g.v0), toX(g.u1, g.v1), toY(g.u1, g.v1), g.i0, g.i1);
  return plane;
}

/** Scales a plane so its maximum becomes 1 (the camera's peak), leaving an all-zero plane alone. */
function normaliseToPeak(plane: Plane): Plane {
  let max = 0;
  for (const value of plane.data) max = Math.max(max, value);
  if (max > 0) for (let i = 0; i < plane.data.length; i++) plane.data[i] /= max;
  return plane;
}

/** Optics: in-focus PSF blur plus a dimmer, much wider out-of-focus haze of the same structures. */
function image(object: Plane, plan: CellPlan): Plane {
  const sharp = gaussianBlur(object, plan.psfSigma);
  const haze = gaussianBlur(object, plan.hazeSigma);
  for (let i = 0; i < sharp.data.length; i++) sharp.data[i] += plan.haze * haze.data[i];
  return normaliseToPeak(sharp);
}

/** The segmentation mask: the cell body and its filopodia, a few px wider as a real segmentation would be. */
function segmentationMask(body: Plane, filopodia: Plane): Uint8Array {
  const support = newPlane(body.width, body.height);
  for (let i = 0; i < support.data.length; i++) support.data[i] = body.data[i] + 3 * filopodia.data[i];
  const blurred = gaussianBlur(support, 2.5);
  const mask = new Uint8Array(blurred.data.length);
  for (let i = 0; i < mask.length; i++) mask[i] = blurred.data[i] > 0.12 ? 1 : 0;
  return mask;
}

/** Renders a plan to its two 8-bit images; `rng` supplies texture and camera noise. */
export function renderCell(plan: CellPlan, rng: Rng): CellImages {
  const { side } = plan;
  const geometry = rasteriseGeometry(plan);
  const { body } = geometry;
  const membraneDistance = distanceToOutside(body, (value) => value >= 0.5);
  // Bundles are thicker than the PSF: a little extra blur gives them width before the optics blur everything.
  const fibres = gaussianBlur(splatSegments(side, plan.angle, plan.stressFibres), 0.7);
  const filopodia = splatSegments(side, plan.angle, plan.filopodia);
  const cytoplasmTexture = noiseField(rng, side, side, 4);
  const meshwork = noiseField(rng, side, side, 0.8);

  const actin = newPlane(side, side);
  for (let i = 0; i < actin.data.length; i++) {
    const cover = body.data[i];
    if (cover === 0) {
      actin.data[i] = filopodia.data[i];
      continue;
    }
    const d = membraneDistance.data[i];
    const cytoplasm = plan.cytoplasm * Math.max(0, 1 + 0.15 * cytoplasmTexture.data[i] + 0.12 * meshwork.data[i]) *
      (1 - plan.nuclearShadow * geometry.nucleus.data[i]);
    const cortex = plan.cortex * Math.exp(-d / plan.cortexWidth);
    const lamellipodium = plan.lamellipodiumBrightness * bump(geometry.theta[i], 0, plan.lamellipodiumFocus) *
      Math.exp(-d / plan.lamellipodiumWidth);
    const beadedFibre = fibres.data[i] * Math.max(0, 1 + 0.35 * meshwork.data[i]); // uneven, beaded bundles
    actin.data[i] = cover * (cytoplasm + cortex + lamellipodium + beadedFibre) + filopodia.data[i];
  }

  const chromatinFine = noiseField(rng, side, side, 1.2);
  const chromatinCoarse = noiseField(rng, side, side, 3.5);
  const dna = newPlane(side, side);
  for (let i = 0; i < dna.data.length; i++) {
    const cover = geometry.nucleus.data[i];
    if (cover === 0) continue;
    const texture = 0.82 + 0.07 * chromatinFine.data[i] + 0.09 * chromatinCoarse.data[i];
    dna.data[i] = cover * Math.max(0, texture) * (1 - geometry.nucleolarDip[i]);
  }

  const mask = segmentationMask(body, filopodia);
  return {
    side,
    actin: expose(image(actin, plan), mask, plan.actinCamera, rng),
    nucleus: expose(image(dna, plan), mask, plan.nucleusCamera, rng),
  };
}

/** One synthetic cell, fully determined by its latent state and seed. */
export function drawCell(emt: number, seed: number): CellImages {
  const rng = new Rng(seed);
  return renderCell(planCell(emt, rng), rng);
}
