"""The GRIDS explainer's pieces against dense references and brute force (issue 7)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from grids.explain.core import BASELINE_FLOOR, SubsetObjective
from grids.explain.search import GridsSettings, grids_search
from grids.surrogate.model import Surrogate, SurrogateConfig

SIZES = [7, 5, 8]


def _model(n_genes: int = 6, seed: int = 0, links: int = 12, cis_units: int = 0) -> Surrogate:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_peaks = sum(SIZES)
    pairs = rng.choice(n_peaks * n_genes, size=links, replace=False)
    peak, gene = pairs // n_genes, pairs % n_genes
    model = Surrogate(SurrogateConfig(n_peaks=n_peaks, n_genes=n_genes, chrom_sizes=SIZES, n_cell_types=1,
                                      n_cis_links=links, rna_hidden=[8, 8], cis_units=cis_units))
    model.set_cis_links(peak, gene, weight=rng.normal(0.5, 0.3, links), bias=rng.normal(size=n_genes))
    with torch.no_grad():
        model.gene_mean.copy_(torch.from_numpy(rng.uniform(1.0, 2.0, n_genes)))
        model.gene_scale.copy_(torch.from_numpy(rng.uniform(0.2, 0.5, n_genes)))
        # Saturating units spread over their bend, so gains and swaps cross the nonlinearity.
        model.cis_unit_weight.copy_(torch.from_numpy(rng.uniform(0.2, 1.2, (links, cis_units))))
        model.cis_unit_bias.copy_(torch.from_numpy(rng.uniform(-0.5, 0.3, (n_genes, cis_units))))
        model.cis_unit_out.copy_(torch.from_numpy(rng.normal(0.8, 0.4, (n_genes, cis_units))))
    return model.double().eval()


def _dense_cis(model: Surrogate, z: torch.Tensor) -> torch.Tensor:
    """The cis path's contribution through dense peaks x genes matrices, one per sum."""
    peak, gene = model.cis_links()
    weights = model.cis_link_weights()
    state = []
    for u in range(model.config.cis_state_width):
        W = torch.zeros(model.config.n_peaks, model.config.n_genes, dtype=z.dtype)
        W = W.index_put((peak, gene), weights[:, u])
        state.append(z @ W)
    return model.cis_from_state(torch.stack(state, -1))


def _cells(n_cells: int, seed: int, density: float = 0.5) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_cells, sum(SIZES))) < density).astype(np.float64))


def _dense_loss(model: Surrogate, z: torch.Tensor, baseline: torch.Tensor, genes: list[int], beta: float):
    """The objective through the dense embedding layout: E[j, 0] + z_j (E[j, 1] - E[j, 0])."""
    emb = model.embed_closed.unsqueeze(0) + z.unsqueeze(-1) * model.embedding_delta.unsqueeze(0)
    pooled = torch.zeros(z.shape[0], len(SIZES), model.config.d_h, dtype=z.dtype).index_add(1, model.chrom_of_peak, emb)
    predicted = model.genes_from_pooled(pooled, _dense_cis(model, z)).clamp_min(0.0)
    ratio = predicted / baseline
    other = [g for g in range(model.config.n_genes) if g not in genes]
    per_cell = ratio[:, genes].square().sum(1) + beta / len(other) * (ratio[:, other] - 1).square().sum(1)
    return per_cell.mean()


@pytest.mark.parametrize("cis_units", [0, 2])
@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_fast_gains_equal_autograd_through_the_dense_embedding(beta, cis_units):
    model = _model(cis_units=cis_units)
    objective = SubsetObjective(model, np.array([1, 4]), beta=beta)
    X = _cells(9, seed=1)
    cells = objective.cells(X)
    subset = np.array([2, 8, 15])
    fast = objective.gains(cells, subset)
    x = torch.from_numpy(X.toarray())
    keep = torch.ones(sum(SIZES), dtype=torch.float64)
    keep[subset] = 0
    baseline = _dense_loss_baseline(model, x)
    e = torch.zeros(sum(SIZES), dtype=torch.float64, requires_grad=True)
    loss = _dense_loss(model, x * keep - x * e, baseline, [1, 4], beta)
    (reference,) = torch.autograd.grad(loss, e)
    assert np.allclose(fast, reference.numpy(), atol=1e-10)
    assert np.allclose(fast[np.asarray(X.getnnz(0)) == 0], 0.0)  # never-open peaks have no gain
    # The objective itself agrees with the dense layout.
    assert np.isclose(objective.loss(cells, subset),
                      float(_dense_loss(model, x * keep, baseline, [1, 4], beta).detach()))


