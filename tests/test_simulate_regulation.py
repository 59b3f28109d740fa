"""The planted regulatory model behaves as the truth tables claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grids.simulate import build_regulatory_model, make_params


def _latent_cells(model, cell_type: int, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, len(model.cres))) < model.access[:, cell_type]


def _mean_expression(model, z: np.ndarray, gene: int) -> float:
    return float(model.expected_expression(z)[:, gene].mean())


def _group_drops(model, members: pd.DataFrame, n_cells: int = 400) -> tuple[list[float], float]:
    """Natural-scale mean drops of the gene when each member alone, or all, are closed, in the
    cell type where the members are most open."""
    rows = members.index.to_numpy()
    k = int(np.argmax(model.access[rows].mean(axis=0)))
    z = _latent_cells(model, k, n_cells)
    g = list(model.genes["gene"]).index(members["gene"].iloc[0])
    intact = _mean_expression(model, z, g)
    singles = []
    for row in rows:
        single = z.copy()
        single[:, row] = False
        singles.append(intact - _mean_expression(model, single, g))
    removed = z.copy()
    removed[:, rows] = False
    return singles, intact - _mean_expression(model, removed, g)


def test_or_groups_any_member_suffices_all_removed_drops(demo_model):
    """OR group: a member alone costs little (another one is often open); all together a lot."""
    checked = 0
    for group, members in demo_model.cres[demo_model.cres.logic == "or"].groupby("group"):
        singles, all_drop = _group_drops(demo_model, members)
        assert all_drop > 0, group
        assert max(singles) < 0.6 * all_drop, (group, singles, all_drop)
        assert sum(singles) < all_drop, (group, singles, all_drop)  # sub-additive: redundancy
        checked += 1
    assert checked >= 20


def test_additive_pairs_add_and_and_pairs_need_both(demo_model):
    """Controls: an additive pair's joint drop is the sum of its single drops (natural scale);
    an AND pair's single drops each equal its joint drop."""
    cres = demo_model.cres
    additive = list(cres[cres.logic == "additive"].groupby("group"))
    both = list(cres[cres.logic == "and"].groupby("group"))
    assert len(additive) >= 10 and len(both) >= 5
    for group, members in additive:
        singles, all_drop = _group_drops(demo_model, members)
        assert np.isclose(sum(singles), all_drop, rtol=1e-9), (group, singles, all_drop)
    for group, members in both:
        singles, all_drop = _group_drops(demo_model, members)
        assert np.allclose(singles, all_drop, rtol=1e-9), (group, singles, all_drop)


def test_links_carry_the_logic_of_grouped_links(demo_model):
    links = demo_model.links()
    grouped = links[links["group"] != ""]
    assert set(grouped["logic"]) == {"or", "and", "additive"}
    assert (links.loc[links["group"] == "", "logic"] == "").all()
    suffix = grouped["group"].str.extract(r"_([RNA])1$")[0]
    assert (suffix.map({"R": "or", "N": "and", "A": "additive"}) == grouped["logic"]).all()
    assert (grouped.loc[grouped["logic"] == "or", "kind"] == "redundant").all()
    assert (grouped.loc[grouped["logic"] != "or", "kind"] == "enhancer").all()
    assert list(links.columns[:8]) == ["gene", "chrom", "start", "end", "kind", "group", "cell_types", "logic"]


def test_independent_regime_opens_members_at_moderate_rates_and_coaccessible_often():
    independent = build_regulatory_model(make_params("demo", seed=0))
    coaccessible = build_regulatory_model(make_params("demo", seed=0, redundancy_regime="coaccessible"))
    for model, low, high in ((independent, 0.4, 0.7), (coaccessible, 0.8, 0.95)):
        members = model.cres.index[model.cres["group"] != ""].to_numpy()
        on = model.access[members][model.access[members] > 0.1]
        assert on.min() >= low and on.max() <= high


def test_member_correlation_follows_the_setting():
    """Members reuse their leader's uniform draw in a share rho of cells: indicator correlation ~ rho."""
    from grids.simulate.sample import _couple_group_members

    rng = np.random.default_rng(0)
    leader = np.array([0, 0, -1])
    for rho in (0.0, 0.5, 0.9):
        draws = _couple_group_members(rng, rng.random((20000, 3)).astype(np.float32), leader, rho) \
            if rho > 0 else rng.random((20000, 3)).astype(np.float32)
        z = draws < 0.5
        r = np.corrcoef(z[:, 0], z[:, 1])[0, 1]
        assert abs(r - rho) < 0.03, (rho, r)
        assert abs(np.corrcoef(z[:, 0], z[:, 2])[0, 1]) < 0.03


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


@pytest.mark.parametrize("config", ["config/config.yaml", "config/second/config.yaml",
                                    "config/demo_full/config.yaml"])
def test_targets_tsv_lists_markers_with_a_planted_or_group(config):
    """config/targets.tsv (and the second and full-size configurations') are the simulator's
    redundancy targets: markers of their cell type with an OR group active there
    (grids.simulate.redundancy_targets)."""
    from pathlib import Path

    import yaml

    from grids.simulate import redundancy_targets

    repo = Path(__file__).resolve().parents[1]
    default = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    chosen = yaml.safe_load((repo / config).read_text())
    simulate = {**default["simulate"], **chosen.get("simulate", {})}
    model = build_regulatory_model(make_params(simulate["preset"], simulate["seed"], **simulate["overrides"]))
    targets = pd.read_csv(repo / chosen["targets"], sep="\t")
    expected = redundancy_targets(model)
    assert targets.to_dict("list") == expected.to_dict("list")
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
