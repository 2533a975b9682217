#!/usr/bin/python3
"""Reference values for lib/morphology.ts, from skimage 0.19 / scipy / numpy.

Writes into test/fixtures/morphology/:
  - cells/<Cond>/{Actine,Noyaux}/<name>.png: three tiny hand-made cells (drawn here with numpy, independently of
    the TypeScript code), one of them with a 16-bit actin image and a flat nucleus image;
  - morphology_reference.json: for each cell and channel the Otsu threshold (skimage.filters.threshold_otsu), the
    mask after keeping the largest 8-connected object (skimage.measure.label) and filling its holes
    (scipy.ndimage.binary_fill_holes), regionprops' area / perimeter / axes / solidity of that mask, circularity,
    and the structure-tensor coherence of the actin image inside it (numpy.gradient); plus Otsu thresholds of
    random integer images (near-ties included) and the component / hole-filling steps on a binary mask with two
    equally large objects.

Run: /usr/bin/python3 scripts/reference/morphology_reference.py
"""
import json
import os

import numpy as np
import scipy
import scipy.ndimage as ndi
import skimage
from PIL import Image
from skimage.filters import threshold_otsu
from skimage.measure import label, regionprops

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "morphology")
rng = np.random.default_rng(20240917)


def ellipse(h, w, cx, cy, a, b, angle):
    y, x = np.mgrid[0:h, 0:w].astype(float)
    c, s = np.cos(angle), np.sin(angle)
    u = (x - cx) * c + (y - cy) * s
    v = -(x - cx) * s + (y - cy) * c
    return (u / a) ** 2 + (v / b) ** 2 <= 1


def noisy(img, sd, hi=255):
    return np.clip(np.round(img + sd * rng.standard_normal(img.shape)), 0, hi)


def cobblestone():
    """Round epithelial-like cell: bright cortical actin ring around a dim interior, plus a speck of debris."""
    h, w = 36, 40
    outer = ellipse(h, w, 19, 18, 14, 12, 0.2)
    inner = ellipse(h, w, 19, 18, 10.5, 8.5, 0.2)
    actin = np.full((h, w), 8.0)
    actin[outer] = 170
    actin[inner] = 45  # dimmer than Otsu's cut: only hole filling brings the interior back
    actin[2:5, 34:38] = 200  # debris: a second, smaller object
    nucleus = np.full((h, w), 5.0)
    nucleus[ellipse(h, w, 19, 18, 6, 5, 0.0)] = 140
    nucleus[17:19, 18:20] = 6  # dark nucleolus: a hole inside the nucleus
    return noisy(actin, 4).astype(np.uint8), noisy(nucleus, 3).astype(np.uint8)


def spindle():
    """Elongated mesenchymal-like cell with stress fibres along its long axis and an elongated nucleus."""
    h, w = 30, 48
    angle = np.deg2rad(15)
    body = ellipse(h, w, 24, 15, 21, 6, angle)
    y, x = np.mgrid[0:h, 0:w].astype(float)
    across = -(x - 24) * np.sin(angle) + (y - 15) * np.cos(angle)
    fibres = 120 + 60 * np.cos(2 * np.pi * across / 3.0)
    actin = np.where(body, fibres, 10.0)
    actin[26:30, 0:6] = 130  # a neighbour's edge in the corner: smaller, must be dropped
    nucleus = np.full((h, w), 4.0)
    nucleus[ellipse(h, w, 24, 15, 8, 3.5, angle)] = 150
    return noisy(actin, 5).astype(np.uint8), noisy(nucleus, 2).astype(np.uint8)


def dim_sixteen_bit():
    """A 16-bit actin image (a blob with a protrusion) and a nucleus image that is flat: no nucleus found."""
    h, w = 28, 30
    actin = np.full((h, w), 900.0)
    blob = ellipse(h, w, 13, 14, 8, 7, 0.0)
    blob[13:16, 20:29] = True  # protrusion: lowers solidity
    actin[blob] = 5200
    nucleus = np.zeros((h, w))
    return noisy(actin, 150, 65535).astype(np.uint16), nucleus.astype(np.uint8)


