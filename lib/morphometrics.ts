// Shape and texture measures of one segmented cell: area, perimeter, moment axes, aspect ratio, circularity,
// solidity and the orientation coherence of its texture. Definitions follow skimage.measure.regionprops (0.19)
// so numbers can be checked against it (scripts/reference/synth_stats.py); the mask is treated as one region.

/** A binary image, row-major; nonzero = foreground. */
export interface Mask {
  width: number;
  height: number;
  data: Uint8Array;
}

function checkSize(width: number, height: number, length: number, what: string): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) || width * height !== length) {
    throw new Error(`${what}: ${length} values do not form a ${width}x${height} image`);
  }
}

function checkMask(mask: Mask): void {
  checkSize(mask.width, mask.height, mask.data.length, "mask");
  if (!mask.data.some((v) => v !== 0)) throw new Error("mask has no foreground pixels");
}

/** Foreground = pixels strictly brighter than `threshold`. */
export function thresholdMask(pixels: ArrayLike<number>, width: number, height: number, threshold: number): Mask {
  checkSize(width, height, pixels.length, "image");
  const data = new Uint8Array(pixels.length);
  for (let i = 0; i < data.length; i++) data[i] = pixels[i] > threshold ? 1 : 0;
  return { width, height, data };
}

/** Number of foreground pixels. */
export function area(mask: Mask): number {
  checkMask(mask);
  let n = 0;
  for (const v of mask.data) if (v) n++;
  return n;
}

const at = (mask: Mask, x: number, y: number): number =>
  x >= 0 && y >= 0 && x < mask.width && y < mask.height && mask.data[y * mask.width + x] ? 1 : 0;

/**
 * Perimeter as skimage.measure.perimeter(neighbourhood=4): border pixels (foreground with a background
 * 4-neighbour) weighted by their border-neighbour pattern (Benkrid & Crookes), 1, sqrt(2) or (1 + sqrt(2)) / 2.
 */
export function perimeter(mask: Mask): number {
  checkMask(mask);
  const { width, height } = mask;
  const border = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!at(mask, x, y)) continue;
      const interior = at(mask, x - 1, y) && at(mask, x + 1, y) && at(mask, x, y - 1) && at(mask, x, y + 1);
      border[y * width + x] = interior ? 0 : 1;
    }
  }
  const b = (x: number, y: number): number => (x >= 0 && y >= 0 && x < width && y < height ? border[y * width + x] : 0);
  const weights = new Map<number, number>([
    [5, 1], [7, 1], [15, 1], [17, 1], [25, 1], [27, 1],
    [21, Math.SQRT2], [33, Math.SQRT2],
    [13, (1 + Math.SQRT2) / 2], [23, (1 + Math.SQRT2) / 2],
  ]);
  let total = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!border[y * width + x]) continue; // every weighted code is odd: the centre pixel must be a border pixel
      const code = 1 + 2 * (b(x - 1, y) + b(x + 1, y) + b(x, y - 1) + b(x, y + 1)) +
        10 * (b(x - 1, y - 1) + b(x + 1, y - 1) + b(x - 1, y + 1) + b(x + 1, y + 1));
      total += weights.get(code) ?? 0;
    }
  }
  return total;
}

/** Axis lengths of the ellipse with the same second moments, as regionprops' major/minor_axis_length. */
export function momentAxes(mask: Mask): { major: number; minor: number } {
  checkMask(mask);
  let n = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < mask.height; y++) {
    for (let x = 0; x < mask.width; x++) {
      if (!mask.data[y * mask.width + x]) continue;
      n++;
      sx += x;
      sy += y;
    }
  }
  const cx = sx / n;
  const cy = sy / n;
  let xx = 0;
  let yy = 0;
  let xy = 0;
  for (let y = 0; y < mask.height; y++) {
    for (let x = 0; x < mask.width; x++) {
      if (!mask.data[y * mask.width + x]) continue;
      xx += (x - cx) * (x - cx);
      yy += (y - cy) * (y - cy);
      xy += (x - cx) * (y - cy);
    }
  }
  const [large, small] = symmetricEigenvalues(xx / n, yy / n, xy / n);
  return { major: 4 * Math.sqrt(Math.max(large, 0)), minor: 4 * Math.sqrt(Math.max(small, 0)) };
}

/** Eigenvalues (largest first) of [[a, b], [b, c]]. */
function symmetricEigenvalues(a: number, c: number, b: number): [number, number] {
  const mean = (a + c) / 2;
  const radius = Math.sqrt(((a - c) / 2) ** 2 + b * b);
  return [mean + radius, mean - radius];
}

/** Major over minor moment axis: 1 for a disc, larger the more elongated; Infinity for a one-pixel-wide line. */
export function aspectRatio(mask: Mask): number {
  const { major, minor } = momentAxes(mask);
  return minor > 0 ? major / minor : Infinity;
}

/** 4 pi area / perimeter^2: near 1 for a disc, smaller for elongated or ragged shapes. */
export function circularity(mask: Mask): number {
  const p = perimeter(mask);
  return p > 0 ? (4 * Math.PI * area(mask)) / (p * p) : 0;
}

/**
 * Pixels in the convex hull, as regionprops' area_convex: the hull of every foreground pixel's four edge
 * midpoints ((x +- 0.5, y) and (x, y +- 0.5)), counting pixel centres inside it or on its boundary. Coordinates
 * are doubled so all hull arithmetic is exact in integers.
 */
