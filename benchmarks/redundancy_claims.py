"""Issue 15's claims, measured on a finished workflow run (simulated data).

    python benchmarks/redundancy_claims.py [RESULTS_DIR]   (default: results)

Prints, from the run's own tables (nothing is recomputed here):
- the surrogate's held-out median per-gene r and marker-mean R² next to the same surrogate
  with a linear (additive) cis path and the ridge baseline (results/surrogate/metrics.json);
- the redundancy check per logic: median group / summed-single drop ratio, the ideal ratio
  the observed data allow, and the fraction of it reproduced (results/evaluate/redundancy_summary.tsv);
- called redundant pairs against planted OR pairs: precision and recall (redundancy_calls.tsv);
- OR-group recovery per method and L: the share of per-gene targets with a planted OR group
  whose every callable member was selected (group_recovery.tsv);
- on those targets, GRIDS's test-cell Rel Δ against saliency's (one-sided paired t-test), and
  on every target whether GRIDS ends at or below its saliency start (expression_drop.tsv);
- the median off-target effect per method (expression_drop.tsv);
- OR-group recovery on the targets whose planted OR group the surrogate learned (an OR unit
  covering at least two of its members), which separates the search from the surrogate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from scipy import stats


def learned_targets(results: Path, targets: set[str]) -> dict[str, bool]:
    """Per target gene: does one of the surrogate's OR units cover >= 2 members of one of its
    planted OR groups (members and units matched through overlapping peaks)?"""
    from grids.evaluate.overlap import overlap_matrix
    from grids.evaluate.truth import read_truth
    from grids.surrogate import load_surrogate

    peaks = load_surrogate(results / "surrogate" / "model.pt").peaks.reset_index(drop=True)
    units = json.loads((results / "surrogate" / "metrics.json").read_text())["training"]["cis"]["group_units"]["units"]
    truth = read_truth(str(sorted((results / "simulated").glob("*/truth/links.tsv"))[0]))
    out = {}
    for gene in sorted(targets):
        members = truth[(truth["gene"] == gene) & (truth["logic"] == "or")]
        learned = False
        for _, group in members.groupby("group"):
            hits = overlap_matrix(group[["chrom", "start", "end"]].reset_index(drop=True), peaks)
            for unit in units:
                if unit["gene"] == gene and unit["logic"] == "or":
                    learned |= int(hits[:, unit["peaks"]].any(1).sum()) >= 2
        out[gene] = learned
    return out


def main(results: Path) -> None:
    metrics = json.loads((results / "surrogate" / "metrics.json").read_text())
    print("== surrogate (test cells)")
    for name in ("surrogate", "surrogate_linear_cis", "ridge"):
        if name in metrics:
            m = metrics[name]
            print(f"{name:22s} median_r={m['median_pearson_r']:.4f} marker_mean_r2={m['marker_mean_r2']:.4f}")
    units = metrics["training"]["cis"].get("group_units", {})
    if units:
        print(f"group units: {units['genes_with_units']} of {units['genes_tested']} genes "
              f"({units['or_units']} OR, {units['and_units']} AND)")

    evaluate = results / "evaluate"
    print("\n== redundancy check (surrogate, test cells, natural scale)")
    print(pd.read_csv(evaluate / "redundancy_summary.tsv", sep="\t").to_string(index=False))

    print("\n== called redundant pairs vs planted OR pairs")
    print(pd.read_csv(evaluate / "redundancy_calls.tsv", sep="\t").to_string(index=False))

    recovery = pd.read_csv(evaluate / "group_recovery.tsv", sep="\t")
    pooled = recovery[recovery["scope"] == "pooled"]
    print("\n== OR-group recovery: share of per-gene targets with an OR group whose members were all selected")
    print(pooled.pivot_table(index="method", columns="L", values="frac_targets_all_recovered").round(3).to_string())

    per_target = recovery[recovery["scope"] == "target"]
    learned = learned_targets(results, set(per_target["target"]))
    print("targets whose OR group the surrogate learned: "
          + ", ".join(g for g, ok in learned.items() if ok) + f" ({sum(learned.values())} of {len(learned)})")
    on_learned = per_target[per_target["target"].map(learned)]
    print("OR-group recovery on those targets (share fully recovered):")
    print(on_learned.assign(full=on_learned["n_groups_fully_recovered"] == on_learned["n_groups"])
          .pivot_table(index="method", columns="L", values="full").round(3).to_string())

    drops = pd.read_csv(evaluate / "expression_drop.tsv", sep="\t")
    drops = drops[drops["status"] == "ok"]
    with_group = recovery[(recovery["scope"] == "target") & (recovery["method"] == "grids")]
    keys = set(zip(with_group["cell_type"], with_group["target"]))
    for L, at_L in drops.groupby("L"):
        wide = at_L.pivot_table(index=["cell_type", "target"], columns="method", values="rel_delta_pct")
        print(f"\n== L = {L}: test-cell Rel Δ %")
        subset = wide[[key in keys for key in wide.index]]
        if {"grids", "saliency"} <= set(wide.columns) and len(subset) >= 2:
            pair = subset[["grids", "saliency"]].dropna()
            test = stats.ttest_rel(pair["grids"], pair["saliency"], alternative="less")
            print(f"targets with a planted OR group (n={len(pair)}): grids {pair['grids'].mean():.2f} vs saliency "
                  f"{pair['saliency'].mean():.2f}, one-sided paired p = {test.pvalue:.3g}")
        if {"grids", "saliency"} <= set(wide.columns):
            pair = wide[["grids", "saliency"]].dropna()
            worse = pair[pair["grids"] > pair["saliency"] + 1e-9]
            print(f"grids at or below its saliency start on {len(pair) - len(worse)} of {len(pair)} targets"
                  + (f"; above on {', '.join('/'.join(k) for k in worse.index)}" if len(worse) else ""))
        print("mean over the targets each method ran on (SAGE and LIME: per-gene targets only):")
        print(wide.mean().round(2).to_string())
        off = at_L.groupby("method")["off_target_pct"].median().round(3)
        print("median off-target Rel Δ % per method: " + ", ".join(f"{k} {v}" for k, v in off.items()))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
