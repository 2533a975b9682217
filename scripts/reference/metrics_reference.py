#!/usr/bin/python3
"""Reference values for lib/axis.ts and lib/metrics.ts, computed with numpy/scipy/sklearn/pandas.

Run with Debian's python (it has the scientific stack):
    /usr/bin/python3 scripts/reference/metrics_reference.py
Writes test/fixtures/metrics/metrics_reference.json. Every dataset is generated here from a fixed seed and
stored in the fixture, so the TypeScript tests read both the inputs and the expected outputs.
NaN (e.g. the std of a one-cell condition, a t-test with a one-cell group) is written as null.
"""
import json
import math
import os

import numpy as np
import pandas as pd
import scipy
import sklearn
from scipy import stats
from scipy.stats._stats_py import _unequal_var_ttest_denom
from sklearn.metrics import roc_auc_score

from jsonable import clean  # scripts/reference/jsonable.py, beside this script

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "metrics", "metrics_reference.json")
PERCENTILE_QS = [0, 1, 2.5, 25, 50, 75, 99, 100]
OVERLAP_BINS = 200


# --- the TEM axis (the method, written the plain numpy way) ---------------------------------------------------

def l2_normalize(z):
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def robust_scale(s, lo=1, hi=99):
    p_lo, p_hi = np.percentile(s, [lo, hi])
    return np.clip((s - p_lo) / (p_hi - p_lo), 0, 1), p_lo, p_hi


def axis_reference(z_raw, conditions, epi, mes):
    z = l2_normalize(z_raw)
    mu_e = z[conditions == epi].mean(axis=0)
    mu_m = z[conditions == mes].mean(axis=0)
    v = mu_m - mu_e
    s = (z - mu_e) @ v
    scaled, p_lo, p_hi = robust_scale(s)
    return {
        "l2": z, "muE": mu_e, "muM": mu_m, "v": v, "vNorm": np.linalg.norm(v), "projection": s,
        "percentiles": {str(q): np.percentile(s, q) for q in PERCENTILE_QS},
        "p_lo": p_lo, "p_hi": p_hi, "scaled": scaled,
    }


def embedding_dataset(rng, conditions, shifts, d):
    """Non-negative embeddings (like post-ReLU avgpool features) whose mean moves with the condition."""
    direction = rng.normal(size=d)
    base = rng.normal(size=d)
    rows = [np.abs(base + shifts[c] * direction + rng.normal(scale=0.8, size=d)) for c in conditions]
    return np.array(rows)


# --- validation statistics --------------------------------------------------------------------------------------