def _dense_loss_baseline(model: Surrogate, x: torch.Tensor) -> torch.Tensor:
    emb = model.embed_closed.unsqueeze(0) + x.unsqueeze(-1) * model.embedding_delta.unsqueeze(0)
    pooled = torch.zeros(x.shape[0], len(SIZES), model.config.d_h, dtype=x.dtype).index_add(1, model.chrom_of_peak, emb)
    return model.genes_from_pooled(pooled, _dense_cis(model, x)).clamp_min(BASELINE_FLOOR).detach()


@pytest.mark.parametrize("cis_units", [0, 2])
def test_swap_losses_are_exact_and_a_step_never_increases_the_batch_objective(cis_units):
    model = _model(seed=3, cis_units=cis_units)
    objective = SubsetObjective(model, np.array([0]), beta=0.2)
    cells = objective.cells(_cells(11, seed=4))
    subset = np.array([1, 6, 12])
    candidates = np.array([0, 3, 19, 9])
    losses = objective.swap_losses(cells, subset, 1, candidates)
    assert np.isclose(losses[0], objective.loss(cells, subset))
    for i, j in enumerate(candidates):
        swapped = subset.copy()
        swapped[1] = j
        assert np.isclose(losses[i + 1], objective.loss(cells, swapped))
    # A single GRIDS step on a batch that is all the cells: the objective does not rise.
    one_step = grids_search(objective, cells, GridsSettings(L=3, k=4, steps=1, batch_size=64, seed=0, init="random"))
    start = np.sort(np.random.default_rng(0).choice(np.flatnonzero(cells.X.getnnz(0) > 0), 3, replace=False))
    assert one_step.curve["batch"][0] <= objective.loss(cells, start) + 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grids_finds_the_brute_force_best_subset_of_a_tiny_surrogate(seed):
    model = _model(n_genes=4, seed=seed, links=16)
    objective = SubsetObjective(model, np.array([2]))
    cells = objective.cells(_cells(30, seed=10 + seed, density=0.4))
    open_peaks = np.flatnonzero(cells.X.getnnz(0) > 0)
    best = min(itertools.combinations(open_peaks, 3), key=lambda r: objective.loss(cells, np.array(r)))
    found = grids_search(objective, cells, GridsSettings(L=3, k=8, steps=60, batch_size=64, seed=seed))
    assert np.isclose(found.train_loss, objective.loss(cells, np.array(best)))
    assert sorted(found.peaks.tolist()) == sorted(best)
    assert (np.diff(found.scores) <= 1e-12).all()  # ranked, most important first


def test_L_larger_than_the_open_peaks_is_an_error():
    model = _model()
    objective = SubsetObjective(model, np.array([0]))
    dense = np.zeros((4, sum(SIZES)))
    dense[0, 3] = dense[1, 5] = 1
    cells = objective.cells(sp.csr_matrix(dense))
    with pytest.raises(ValueError, match="L = 3 is larger than the 2 peaks open"):
        grids_search(objective, cells, GridsSettings(L=3))


@pytest.mark.parametrize("cis_units", [0, 2])
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_weighted_removal_equals_the_models_cis_term(beta, cis_units):
    model = _model(seed=5, cis_units=cis_units)
    objective = SubsetObjective(model, np.array([2, 3]), beta=beta)
    cells = objective.cells(_cells(6, seed=8))
    entry = torch.rand(cells.batch.peaks.numel(), dtype=torch.float64)
    pooled, cis = objective.weighted_removal(cells, entry)
    amounts = torch.zeros(6, sum(SIZES), dtype=torch.float64)
    amounts[cells.batch.cells, cells.batch.peaks] = entry  # each open entry's removal amount
    output = torch.as_tensor(objective.output)
    # The removed amount of every cis sum, gene-major: what weighted_removal must take away.
    peak, gene = model.cis_links()
    width = model.config.cis_state_width
    with torch.no_grad():
        removed = torch.stack([amounts @ torch.zeros(sum(SIZES), model.config.n_genes, dtype=torch.float64).index_put(
            (peak, gene), model.cis_link_weights()[:, u]) for u in range(width)], -1)
    assert torch.allclose(cis, removed[:, output].reshape(6, -1), atol=1e-12)
    assert torch.allclose(pooled, model.open_sums(cells.batch, entry))
    # and the unperturbed cis state of the cells is the model's
    assert torch.allclose(cells.cis, model.cis_state(cells.batch)[:, output].reshape(6, -1).detach(), atol=1e-12)
    assert torch.allclose(model.cis_from_state(cells.cis.view(6, len(output), width), objective.decode_genes),
                          model.cis(cells.batch)[:, output].detach(), atol=1e-12)


