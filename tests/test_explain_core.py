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


def _model(n_genes: int = 6, seed: int = 0, links: int = 12) -> Surrogate:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_peaks = sum(SIZES)
    pairs = rng.choice(n_peaks * n_genes, size=links, replace=False)
    peak, gene = pairs // n_genes, pairs % n_genes
    model = Surrogate(SurrogateConfig(n_peaks=n_peaks, n_genes=n_genes, chrom_sizes=SIZES, n_cell_types=1,
                                      n_cis_links=links, rna_hidden=[8, 8]))
    model.set_cis_links(peak, gene, weight=rng.normal(0.5, 0.3, links), bias=rng.normal(size=n_genes))
    with torch.no_grad():
        model.gene_mean.copy_(torch.from_numpy(rng.uniform(1.0, 2.0, n_genes)))
        model.gene_scale.copy_(torch.from_numpy(rng.uniform(0.2, 0.5, n_genes)))
    return model.double().eval()


def _cells(n_cells: int, seed: int, density: float = 0.5) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_cells, sum(SIZES))) < density).astype(np.float64))


def _dense_loss(model: Surrogate, z: torch.Tensor, baseline: torch.Tensor, genes: list[int], beta: float):
    """The objective through the dense embedding layout: E[j, 0] + z_j (E[j, 1] - E[j, 0])."""
    emb = model.embed_closed.unsqueeze(0) + z.unsqueeze(-1) * model.embedding_delta.unsqueeze(0)
    pooled = torch.zeros(z.shape[0], len(SIZES), model.config.d_h, dtype=z.dtype).index_add(1, model.chrom_of_peak, emb)
    peak, gene = model.cis_links()
    W = torch.zeros(model.config.n_peaks, model.config.n_genes, dtype=z.dtype)
    W[peak, gene] = model.cis_weight
    predicted = model.genes_from_pooled(pooled, z @ W + model.cis_bias).clamp_min(0.0)
    ratio = predicted / baseline
    other = [g for g in range(model.config.n_genes) if g not in genes]
    per_cell = ratio[:, genes].square().sum(1) + beta / len(other) * (ratio[:, other] - 1).square().sum(1)
    return per_cell.mean()


@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_fast_gains_equal_autograd_through_the_dense_embedding(beta):
    model = _model()
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
    assert np.isclose(objective.loss(cells, subset), float(_dense_loss(model, x * keep, baseline, [1, 4], beta).detach()))


def _dense_loss_baseline(model: Surrogate, x: torch.Tensor) -> torch.Tensor:
    emb = model.embed_closed.unsqueeze(0) + x.unsqueeze(-1) * model.embedding_delta.unsqueeze(0)
    pooled = torch.zeros(x.shape[0], len(SIZES), model.config.d_h, dtype=x.dtype).index_add(1, model.chrom_of_peak, emb)
    peak, gene = model.cis_links()
    W = torch.zeros(model.config.n_peaks, model.config.n_genes, dtype=x.dtype)
    W[peak, gene] = model.cis_weight
    return model.genes_from_pooled(pooled, x @ W + model.cis_bias).clamp_min(BASELINE_FLOOR).detach()


def test_swap_losses_are_exact_and_a_step_never_increases_the_batch_objective():
    model = _model(seed=3)
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


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_weighted_removal_equals_the_models_cis_term(beta):
    model = _model(seed=5)
    objective = SubsetObjective(model, np.array([2, 3]), beta=beta)
    cells = objective.cells(_cells(6, seed=8))
    entry = torch.rand(cells.batch.peaks.numel(), dtype=torch.float64)
    pooled, cis = objective.weighted_removal(cells, entry)
    amounts = torch.zeros(6, sum(SIZES), dtype=torch.float64)
    amounts[cells.batch.cells, cells.batch.peaks] = entry  # each open entry's removal amount
    peak, gene = model.cis_links()
    W = torch.zeros(sum(SIZES), model.config.n_genes, dtype=torch.float64)
    W[peak, gene] = model.cis_weight.detach()
    expected = (amounts @ W)[:, torch.as_tensor(objective.output)]
    assert torch.allclose(cis, expected, atol=1e-12)
    assert torch.allclose(pooled, model.open_sums(cells.batch, entry))
    # and the unperturbed cis term of the cells is the model's
    assert torch.allclose(cells.cis, model.cis(cells.batch)[:, torch.as_tensor(objective.output)], atol=1e-12)
