#!/usr/bin/python3
"""Reference values for lib/validation.ts (out-of-fold scores, nested-CV fusion) and lib/pca.ts (sklearn PCA).

Run with Debian's python (it has the scientific stack):
    /usr/bin/python3 scripts/reference/validation_reference.py
Writes test/fixtures/validation/validation_reference.json: the seeded synthetic embeddings, the FIXED fold
assignment used by both sides, and the expected outputs. The algorithm is re-implemented here the plain numpy way,
independently of the TypeScript code: it shares only the written specification.

Specification (both sides):
  - anchor cells (Ctrl, TNFTGF) carry a fold 0..k-1, other cells -1;
  - fold f's axis: muE, muM from the anchor cells outside f; percentiles 1 and 99 (numpy 'linear') of the
    projections of every cell outside f (non-anchors included); held-out anchor cells get clip((s-p1)/(p99-p1));
    non-anchor cells keep the full (in-sample) axis's score;
  - tuned fusion: for outer fold f, each other fold g is scored on an axis built without f and g (same rules);
    the actin weight w in i/20 (i = 0..20) maximising the AUC of w*actin + (1-w)*nucleus on those inner scores of
    the anchor cells outside f is applied to fold f's outer scores. Ties: closest to 0.5, then the smaller w.
    The deployed weight is chosen the same way on all anchors' outer out-of-fold scores, and fuses the full-axis
    scores of non-anchor cells.
"""
import json
import os
from fractions import Fraction

import numpy as np
import sklearn
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from jsonable import clean  # scripts/reference/jsonable.py, beside this script

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "validation",
                   "validation_reference.json")
ANCHORS = ("Ctrl", "TNFTGF")
K = 5
GRID = [i / 20 for i in range(21)]
PCA_COMPONENTS = 3


def l2_normalize(z):
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def embedding_dataset(rng, conditions, shifts, d):
    """Non-negative embeddings (like post-ReLU avgpool features) whose mean moves with the condition."""
    direction = rng.normal(size=d)
    base = rng.normal(size=d)
    return np.array([np.abs(base + shifts[c] * direction + rng.normal(scale=0.9, size=d)) for c in conditions])


def stratified_folds(rng, conditions, k):
    """Any fixed stratified assignment will do: each anchor's cells in random order, fold = position mod k."""
    folds = np.full(len(conditions), -1)
    for anchor in ANCHORS:
        rows = rng.permutation(np.flatnonzero(conditions == anchor))
        folds[rows] = np.arange(len(rows)) % k
    return folds


def axis_scores(z, conditions, build_mask):
    """Axis from the anchor cells in build_mask, percentiles over all cells in build_mask; scores of every cell."""
    mu_e = z[build_mask & (conditions == ANCHORS[0])].mean(axis=0)
    mu_m = z[build_mask & (conditions == ANCHORS[1])].mean(axis=0)
    v = mu_m - mu_e
    s = (z - mu_e) @ v
    p_lo, p_hi = np.percentile(s[build_mask], [1, 99])
    return np.clip((s - p_lo) / (p_hi - p_lo), 0, 1), {"muE": mu_e, "muM": mu_m, "v": v, "p_lo": p_lo, "p_hi": p_hi}


def out_of_fold(z, conditions, folds):
    everyone = np.ones(len(z), dtype=bool)
    full, full_axis = axis_scores(z, conditions, everyone)
    oof = full.copy()
    fold_axes = []
    for f in range(K):
        scores, axis = axis_scores(z, conditions, folds != f)
        oof[folds == f] = scores[folds == f]
        fold_axes.append(axis)
    return full, oof, fold_axes, full_axis


def exact_auc(scores, positive):
    """Mann-Whitney U / (n1 n0) by counting pairs, as an exact fraction: ties between weights compare exactly."""
    pos, neg = scores[positive], scores[~positive]
    wins = sum(int((p > neg).sum()) * 2 + int((p == neg).sum()) for p in pos)
    return Fraction(wins, 2 * len(pos) * len(neg))


def fused(actin, nucleus, w):
    """lib/axis.ts fuse([w, 1 - w]) normalises the weights by their sum; do the same float operations."""
    total = w + (1 - w)
    return (w / total) * actin + ((1 - w) / total) * nucleus


def choose_weight(actin, nucleus, rows, positive):
    best = None
    for w in GRID:
        auc = exact_auc(fused(actin, nucleus, w)[rows], positive[rows])
        key = (auc, -abs(w - 0.5), -w)
        if best is None or key > best[0]:
            best = (key, w, auc)
    return best[1], float(best[2])


def tuned_fusion(za, zn, conditions, folds, oof_actin, oof_nucleus, full_actin, full_nucleus):
    is_anchor = folds >= 0
    positive = conditions == ANCHORS[1]
    per_fold = []
    for f in range(K):
        inner_a = np.zeros(len(za))
        inner_n = np.zeros(len(zn))
        for g in range(K):
            if g == f:
                continue
            keep = (folds != f) & (folds != g)
            inner_a[folds == g] = axis_scores(za, conditions, keep)[0][folds == g]
            inner_n[folds == g] = axis_scores(zn, conditions, keep)[0][folds == g]
        w, auc = choose_weight(inner_a, inner_n, is_anchor & (folds != f), positive)
        per_fold.append({"fold": f, "actin_weight": w, "inner_auc": auc})
    deployed_w, deployed_auc = choose_weight(oof_actin, oof_nucleus, is_anchor, positive)
    scores = fused(full_actin, full_nucleus, deployed_w)
    for entry in per_fold:
        rows = folds == entry["fold"]
        scores[rows] = fused(oof_actin, oof_nucleus, entry["actin_weight"])[rows]
    return per_fold, scores, deployed_w, deployed_auc


