"""Reference values for lib/morphometrics.ts, from skimage.measure.regionprops and numpy.

Writes test/fixtures/synth/morphometrics.json: a few small masks (drawn here with numpy, independently of the
TypeScript code) with skimage's area, perimeter, axis lengths, convex area and solidity, plus grey images with
the structure-tensor coherence computed from numpy.gradient.

Run: /usr/bin/python3 scripts/reference/synth_stats.py   (skimage 0.19, numpy, scipy)
"""
import json
import os

import numpy as np
import scipy.ndimage as ndi
import skimage
from skimage.measure import regionprops

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "synth", "morphometrics.json")


def rotated_ellipse(h, w, a, b, angle):
    y, x = np.mgrid[0:h, 0:w].astype(float)
    x -= (w - 1) / 2
    y -= (h - 1) / 2
    c, s = np.cos(angle), np.sin(angle)
    u = x * c + y * s
    v = -x * s + y * c
    return (u / a) ** 2 + (v / b) ** 2 <= 1


def l_shape(h, w):
    m = np.zeros((h, w), bool)
    m[3:30, 4:11] = True
    m[22:30, 4:26] = True
    return m


def spiky_blob(h, w):
    """A disc with two thin protrusions: low solidity, ragged perimeter (like a cell with filopodia)."""
    y, x = np.mgrid[0:h, 0:w]
    m = (x - 16) ** 2 + (y - 18) ** 2 <= 9 ** 2
    m[17:19, 25:37] = True  # horizontal spur, 2 px thick
    for k in range(9):  # diagonal spur, 1 px wide
        m[8 - k, 22 + k] = True
    return m


def smooth_random_blob(h, w, seed):
    """Thresholded smooth noise, kept to its largest component: an irregular cell-like outline."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal((h, w)), 4)
    y, x = np.mgrid[0:h, 0:w]
    field -= 0.004 * ((x - w / 2) ** 2 + (y - h / 2) ** 2) * field.std()
    labels, n = ndi.label(field > 0.2 * field.std())
    sizes = ndi.sum(np.ones_like(field), labels, range(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))


def shape_case(name, mask):
    mask = mask.astype(np.uint8)
    (p,) = regionprops(mask)  # the whole foreground as one region (label 1)
    convex = p.area_convex if hasattr(p, "area_convex") else p.convex_area
    return {
        "name": name,
        "width": int(mask.shape[1]),
        "height": int(mask.shape[0]),
        "mask": ["".join(str(int(v)) for v in row) for row in mask],
        "area": float(p.area),
        "perimeter": float(p.perimeter),
        "majorAxisLength": float(p.major_axis_length),
        "minorAxisLength": float(p.minor_axis_length),
        "convexArea": float(convex),
        "solidity": float(p.solidity),
    }


def coherence(img, mask):
    gy, gx = np.gradient(img.astype(float))
    m = mask.astype(bool)
    jxx, jyy, jxy = (gx[m] ** 2).sum(), (gy[m] ** 2).sum(), (gx[m] * gy[m]).sum()
    return float(np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (jxx + jyy))


def coherence_case(name, img, mask):
    return {
        "name": name,
        "width": int(img.shape[1]),
        "height": int(img.shape[0]),
        "pixels": [int(v) for v in img.ravel()],
        "mask": ["".join(str(int(v)) for v in row) for row in mask.astype(np.uint8)],
        "coherence": coherence(img, mask),
    }


def stripes(h, w, angle, period, noise, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(float)
    phase = 2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period
    img = 100 + 60 * np.cos(phase) + noise * rng.standard_normal((h, w))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def main():
    shapes = [
        shape_case("ellipse a=14 b=5 at 30 deg", rotated_ellipse(36, 36, 14, 5, np.pi / 6)),
        shape_case("L shape", l_shape(33, 29)),
        shape_case("disc with spurs", spiky_blob(34, 38)),
        shape_case("smooth random blob", smooth_random_blob(40, 40, 7)),
    ]
    ellipse = rotated_ellipse(32, 32, 13, 7, -0.4)
    textures = [
        coherence_case("stripes at 20 deg, noisy, in an ellipse", stripes(32, 32, np.deg2rad(20), 6, 8, 1), ellipse),
        coherence_case("pure noise, whole image", np.clip(np.round(
            100 + 30 * np.random.default_rng(2).standard_normal((24, 28))), 0, 255).astype(np.uint8), np.ones((24, 28))),
    ]
    doc = {
        "generator": "scripts/reference/synth_stats.py",
        "skimage": skimage.__version__,
        "numpy": np.__version__,
        "shapes": shapes,
        "coherence": textures,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for s in shapes:
        print(s["name"], {k: round(v, 4) for k, v in s.items() if isinstance(v, float)})
    for t in textures:
        print(t["name"], round(t["coherence"], 4))


if __name__ == "__main__":
    main()