def object_mask(img):
    t = threshold_otsu(img)
    labels = label(img > t, connectivity=2)
    if labels.max() == 0:
        return t, None
    sizes = np.bincount(labels.ravel())[1:]
    largest = labels == (1 + int(np.argmax(sizes)))
    return t, ndi.binary_fill_holes(largest)


def coherence(img, mask):
    gy, gx = np.gradient(img.astype(float))
    jxx, jyy, jxy = (gx[mask] ** 2).sum(), (gy[mask] ** 2).sum(), (gx[mask] * gy[mask]).sum()
    return float(np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (jxx + jyy))


def rows(mask):
    return ["".join(str(int(v)) for v in row) for row in mask.astype(np.uint8)]


def channel_measures(img):
    t, mask = object_mask(img)
    if mask is None:
        return {"threshold": float(t), "mask": None}
    (p,) = regionprops(mask.astype(np.uint8))
    return {
        "threshold": float(t),
        "mask": rows(mask),
        "area": float(p.area),
        "perimeter": float(p.perimeter),
        "aspect_ratio": float(p.major_axis_length / p.minor_axis_length),
        "circularity": float(4 * np.pi * p.area / p.perimeter ** 2),
        "solidity": float(p.solidity),
        "coherence": coherence(img, mask),
    }


def save_png(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path)  # uint8 -> 8-bit grey "L", uint16 -> 16-bit grey "I;16"
    with Image.open(path) as back:  # PIL reads a 16-bit PNG back as mode "I" (int32): compare values
        assert np.array_equal(np.asarray(back), img), path


def cell_case(condition, name, actin, nucleus):
    cells = os.path.join(OUT, "cells", condition)
    save_png(os.path.join(cells, "Actine", name), actin)
    save_png(os.path.join(cells, "Noyaux", name), nucleus)
    return {"sample_id": f"{condition}/{name}", "condition": condition, "name": name,
            "actin": channel_measures(actin), "nucleus": channel_measures(nucleus)}


def otsu_cases():
    """Integer images of several shapes of histogram; small level ranges make exact between-class-variance ties
    likely, where only skimage's arithmetic order decides."""
    cases = []
    for k, (size, lo, hi) in enumerate([(60, 0, 3), (200, 0, 7), (500, 10, 250), (300, 0, 65535), (400, 3, 4)]):
        values = rng.integers(lo, hi + 1, size)
        if k == 2:
            values[: size // 2] = np.clip(np.round(rng.normal(40, 10, size // 2)), lo, hi)
        cases.append({"pixels": [int(v) for v in values], "threshold": float(threshold_otsu(values))})
    symmetric = np.array([0] * 5 + [1] * 3 + [2] * 3 + [3] * 5)  # two thresholds with equal variance
    cases.append({"pixels": [int(v) for v in symmetric], "threshold": float(threshold_otsu(symmetric))})
    return cases


def components_case():
    mask = np.zeros((11, 14), bool)
    mask[1:6, 1:6] = True      # 25 px with a hole (below): the first of two equally large objects
    mask[3, 3] = False
    mask[6:11, 8:13] = True    # 25 px, met later in row-major order
    mask[8, 10] = False
    mask[0, 7] = mask[1, 8] = True  # diagonal pair: one object only with 8-connectivity
    labels = label(mask, connectivity=2)
    sizes = np.bincount(labels.ravel())[1:]
    largest = labels == (1 + int(np.argmax(sizes)))
    return {"width": 14, "height": 11, "mask": rows(mask), "objects": int(labels.max()),
            "largest": rows(largest), "filled": rows(ndi.binary_fill_holes(largest))}


def main():
    cells = [
        cell_case("Ctrl", "cobblestone.png", *cobblestone()),
        cell_case("TNFTGF", "spindle.png", *spindle()),
        cell_case("TNF", "dim16.png", *dim_sixteen_bit()),
    ]
    doc = {
        "generator": "scripts/reference/morphology_reference.py",
        "skimage": skimage.__version__, "scipy": scipy.__version__, "numpy": np.__version__,
        "cells": cells, "otsu": otsu_cases(), "components": components_case(),
    }
    with open(os.path.join(OUT, "morphology_reference.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for c in cells:
        for ch in ("actin", "nucleus"):
            print(c["sample_id"], ch, {k: round(v, 4) for k, v in c[ch].items() if isinstance(v, float)})


if __name__ == "__main__":
    main()