def _or_pair_model() -> tuple[Surrogate, sp.csr_matrix]:
    """Gene 0 = 0.5 + 0.3 x2 + 0.3 x3 + 2 OR(x0, x1), the deep path silenced; x0 and x1 open
    together (the case the paper's single swaps cannot see: closing one member changes nothing)."""
    n_peaks = sum(SIZES)
    peak, gene = np.array([0, 1, 2, 3]), np.zeros(4, np.int64)
    model = Surrogate(SurrogateConfig(n_peaks=n_peaks, n_genes=2, chrom_sizes=SIZES, n_cell_types=1, n_cis_links=4,
                                      rna_hidden=[8, 8], cis_units=1))
    model.set_cis_links(peak, gene, weight=np.array([0.0, 0.0, 0.3, 0.3]), bias=np.array([0.5, 1.0]))
    with torch.no_grad():
        last = model.rna_decoder[-1]
        last.weight.zero_()
        last.bias.zero_()
        model.gene_mean.zero_()
        model.gene_scale.fill_(1.0)
        model.cis_unit_weight.copy_(torch.tensor([[1.5], [1.5], [0.0], [0.0]]))
        model.cis_unit_bias.fill_(-0.25)
        model.cis_unit_out.copy_(torch.tensor([[2.0], [0.0]]))
    rng = np.random.default_rng(0)
    X = (rng.random((120, n_peaks)) < 0.5).astype(np.float64)
    X[:, 1] = X[:, 0]
    return model.double().eval(), sp.csr_matrix(X)


def test_pair_moves_find_an_or_pair_that_single_swaps_miss():
    from grids.explain.search import sufficiency_scores

    model, X = _or_pair_model()
    objective = SubsetObjective(model, np.array([0]))
    train, validation = objective.cells(X[:80]), objective.cells(X[80:])
    window = np.arange(6)
    base = dict(L=2, k=8, steps=60, batch_size=64, seed=0)
    single = grids_search(objective, train, GridsSettings(**base, moves="single"), validation=validation, window=window)
    pairs = grids_search(objective, train, GridsSettings(**base, moves="pairs"), validation=validation, window=window)
    assert sorted(single.peaks.tolist()) == [2, 3]  # saliency's start, and no single swap helps
    assert sorted(pairs.peaks.tolist()) == [0, 1]
    assert pairs.train_loss < single.train_loss
    assert "pair" in pairs.curve["move"]
    # Sufficiency ranks the OR members first: either keeps the gene on when the window is closed.
    scores = sufficiency_scores(objective, train, window)
    assert set(window[np.argsort(-scores)[:2]]) == {0, 1}
    # Validation never rises along the search.
    assert (np.diff(pairs.curve["validation"]) <= 1e-12).all()


def test_relative_change_is_the_evaluations_rel_delta():
    """The search's final validation check uses the evaluation's Rel Δ (natural scale, change of
    the cell mean), computed here from the explainer's state and there from plain predictions."""
    from grids.evaluate.drop import drop_summary, remove_peaks

    model = _model(seed=2, cis_units=2)
    objective = SubsetObjective(model, np.array([1, 4]))
    X = _cells(12, seed=3)
    cells = objective.cells(X)
    subset = np.array([0, 5, 9])
    chrom = model.chrom_of_peak.numpy()

    def predict(Z):
        from grids.surrogate.model import csr_to_batch

        with torch.no_grad():
            return model(csr_to_batch(sp.csr_matrix(Z), chrom, len(SIZES))).numpy()[:, [1, 4]]

    expected = drop_summary(predict(X), predict(remove_peaks(sp.csr_matrix(X), subset)))[1] / 100
    assert np.isclose(objective.relative_change(cells, subset), expected, rtol=1e-9)


@pytest.mark.parametrize("cis_units", [0, 2])
def test_sage_and_limes_local_prediction_equals_reencoding_the_full_input(cis_units):
    """SAGE and LIME see only the candidate peaks plus the cell: the model output of a row must
    equal encoding the full input with those candidates set (closed, kept, or opened)."""
    from grids.explain.baselines import _local_target_prediction

    model = _model(seed=3, cis_units=cis_units)
    objective = SubsetObjective(model, np.array([1, 4]))
    X = _cells(5, seed=2)
    cells = objective.cells(X)
    candidates = np.array([0, 3, 4, 7, sum(SIZES) - 1])
    rng = np.random.default_rng(0)
    states = (rng.random((12, len(candidates))) < 0.5).astype(np.float64)
    which = rng.integers(0, 5, 12)
    local = _local_target_prediction(objective, cells, candidates)(np.hstack([states, which[:, None]]))
    full = X[which].toarray()
    full[:, candidates] = states
    with torch.no_grad():
        encoded = objective.cells(sp.csr_matrix(full))
        expected = objective.predict(encoded.pooled, encoded.cis)[:, objective.target_cols].sum(1).numpy()
    np.testing.assert_allclose(local, expected, rtol=1e-10, atol=1e-12)