def anchor_auc(scores, conditions, rows=None):
    rows = np.ones(len(scores), dtype=bool) if rows is None else rows
    keep = rows & np.isin(conditions, ANCHORS)
    return roc_auc_score(conditions[keep] == ANCHORS[1], scores[keep])


def cohens_d(scores, conditions):
    a, b = scores[conditions == ANCHORS[0]], scores[conditions == ANCHORS[1]]
    pooled = np.sqrt(((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / (len(a) + len(b) - 2))
    return (b.mean() - a.mean()) / pooled


def largest_loading_positive(components, scores):
    """lib/pca.ts's sign convention; sklearn 1.2 makes the largest |score| positive instead (u-based svd_flip)."""
    flips = []
    for c in range(components.shape[0]):
        flip = components[c, np.argmax(np.abs(components[c]))] < 0
        if flip:
            components[c] *= -1
            scores[:, c] *= -1
        flips.append(bool(flip))
    return flips


def pca_reference(x, axis_v):
    model = PCA(n_components=PCA_COMPONENTS, svd_solver="full").fit(x)
    components = model.components_.copy()
    scores = model.transform(x)
    flips = largest_loading_positive(components, scores)
    direction = components @ axis_v
    return {
        "k": PCA_COMPONENTS, "mean": model.mean_, "components": components.ravel(),
        "explained_variance": model.explained_variance_, "explained_variance_ratio": model.explained_variance_ratio_,
        "scores": scores.ravel(), "flipped_from_sklearn": flips,
        "axis": {"v": axis_v, "direction": direction, "captured": np.linalg.norm(direction) / np.linalg.norm(axis_v)},
    }


def main():
    rng = np.random.default_rng(20240611)
    sizes = {"Ctrl": 18, "TNFTGF": 18, "TGF": 12, "TNF": 12}
    shifts = {"Ctrl": 0.0, "TNFTGF": 0.6, "TGF": 0.4, "TNF": 0.2}
    conditions = np.array([c for c, k in sizes.items() for _ in range(k)])
    rng.shuffle(conditions)
    d = 12
    actin_raw = embedding_dataset(rng, conditions, shifts, d)
    nucleus_raw = embedding_dataset(rng, conditions, {c: 0.5 * s for c, s in shifts.items()}, d)
    folds = stratified_folds(rng, conditions, K)
    za, zn = l2_normalize(actin_raw), l2_normalize(nucleus_raw)

    full_a, oof_a, axes_a, full_axis_a = out_of_fold(za, conditions, folds)
    full_n, oof_n, axes_n, _ = out_of_fold(zn, conditions, folds)
    in_sample = {"tem_actin": full_a, "tem_nucleus": full_n, "tem_fused": fused(full_a, full_n, 0.5)}
    oof = {"tem_actin": oof_a, "tem_nucleus": oof_n, "tem_fused": fused(oof_a, oof_n, 0.5)}
    per_fold, tuned_scores, deployed_w, deployed_auc = tuned_fusion(za, zn, conditions, folds, oof_a, oof_n,
                                                                    full_a, full_n)
    order = list(dict.fromkeys(conditions.tolist()))

    fixture = {
        "versions": {"numpy": np.__version__, "sklearn": sklearn.__version__},
        "data": {
            "n": len(conditions), "d": d, "conditions": conditions, "anchors": list(ANCHORS), "k": K,
            "folds": folds, "actin_raw": actin_raw.ravel(), "nucleus_raw": nucleus_raw.ravel(),
        },
        "out_of_fold": {
            "columns": {"tem_actin_oof": oof_a, "tem_nucleus_oof": oof_n, "tem_fused_oof": oof["tem_fused"],
                        "tem_fused_tuned_oof": tuned_scores},
            "fold_axes": {"actin": axes_a, "nucleus": axes_n},
            "scores": {name: {
                "auc_in_sample": anchor_auc(in_sample[name], conditions),
                "auc_out_of_fold": anchor_auc(oof[name], conditions),
                "cohens_d_in_sample": cohens_d(in_sample[name], conditions),
                "cohens_d_out_of_fold": cohens_d(oof[name], conditions),
                "condition_means_out_of_fold": {c: oof[name][conditions == c].mean() for c in order},
                "per_fold_auc": [anchor_auc(oof[name], conditions, folds == f) for f in range(K)],
            } for name in oof},
            "tuned_fusion": {
                "per_fold": per_fold, "auc_out_of_fold": anchor_auc(tuned_scores, conditions),
                "deployed_actin_weight": deployed_w, "deployed_inner_auc": deployed_auc,
            },
        },
        "pca": pca_reference(za, full_axis_a["v"]),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(clean(fixture), fh, indent=1)
        fh.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    print("tuned weights per fold:", [e["actin_weight"] for e in per_fold], "deployed:", deployed_w)
    print("AUC in-sample / oof:", {k: (round(v["auc_in_sample"], 3), round(v["auc_out_of_fold"], 3))
                                   for k, v in fixture["out_of_fold"]["scores"].items()})
    print("pca flips:", fixture["pca"]["flipped_from_sklearn"],
          "ratio:", [round(r, 3) for r in fixture["pca"]["explained_variance_ratio"]])


if __name__ == "__main__":
    main()