def cohens_d(a, b):
    """(mean b - mean a) / pooled SD with ddof=1: positive when b scores higher."""
    na, nb = len(a), len(b)
    pooled = math.sqrt(((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2))
    return (np.mean(b) - np.mean(a)) / pooled


def overlap(a, b, bins=OVERLAP_BINS, value_range=(0.0, 1.0)):
    da, edges = np.histogram(a, bins=bins, range=value_range, density=True)
    db, _ = np.histogram(b, bins=bins, range=value_range, density=True)
    return float(np.sum(np.minimum(da, db) * np.diff(edges)))


def welch(a, b):
    if len(a) < 2 or len(b) < 2:
        return None  # scipy returns NaN here; the TypeScript side reports "undefined" instead
    r = stats.ttest_ind(a, b, equal_var=False)
    return {"t": r.statistic, "df": welch_df(a, b), "p": r.pvalue}


def welch_df(a, b):
    """scipy's own Welch-Satterthwaite degrees of freedom (ttest_ind does not return them in scipy 1.10)."""
    df, _ = _unequal_var_ttest_denom(np.var(a, ddof=1), len(a), np.var(b, ddof=1), len(b))
    return df


def describe(scores, conditions, order):
    frame = pd.DataFrame({"score": scores, "condition": conditions})
    out = []
    for c in order:
        d = frame.loc[frame.condition == c, "score"].describe()
        out.append({"condition": c, "n": int(d["count"]), "mean": d["mean"], "std": d["std"],
                    "median": d["50%"], "q25": d["25%"], "q75": d["75%"], "min": d["min"], "max": d["max"]})
    return out


def score_metrics(scores, conditions, order, epi, mes):
    a, b = scores[conditions == epi], scores[conditions == mes]
    labels = np.r_[np.zeros(len(a)), np.ones(len(b))]
    pairs = []
    for i, ci in enumerate(order):
        for cj in order[i + 1:]:
            pairs.append({"a": ci, "b": cj, "welch": welch(scores[conditions == ci], scores[conditions == cj])})
    return {
        "auc": roc_auc_score(labels, np.r_[a, b]),
        "cohens_d": cohens_d(a, b),
        "welch_anchor": welch(b, a),
        "overlap": overlap(a, b),
        "overlap_20_bins": overlap(a, b, bins=20),  # 200 bins barely overlap with 37 cells: test the sum too
        "by_condition": describe(scores, conditions, order),
        "pairwise_welch": pairs,
    }


def correlation(x, y):
    pr = stats.pearsonr(x, y)
    sr = stats.spearmanr(x, y)
    return {"pearson": {"r": pr.statistic, "p": pr.pvalue}, "spearman": {"rho": sr.correlation, "p": sr.pvalue}}


def main():
    rng = np.random.default_rng(20240607)

    # Dataset 1: 40 cells x 16 dims, four conditions of unequal size (20, 17, 2, 1), rows shuffled.
    sizes = {"Ctrl": 20, "TNFTGF": 17, "TGF": 2, "TNF": 1}
    shifts = {"Ctrl": 0.0, "TNFTGF": 1.0, "TGF": 0.6, "TNF": 0.4}
    conditions = np.array([c for c, k in sizes.items() for _ in range(k)])
    rng.shuffle(conditions)
    order = list(sizes)
    actin_raw = embedding_dataset(rng, conditions, shifts, 16)
    nucleus_raw = embedding_dataset(rng, conditions, {c: 0.5 * s for c, s in shifts.items()}, 16)
    actin = axis_reference(actin_raw, conditions, "Ctrl", "TNFTGF")
    nucleus = axis_reference(nucleus_raw, conditions, "Ctrl", "TNFTGF")
    fused = 0.5 * actin["scaled"] + 0.5 * nucleus["scaled"]
    fused_weighted = 0.25 * actin["scaled"] + 0.75 * nucleus["scaled"]  # weights [0.3, 0.9] normalised
    scores = {"tem_actin": actin["scaled"], "tem_nucleus": nucleus["scaled"], "tem_fused": fused}

    # Dataset 2: scores rounded to one decimal (many ties) for AUC, Spearman, describe and histogram edges.
    tied_scores = np.round(rng.random(30), 1)
    tied_labels = (rng.random(30) < 0.5).astype(int)
    tied_other = np.round(tied_scores + rng.normal(scale=0.2, size=30), 1)

    # Dataset 3: two well separated groups, for a p-value far below double-precision 1 - p resolution.
    tiny_a = rng.normal(0.0, 1.0, size=60)
    tiny_b = rng.normal(3.0, 1.5, size=45)

    # Dataset 4: histogram edge cases: exact bin edges, 0, 1, values outside [0, 1].
    edge_a = np.array([0.0, 0.005, 0.01, 0.5, 0.995, 1.0, 1.0, 0.3333, -0.2, 1.5])
    edge_b = np.array([0.0, 0.0, 0.0049999, 0.5, 0.5, 0.7, 0.995, 0.99999, 1.0])

    percentile_arrays = {
        "one": [0.7], "two": [3.0, -1.0], "seven": [5.0, 1.0, 4.0, 4.0, 2.0, 9.0, -3.0],
        "forty": actin["projection"].tolist(),
    }

    fixture = {
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
                     "pandas": pd.__version__},
        "embeddings": {
            "n": 40, "d": 16, "conditions": conditions.tolist(), "order": order,
            "anchors": ["Ctrl", "TNFTGF"],
            "actin_raw": actin_raw.ravel(), "nucleus_raw": nucleus_raw.ravel(),
            "actin": {**actin, "l2": actin["l2"].ravel()},
            "nucleus": {**nucleus, "l2": nucleus["l2"].ravel()},
            "tem_fused": fused, "tem_fused_weights_0.3_0.9": fused_weighted,
        },
        "metrics": {
            **{name: score_metrics(s, conditions, order, "Ctrl", "TNFTGF") for name, s in scores.items()},
            "correlation_actin_nucleus": correlation(actin["scaled"], nucleus["scaled"]),
            "intermediate_means": {name: {c: float(np.mean(s[conditions == c])) for c in order}
                                   for name, s in scores.items()},
        },
        "ties": {
            "scores": tied_scores, "labels": tied_labels, "other": tied_other,
            "auc": roc_auc_score(tied_labels, tied_scores),
            "correlation": correlation(tied_scores, tied_other),
            "describe": describe(tied_scores, tied_labels.astype(str), ["0", "1"]),
            "overlap": overlap(tied_scores[tied_labels == 0], tied_scores[tied_labels == 1]),
            "overlap_10_bins": overlap(tied_scores[tied_labels == 0], tied_scores[tied_labels == 1], bins=10),
        },
        "tiny_p": {"a": tiny_a, "b": tiny_b, "welch": welch(tiny_a, tiny_b), "cohens_d": cohens_d(tiny_a, tiny_b)},
        "histogram_edges": {"a": edge_a, "b": edge_b, "overlap": overlap(edge_a, edge_b),
                            "overlap_7_bins": overlap(edge_a, edge_b, bins=7)},
        "percentiles": {"qs": PERCENTILE_QS, "arrays": percentile_arrays,
                        "expected": {k: [np.percentile(v, q) for q in PERCENTILE_QS]
                                     for k, v in percentile_arrays.items()}},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(clean(fixture), fh, allow_nan=False)
        fh.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
