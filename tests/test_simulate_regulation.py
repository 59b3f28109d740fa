"""The planted regulatory model behaves as the truth tables claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grids.simulate import build_regulatory_model, make_params
from grids.simulate.model import ACTIVE_THRESHOLD


def _latent_cells(model, cell_type: int, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, len(model.cres))) < model.access[:, cell_type]


def _mean_expression(model, z: np.ndarray, gene: int) -> float:
    return float(model.expected_expression(z)[:, gene].mean())


def test_redundant_groups_any_member_suffices_all_removed_drops(demo_model):
    """Removing one member of a redundant group barely moves the gene; removing all drops it."""
    cres, genes = demo_model.cres, demo_model.genes
    gene_index = {g: i for i, g in enumerate(genes["gene"])}
    checked = 0
    for group, members in cres[cres.kind == "redundant"].groupby("group"):
        rows = members.index.to_numpy()
        access = demo_model.access[rows]
        # The cell type where the members are most open together.
        k = int(np.argmax(1 - np.prod(1 - access, axis=0)))
        if (access[:, k] >= ACTIVE_THRESHOLD).sum() < 2:
            continue
        z = _latent_cells(demo_model, k, 400)
        g = gene_index[members["gene"].iloc[0]]
        intact = _mean_expression(demo_model, z, g)
        singles = []
        for row in rows:
            single = z.copy()
            single[:, row] = False
            singles.append(1 - _mean_expression(demo_model, single, g) / intact)
        removed = z.copy()
        removed[:, rows] = False
        all_drop = 1 - _mean_expression(demo_model, removed, g) / intact
        assert all_drop > 0.5, (group, all_drop)
        assert max(singles) < 0.25 * all_drop, (group, singles, all_drop)
        assert sum(singles) < all_drop, (group, singles, all_drop)  # sub-additive: redundancy
        checked += 1
    assert checked >= 10


def test_direct_links_matter_and_orphans_do_not(demo_model):
    cres = demo_model.cres
    z = _latent_cells(demo_model, 0, 300)
    base = demo_model.expected_expression(z)
    promoters = cres[(cres.kind == "promoter")].index.to_numpy()
    closed = z.copy()
    closed[:, promoters] = False
    drop = 1 - demo_model.expected_expression(closed).mean(0) / base.mean(0)
    assert np.median(drop) > 0.5
    orphans = cres[cres.kind == "orphan"].index.to_numpy()
    closed = z.copy()
    closed[:, orphans] = False
    assert np.allclose(demo_model.expected_expression(closed), base)


def test_indirect_links_act_through_the_tf(demo_model):
    """Closing a TF's CREs lowers its target genes, which sit elsewhere in the genome."""
    links = demo_model.links()
    genes = demo_model.genes
    gene_index = {g: i for i, g in enumerate(genes["gene"])}
    indirect = links[links.kind == "indirect"]
    z = _latent_cells(demo_model, 0, 300)
    base = demo_model.expected_expression(z)
    cre_row = {c: i for i, c in enumerate(demo_model.cres["cre_id"])}
    drops = []
    for tf, block in indirect.groupby("via_tf"):
        closed = z.copy()
        closed[:, [cre_row[c] for c in block["cre_id"].unique()]] = False
        after = demo_model.expected_expression(closed)
        targets = [gene_index[g] for g in block["gene"].unique()]
        drops.extend(1 - after[:, targets].mean(0) / base[:, targets].mean(0))
        assert after[:, gene_index[tf]].mean() < base[:, gene_index[tf]].mean()
    assert len(drops) > 10 and np.median(drops) > 0.2


def test_markers_are_highest_in_their_cell_type(demo_model):
    genes = demo_model.genes.set_index("gene")
    order = list(demo_model.genes["gene"])
    means = np.stack([demo_model.expected_expression(_latent_cells(demo_model, k, 200)).mean(0)
                      for k in range(len(demo_model.cell_types))])
    for k, cell_type in enumerate(demo_model.cell_types):
        for gene in demo_model.markers[cell_type]:
            column = means[:, order.index(gene)]
            assert np.argmax(column) == k
            assert column[k] > 2 * np.delete(column, k).max(), (cell_type, gene, column)
        assert (genes.loc[demo_model.markers[cell_type], "marker_of"] == cell_type).all()


def test_targets_tsv_matches_the_simulators_markers():
    """config/targets.tsv lists markers of the demo's truth (seed 0)."""
    from pathlib import Path

    model = build_regulatory_model(make_params("demo", seed=0))
    targets = pd.read_csv(Path(__file__).resolve().parents[1] / "config" / "targets.tsv", sep="\t")
    assert set(targets["cell_type"]) == set(model.cell_types)
    for row in targets.itertuples():
        assert row.gene in model.markers[row.cell_type]


def test_planted_cres_never_overlap(demo_model):
    for _, block in demo_model.cres.groupby("chrom"):
        assert (block["start"].to_numpy()[1:] >= block["end"].to_numpy()[:-1]).all()


@pytest.mark.parametrize("bad", [dict(n_cell_types=1), dict(frip_min=0.7, frip_max=0.5), dict(n_genes=5)])
def test_invalid_simulation_parameters_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        make_params("demo", **bad)


def test_unknown_preset_and_override_are_named():
    with pytest.raises(ValueError, match="simulate.preset"):
        make_params("huge")
    with pytest.raises(ValueError, match="n_cels"):
        make_params("demo", n_cels=3)