export function convexArea(mask: Mask): number {
  checkMask(mask);
  const hull = convexHull(edgeMidpoints2x(mask));
  let count = 0;
  for (let y = 0; y < mask.height; y++) {
    const span = rowSpan(hull, 2 * y);
    if (!span) continue;
    const first = Math.max(0, Math.ceil(span[0] / 2 - 1e-9));
    const last = Math.min(mask.width - 1, Math.floor(span[1] / 2 + 1e-9));
    if (last >= first) count += last - first + 1;
  }
  return count;
}

/** Area over convex area: 1 for a convex cell, lower with protrusions and concavities. */
export function solidity(mask: Mask): number {
  return area(mask) / convexArea(mask);
}

type Point = [number, number];

/** Doubled edge midpoints of the pixels that can be on the hull: the first and last of every row and column. */
function edgeMidpoints2x(mask: Mask): Point[] {
  const { width, height } = mask;
  const candidates = new Set<number>();
  for (let y = 0; y < height; y++) {
    let first = -1;
    let last = -1;
    for (let x = 0; x < width; x++) {
      if (!mask.data[y * width + x]) continue;
      if (first < 0) first = x;
      last = x;
    }
    if (first >= 0) candidates.add(y * width + first).add(y * width + last);
  }
  for (let x = 0; x < width; x++) {
    let first = -1;
    let last = -1;
    for (let y = 0; y < height; y++) {
      if (!mask.data[y * width + x]) continue;
      if (first < 0) first = y;
      last = y;
    }
    if (first >= 0) candidates.add(first * width + x).add(last * width + x);
  }
  const points: Point[] = [];
  for (const i of candidates) {
    const x = 2 * (i % width);
    const y = 2 * Math.floor(i / width);
    points.push([x - 1, y], [x + 1, y], [x, y - 1], [x, y + 1]);
  }
  return points;
}

const cross = (o: Point, a: Point, b: Point): number => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Andrew's monotone chain; collinear points dropped; counter-clockwise in (x, y). */
function convexHull(points: Point[]): Point[] {
  const sorted = [...points].sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  const half = (input: Point[]): Point[] => {
    const chain: Point[] = [];
    for (const p of input) {
      while (chain.length >= 2 && cross(chain[chain.length - 2], chain[chain.length - 1], p) <= 0) chain.pop();
      chain.push(p);
    }
    chain.pop();
    return chain;
  };
  return [...half(sorted), ...half([...sorted].reverse())];
}

/** [min x, max x] where the horizontal line at y meets the convex polygon, or null if it misses it. */
function rowSpan(hull: Point[], y: number): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < hull.length; k++) {
    const [x0, y0] = hull[k];
    const [x1, y1] = hull[(k + 1) % hull.length];
    if ((y < y0 && y < y1) || (y > y0 && y > y1)) continue;
    const xs = y0 === y1 ? [x0, x1] : [x0 + ((y - y0) * (x1 - x0)) / (y1 - y0)];
    for (const x of xs) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

export interface ShapeMeasures {
  area: number;
  perimeter: number;
  majorAxisLength: number;
  minorAxisLength: number;
  aspectRatio: number;
  circularity: number;
  solidity: number;
}

export function shapeMeasures(mask: Mask): ShapeMeasures {
  const { major, minor } = momentAxes(mask);
  return {
    area: area(mask),
    perimeter: perimeter(mask),
    majorAxisLength: major,
    minorAxisLength: minor,
    aspectRatio: minor > 0 ? major / minor : Infinity,
    circularity: circularity(mask),
    solidity: solidity(mask),
  };
}

/**
 * How strongly the image's edges share one direction, in [0, 1]: the coherence (l1 - l2) / (l1 + l2) of the
 * structure tensor summed over the mask (all pixels without one). Gradients are numpy.gradient's: central
 * differences inside, one-sided at the image border. Parallel stress fibres give values near 1, a cortical ring
 * or isotropic texture near 0; a flat image has no orientation and gives 0.
 */
export function orientationCoherence(pixels: ArrayLike<number>, width: number, height: number, mask?: Mask): number {
  checkSize(width, height, pixels.length, "image");
  if (mask && (mask.width !== width || mask.height !== height)) {
    throw new Error(`mask is ${mask.width}x${mask.height} but the image is ${width}x${height}`);
  }
  const value = (x: number, y: number): number => pixels[y * width + x];
  const derivative = (i: number, n: number, sample: (k: number) => number): number => {
    if (n === 1) return 0;
    if (i === 0) return sample(1) - sample(0);
    if (i === n - 1) return sample(n - 1) - sample(n - 2);
    return (sample(i + 1) - sample(i - 1)) / 2;
  };
  let jxx = 0;
  let jyy = 0;
  let jxy = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask && !mask.data[y * width + x]) continue;
      const gx = derivative(x, width, (k) => value(k, y));
      const gy = derivative(y, height, (k) => value(x, k));
      jxx += gx * gx;
      jyy += gy * gy;
      jxy += gx * gy;
    }
  }
  const trace = jxx + jyy;
  return trace > 0 ? Math.sqrt((jxx - jyy) ** 2 + 4 * jxy * jxy) / trace : 0;
}
