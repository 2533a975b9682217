#!/usr/bin/python3
"""Reference values for lib/plots.ts (histogram densities) and lib/composite.ts (auto-contrast composites).

Run with Debian's python (it has numpy):
    /usr/bin/python3 scripts/reference/plots_reference.py
Writes test/fixtures/plots/histogram_reference.json and test/fixtures/plots/composite_reference.json.
Inputs are generated here from a fixed seed and stored in the fixtures next to the expected outputs.
"""
import json
import os

import numpy as np

OUT_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "plots")
rng = np.random.default_rng(20240611)


def histogram_cases():
    """numpy.histogram(density=True) on scores with many values exactly on bin edges, 0 and 1 included."""
    cases = []
    for bins in (30, 7, 1):
        edges = np.linspace(0.0, 1.0, bins + 1)
        values = np.concatenate([
            rng.uniform(0.0, 1.0, 200),
            [0.0, 0.0, 1.0, 1.0, 1.0],           # clipped cells sit exactly on the outer edges
            edges,                                # every edge once
            np.nextafter(edges, -np.inf)[1:],     # just below each inner/upper edge
            np.nextafter(edges, np.inf)[:-1],     # just above
        ])
        counts, out_edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
        density, _ = np.histogram(values, bins=bins, range=(0.0, 1.0), density=True)
        cases.append({
            "bins": bins,
            "values": values.tolist(),
            "edges": out_edges.tolist(),
            "counts": counts.tolist(),
            "density": density.tolist(),
        })
    return {"numpy": np.__version__, "cases": cases}


def stretch(channel, low_q, high_q, max_value):
    lo, hi = np.percentile(channel, [low_q, high_q])  # numpy's default "linear" method
    if not hi > lo:
        lo, hi = 0.0, float(max_value)
    return np.clip((channel - lo) / (hi - lo), 0.0, 1.0)


def composite_case(actin, nucleus, max_value, actin_colour, nucleus_colour, percentiles):
    a = stretch(actin.astype(np.float64), *percentiles, max_value)
    n = stretch(nucleus.astype(np.float64), *percentiles, max_value)
    mixed = a[..., None] * np.array(actin_colour, float) + n[..., None] * np.array(nucleus_colour, float)
    # floor(x + 0.5) is JavaScript's Math.round for x >= 0 (numpy's round would go half-to-even).
    rgb = np.floor(np.minimum(255.0, mixed) + 0.5).astype(np.uint8)
    return {
        "width": int(actin.shape[1]),
        "height": int(actin.shape[0]),
        "maxValue": max_value,
        "actin": actin.ravel().tolist(),
        "nucleus": nucleus.ravel().tolist(),
        "actinColour": list(actin_colour),
        "nucleusColour": list(nucleus_colour),
        "percentiles": list(percentiles),
        "rgb": rgb.ravel().tolist(),
    }


def composite_cases():
    """Auto-contrast composites of random 12-bit and 8-bit channels (same size)."""
    cases = []
    for (h, w), max_value, percentiles in (((5, 7), 4095, (0.5, 99.5)), ((9, 11), 255, (2.0, 98.0))):
        actin = rng.integers(0, max_value + 1, size=(h, w))
        nucleus = rng.integers(0, max_value // 3, size=(h, w))
        cases.append(composite_case(actin, nucleus, max_value, (255, 128, 0), (0, 128, 255), percentiles))
    return {"numpy": np.__version__, "cases": cases}


def write(name, value):
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump(value, f)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    write("histogram_reference.json", histogram_cases())
    write("composite_reference.json", composite_cases())