def test_sufficient_order_is_exact_within_its_budget_and_subsamples_cells_beyond_it():
    from grids.explain.search import open_candidates, sufficiency_scores, sufficient_order

    model = _model(seed=4, cis_units=2)
    objective = SubsetObjective(model, np.array([0, 2]))
    cells = objective.cells(_cells(40, seed=6))
    window = np.arange(0, sum(SIZES), 2)
    candidates = open_candidates(cells)
    in_window = np.intersect1d(window, candidates)
    exact = in_window[np.argsort(-sufficiency_scores(objective, cells, in_window), kind="stable")]
    np.testing.assert_array_equal(sufficient_order(objective, cells, window), exact)
    # Over budget: scored on a seeded subsample of the cells, still every window candidate once.
    small = sufficient_order(objective, cells, window, max_rows=len(in_window) * 10, seed=1)
    assert sorted(small.tolist()) == sorted(exact.tolist())
    np.testing.assert_array_equal(small, sufficient_order(objective, cells, window,
                                                          max_rows=len(in_window) * 10, seed=1))


def test_cis_state_fast_inference_path_equals_the_per_link_expansion():
    """Without autograd on the CPU the cis state is one sparse product (Surrogate.cis_matrix, which
    the explainer also uses); with autograd, the per-link expansion. Both must give the same sums."""
    from grids.surrogate.model import csr_to_batch

    model = _model(seed=7, cis_units=2)
    X = _cells(9, seed=3)
    batch = csr_to_batch(sp.csr_matrix(X, dtype=np.float32), model.chrom_of_peak.numpy(), model.n_chroms)
    expanded = model.cis_state(batch).detach()
    with torch.no_grad():
        fast = model.cis_state(batch)
    torch.testing.assert_close(fast, expanded, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose((X @ model.cis_matrix()).toarray(), expanded.reshape(9, -1).numpy(), rtol=1e-12)


@pytest.mark.parametrize("cis_units", [0, 2])
def test_subset_and_put_back_losses_touch_only_changed_cells_and_stay_exact(cis_units):
    """subset_losses and put_back_losses decode only the cells a row changes against a reference
    subset; every value must still equal the objective of that subset on all cells."""
    model = _model(seed=5, cis_units=cis_units)
    objective = SubsetObjective(model, np.array([1, 3]), beta=0.3)
    cells = objective.cells(_cells(13, seed=6, density=0.3))
    rows = np.array([[0, 4, 9, 15], [0, 4, 9, 2], [0, 4, 11, 19], [1, 5, 12, 18], [0, 4, 9, 15]])
    np.testing.assert_allclose(objective.subset_losses(cells, rows), [objective.loss(cells, r) for r in rows],
                               rtol=1e-10)
    subset = np.array([2, 7, 13, 17])
    expected = [objective.loss(cells, subset)] + [objective.loss(cells, np.delete(subset, i)) for i in range(4)]
    np.testing.assert_allclose(objective.put_back_losses(cells, subset), expected, rtol=1e-10)


def test_many_targets_in_lockstep_equal_one_at_a_time():
    """drive answers several targets' questions together (one decoder pass per kind of
    question); each target's selection and objective equal its own grids_search."""
    from grids.explain.search import drive, grids_steps

    model = _model(n_genes=6, seed=7, links=18, cis_units=2)
    X, X_val = _cells(40, seed=8, density=0.4), _cells(12, seed=9, density=0.4)
    targets = [[0], [2], [4], [1, 5]]
    settings = [GridsSettings(L=L, k=6, steps=40, batch_size=16, seed=3) for L in (2, 3)]
    shared: dict = {}
    planned, alone = [], []
    window = np.arange(10)
    for genes in targets:
        objective = SubsetObjective(model, np.array(genes))
        train = objective.cells(X, shared=shared.get("train"))
        validation = objective.cells(X_val, shared=shared.get("val"))
        shared.update(train=train, val=validation)
        for setting in settings:
            planned.append(grids_steps(objective, train, setting, validation=validation, window=window))
            alone.append(grids_search(objective, train, setting, validation=validation, window=window))
    together = drive(planned)
    assert len(together) == len(alone) == 8
    for batched, single in zip(together, alone):
        assert batched.peaks.tolist() == single.peaks.tolist()
        assert np.isclose(batched.train_loss, single.train_loss, rtol=1e-9)
        assert batched.curve["move"] == single.curve["move"]
    # The targets stopped on their own: not every search ran the same number of steps.
    assert len({len(s.curve["step"]) for s in together}) > 1
