"""The surrogate's sparse encoder against a dense reference, and the training mechanics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from grids.surrogate import (
    PairedData,
    Surrogate,
    SurrogateConfig,
    TrainingError,
    TrainSettings,
    csr_to_batch,
    dense_pooled_reference,
    predict_rows,
    resolve_device,
    train_surrogate,
)
from grids.surrogate.model import focal_bce

SIZES = [30, 1, 45, 24]  # includes a one-peak chromosome


def _random_binary(n_cells: int, n_peaks: int, density: float, seed: int) -> sp.csr_matrix:
    X = sp.random(n_cells, n_peaks, density=density, random_state=seed, format="csr", dtype=np.float64)
    X.data[:] = 1.0
    X = X.tolil()
    X[3] = 0  # a cell with no open peak at all
    return X.tocsr()


def test_sparse_pooling_equals_dense_reference_values_and_gradients():
    torch.manual_seed(0)
    config = SurrogateConfig(n_peaks=sum(SIZES), n_genes=12, chrom_sizes=SIZES, n_cell_types=2)
    model = Surrogate(config).double()
    X = _random_binary(9, sum(SIZES), 0.15, seed=1)
    chrom = np.repeat(np.arange(len(SIZES)), SIZES)
    sparse = model.pooled(csr_to_batch(X, chrom, len(SIZES)))
    dense = dense_pooled_reference(model, torch.from_numpy(X.toarray()))
    assert torch.allclose(sparse, dense, atol=1e-10)
    # Gradients of the same downstream loss reach E[:, 0] and E[:, 1] identically.
    weight = torch.randn_like(sparse)
    grads = []
    for pooled in (sparse, dense):
        model.zero_grad()
        (pooled * weight).sum().backward(retain_graph=True)
        grads.append((model.embed_closed.grad.clone(), model.embed_open.grad.clone()))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)
    # And through the whole surrogate F(x).
    model.eval()
    out_sparse = model.genes_from_pooled(sparse)
    out_dense = model.genes_from_pooled(dense)
    assert torch.allclose(out_sparse, out_dense, atol=1e-8)


def test_pooling_is_linear_in_open_peaks():
    """s_c(x) = b_c + sum of D_j over open peaks j of c (docs/architecture.md §4)."""
    torch.manual_seed(1)
    config = SurrogateConfig(n_peaks=sum(SIZES), n_genes=5, chrom_sizes=SIZES, n_cell_types=1)
    model = Surrogate(config).double()
    chrom = np.repeat(np.arange(len(SIZES)), SIZES)
    X = _random_binary(4, sum(SIZES), 0.3, seed=2)
    pooled = model.pooled(csr_to_batch(X, chrom, len(SIZES)))
    for i in range(4):
        open_peaks = X[i].indices
        expected = model.pooled_base().clone()
        for j in open_peaks:
            expected[chrom[j]] += model.embedding_delta[j]
        assert torch.allclose(pooled[i], expected, atol=1e-10)


def test_sampled_reconstruction_loss_estimates_the_full_loss():
    torch.manual_seed(2)
    config = SurrogateConfig(n_peaks=sum(SIZES), n_genes=4, chrom_sizes=SIZES, n_cell_types=1)
    model = Surrogate(config).double().eval()
    X = _random_binary(6, sum(SIZES), 0.2, seed=5)
    target = csr_to_batch(X, np.repeat(np.arange(len(SIZES)), SIZES), len(SIZES))
    h_a = torch.randn(6, config.latent_dim, dtype=torch.float64)
    with torch.no_grad():
        full = model.atac_reconstruction_loss(h_a, target, gamma=2.0, n_sampled=0)
        dense = torch.from_numpy(X.toarray())
        assert torch.isclose(full, focal_bce(model.decode_atac(h_a), dense, 2.0).mean())
        assert torch.isclose(model.atac_reconstruction_loss(h_a, target, 2.0, n_sampled=sum(SIZES)), full)
        estimates = torch.stack([model.atac_reconstruction_loss(h_a, target, 2.0, n_sampled=20) for _ in range(2000)])
        assert abs(float(estimates.mean() / full) - 1.0) < 0.01
        assert float(estimates.std()) > 0  # it is a sample


def _toy_data(n_cells: int = 120, seed: int = 0) -> PairedData:
    rng = np.random.default_rng(seed)
    X = (rng.random((n_cells, sum(SIZES))) < 0.2).astype(np.float32)
    cell_type = rng.integers(0, 2, n_cells)
    X[cell_type == 1, :10] = 1.0
    rna = np.log1p(X[:, :8] * 3 + cell_type[:, None] * 2 + rng.random((n_cells, 8))).astype(np.float32)
    split = np.array(["train"] * 80 + ["val"] * 20 + ["test"] * 20)
    chroms = np.repeat([f"chr{i + 1}" for i in range(len(SIZES))], SIZES)
    peaks = pd.DataFrame({"chrom": chroms, "start": np.arange(sum(SIZES)) * 1000,
                          "end": np.arange(sum(SIZES)) * 1000 + 500})
    return PairedData(atac=sp.csr_matrix(X), rna=rna, cell_type=cell_type, cell_types=["a", "b"], split=split,
                      peaks=peaks, genes=[f"g{i}" for i in range(8)], cells=[f"c{i}" for i in range(n_cells)],
                      umap=None)


def _toy_links(data: PairedData) -> tuple[np.ndarray, np.ndarray]:
    """Gene g is linked to peaks g .. g+4 (the toy genes are driven by peaks 0..7)."""
    peak = np.concatenate([np.arange(g, g + 5) for g in range(8)])
    return peak, np.repeat(np.arange(8), 5)


def test_cis_term_equals_dense_product_values_and_gradients():
    torch.manual_seed(0)
    n_peaks, n_genes = sum(SIZES), 6
    rng = np.random.default_rng(3)
    peak = rng.integers(0, n_peaks, 40)
    gene = rng.integers(0, n_genes, 40)
    keep = np.unique(peak * n_genes + gene, return_index=True)[1]  # one weight per pair
    peak, gene = peak[keep], gene[keep]
    config = SurrogateConfig(n_peaks=n_peaks, n_genes=n_genes, chrom_sizes=SIZES, n_cell_types=1,
                             n_cis_links=len(peak))
    model = Surrogate(config).double()
    weight = rng.normal(size=len(peak))
    bias = rng.normal(size=n_genes)
    model.set_cis_links(peak, gene, weight=weight, bias=bias)
    X = _random_binary(7, n_peaks, 0.3, seed=4)
    chrom = np.repeat(np.arange(len(SIZES)), SIZES)
    sparse = model.cis(csr_to_batch(X, chrom, len(SIZES)))
    W = torch.zeros(n_peaks, n_genes, dtype=torch.float64)
    W[peak, gene] = torch.from_numpy(weight)
    dense = torch.from_numpy(X.toarray()) @ W + torch.from_numpy(bias)
    assert torch.allclose(sparse, dense, atol=1e-12)
    assert torch.allclose(sparse[3], torch.from_numpy(bias))  # the all-closed cell gets the bias only
    # The gradient reaching each link's weight is sum_cells x_j * dL/dy_g.
    upstream = torch.randn_like(sparse)
    (sparse * upstream).sum().backward()
    link_peak, link_gene = model.cis_links()
    expected = (torch.from_numpy(X.toarray())[:, link_peak] * upstream[:, link_gene]).sum(0)
    assert torch.allclose(model.cis_weight.grad, expected, atol=1e-10)


def test_cis_links_match_a_brute_force_window():
    from grids.surrogate import cis_links

    peaks = pd.DataFrame({"chrom": ["chr1"] * 5 + ["chr2"] * 3,
                          "start": [0, 900, 2_000, 5_000, 9_000, 100, 4_000, 7_000],
                          "end": [200, 1_100, 2_400, 5_200, 9_400, 300, 4_400, 7_600]})
    tss = pd.DataFrame({"chrom": ["chr1", "chr2", "chr1", "chr3"], "position": [1_500, 5_000, 9_000, 10],
                        "gene": ["A", "B", "A", "C"]})  # A's second TSS is ignored; C is off the peaks
    peak, gene = cis_links(peaks, ["A", "B", "C", "D"], tss, window=1_300)
    got = sorted(zip(gene.tolist(), peak.tolist()))
    mid = (peaks["start"] + peaks["end"]) // 2
    expected = sorted((g, j) for g, (c, pos) in ((0, ("chr1", 1_500)), (1, ("chr2", 5_000)))
                      for j in range(len(peaks)) if peaks["chrom"][j] == c and abs(mid[j] - pos) <= 1_300)
    assert got == expected and got == [(0, 1), (0, 2), (1, 6)]


def test_cis_ridge_matches_scikit_learn():
    from sklearn.linear_model import Ridge

    from grids.surrogate import fit_cis_ridge

    data = _toy_data()
    peak, gene = _toy_links(data)
    train, val = data.rows("train"), data.rows("val")
    residual = data.rna[train] - data.rna[train].mean(0)
    fit = fit_cis_ridge(data, peak, gene, residual_train=residual, base_val=np.zeros((len(val), 8)),
                        observed_val=data.rna[val], alphas=(3.0,))
    for g in range(8):
        links = np.flatnonzero(gene == g)
        reference = Ridge(alpha=3.0).fit(data.atac[train][:, peak[links]].toarray(), residual[:, g])
        assert np.allclose(fit.weight[links], reference.coef_, atol=1e-5)
        assert np.isclose(fit.bias[g], reference.intercept_, atol=1e-5)


def test_cis_path_is_fitted_on_residuals_and_improves_validation(tmp_path):
    data = _toy_data()
    links = _toy_links(data)
    settings = TrainSettings(max_epochs=3, batch_size=32, device="cpu")
    model, info = train_surrogate(data, settings, checkpoint=tmp_path / "c.pt", cis=links, progress=False)
    assert info["cis"]["links"] == 40 and info["cis"]["alpha"] > 0
    assert model.cis_weight.abs().sum() > 0
    # Zeroing the cis path gives back the deep model alone, which predicts validation worse.
    from grids.surrogate.data import chrom_blocks
    from grids.surrogate.metrics import per_gene_pearson
    from grids.surrogate.train import _Batcher

    _, sizes, chrom = chrom_blocks(data.peaks["chrom"])
    batcher = _Batcher(data, chrom, len(sizes), torch.device("cpu"))
    val = data.rows("val")
    with_cis = predict_rows(model, batcher, val)
    with torch.no_grad():
        model.cis_weight.zero_()
        model.cis_bias.zero_()
    without = predict_rows(model, batcher, val)
    r_with = np.nanmedian(per_gene_pearson(with_cis, data.rna[val]))
    r_without = np.nanmedian(per_gene_pearson(without, data.rna[val]))
    assert r_with > r_without + 0.05


def test_training_is_deterministic_and_resumes(tmp_path):
    data = _toy_data()
    settings = TrainSettings(max_epochs=6, batch_size=32, patience=100, checkpoint_every=3, device="cpu")
    _, first = train_surrogate(data, settings, checkpoint=tmp_path / "a.pt", progress=False)
    _, second = train_surrogate(data, settings, checkpoint=tmp_path / "b.pt", progress=False)
    assert first["history"] == second["history"]
    # A rerun finds the finished checkpoint and does no further epoch.
    _, again = train_surrogate(data, settings, checkpoint=tmp_path / "a.pt", progress=False)
    assert again["history"] == first["history"] and again["steps"] == first["steps"]
    # A longer run resumes from it and ends exactly where an uninterrupted run ends.
    longer = TrainSettings(**{**vars(settings), "max_epochs": 8})
    _, resumed = train_surrogate(data, longer, checkpoint=tmp_path / "b.pt", progress=False)
    _, straight = train_surrogate(data, longer, checkpoint=tmp_path / "d.pt", progress=False)
    assert resumed["epochs"] == 8 and resumed["history"][:6] == first["history"]
    assert resumed["history"] == straight["history"]


def test_nan_loss_stops_with_step_and_terms(tmp_path):
    data = _toy_data()
    data.rna[0, 0] = np.nan
    with pytest.raises(TrainingError, match=r"non-finite loss at step \d+ .*predict="):
        train_surrogate(data, TrainSettings(max_epochs=2, batch_size=200, device="cpu"),
                        checkpoint=tmp_path / "c.pt", progress=False)


def test_cuda_requested_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(TrainingError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_saved_model_round_trip_and_mismatch_errors(tmp_path):
    import grids
    from grids.surrogate import ModelMismatchError, predict_rows, save_surrogate
    from grids.surrogate.data import chrom_blocks
    from grids.surrogate.train import _Batcher

    data = _toy_data()
    model, info = train_surrogate(data, TrainSettings(max_epochs=2, batch_size=32, device="cpu"),
                                  checkpoint=tmp_path / "c.pt", cis=_toy_links(data), progress=False)
    save_surrogate(model, data, info, path=tmp_path / "model.pt")
    loaded = grids.load_surrogate(tmp_path / "model.pt")
    _, sizes, chrom = chrom_blocks(data.peaks["chrom"])
    expected = predict_rows(model, _Batcher(data, chrom, len(sizes), "cpu"), np.arange(20))
    assert np.allclose(loaded.predict(data.atac[:20]), expected, atol=1e-6)
    assert (loaded.predict(data.atac[:20]) >= 0).all()
    # The loaded model's cis path: its sparse matrix (what the explainer reads) reproduces the cis term.
    W = loaded.model.cis_matrix()
    assert W.shape == (sum(SIZES), 8 * loaded.model.config.cis_state_width)
    assert W.nnz > 0
    with torch.no_grad():
        cis = loaded.model.cis(loaded.batch(data.atac[:20]))
        state = torch.from_numpy((data.atac[:20] @ W).toarray()).view(20, 8, -1)
        assert torch.allclose(cis, loaded.model.cis_from_state(state), atol=1e-5)
    loaded.check_compatible(list(map(str, data.peaks.index)), data.genes)
    with pytest.raises(ModelMismatchError, match=r"genes: model has 8, .* only in the model: \['g7'\]"):
        loaded.check_compatible(list(map(str, data.peaks.index)), data.genes[:7] + ["other"])
    with pytest.raises(ModelMismatchError, match="peaks"):
        loaded.check_compatible(list(map(str, data.peaks.index))[:-1], data.genes)
    with pytest.raises(ValueError, match="not a GRIDS surrogate"):
        torch.save({"x": 1}, tmp_path / "other.pt")
        grids.load_surrogate(tmp_path / "other.pt")


def test_decoding_a_gene_subset_equals_slicing_all_genes():
    torch.manual_seed(4)
    model = Surrogate(SurrogateConfig(n_peaks=sum(SIZES), n_genes=9, chrom_sizes=SIZES, n_cell_types=1)).eval()
    X = _random_binary(5, sum(SIZES), 0.2, seed=7)
    batch = csr_to_batch(X, np.repeat(np.arange(len(SIZES)), SIZES), len(SIZES))
    pooled, cis = model.pooled(batch), torch.randn(5, 9)
    genes = torch.tensor([7, 2])
    with torch.no_grad():
        assert torch.allclose(model.genes_from_pooled(pooled, cis[:, genes], genes),
                              model.genes_from_pooled(pooled, cis)[:, genes], atol=1e-6)


def _logic_data(n_cells: int = 1200, seed: int = 0) -> tuple[PairedData, np.ndarray, np.ndarray]:
    """Cells with peaks 0..7 open independently at 50 %: gene 0 is on when peak 0 OR 1 is open,
    gene 1 adds peaks 2 and 3, gene 2 needs peaks 4 AND 5; plus noise. Gene g links peaks 0..7."""
    rng = np.random.default_rng(seed)
    n_peaks = 8
    X = (rng.random((n_cells, n_peaks)) < 0.5).astype(np.float32)
    rna = np.stack([2.0 * np.maximum(X[:, 0], X[:, 1]), 1.0 * X[:, 2] + 1.0 * X[:, 3],
                    2.0 * X[:, 4] * X[:, 5]], 1) + rng.normal(0, 0.4, (n_cells, 3))
    split = np.array(["train"] * int(0.7 * n_cells) + ["val"] * int(0.15 * n_cells)
                     + ["test"] * (n_cells - int(0.7 * n_cells) - int(0.15 * n_cells)))
    peaks = pd.DataFrame({"chrom": "chr1", "start": np.arange(n_peaks) * 1000, "end": np.arange(n_peaks) * 1000 + 500})
    data = PairedData(atac=sp.csr_matrix(X), rna=rna.astype(np.float32), cell_type=np.zeros(n_cells, np.int64),
                      cell_types=["a"], split=split, peaks=peaks, genes=["or", "add", "and"],
                      cells=[f"c{i}" for i in range(n_cells)], umap=None)
    peak, gene = np.tile(np.arange(n_peaks), 3), np.repeat(np.arange(3), n_peaks)
    return data, peak, gene


def test_group_units_find_or_and_pairs_and_leave_additive_genes_linear():
    """The cis path's unit search (grids.surrogate.cis) finds the planted OR and AND pairs, and
    the fitted surrogate saturates: closing one OR member costs little, closing both a lot."""
    from grids.surrogate import fit_cis_ridge
    from grids.surrogate.cis import fit_group_units

    data, peak, gene = _logic_data()
    train, val = data.rows("train"), data.rows("val")
    model = Surrogate(SurrogateConfig(n_peaks=8, n_genes=3, chrom_sizes=[8], n_cell_types=1, n_cis_links=len(peak),
                                      cis_units=2)).eval()
    residual, residual_val = data.rna[train] - data.rna[train].mean(0), data.rna[val] - data.rna[train].mean(0)
    ridge = fit_cis_ridge(data, peak, gene, residual_train=residual, base_val=np.zeros_like(residual_val),
                          observed_val=data.rna[val])
    info = fit_group_units(model, data, peak, gene=gene, ridge=ridge, residual_train=residual,
                           residual_val=residual_val)
    found = {(u["gene"], tuple(sorted(u["peaks"]))) for u in info["units"]}
    assert ("or", (0, 1)) in found and ("and", (4, 5)) in found
    assert not any(g == "add" for g, _ in found)  # additive: the ridge alone explains it
    with torch.no_grad():
        cis = lambda rows: model.cis(csr_to_batch(sp.csr_matrix(rows), np.zeros(8, np.int64), 1)).numpy()
        states = np.zeros((4, 8), np.float32)
        states[[1, 3], 0] = 1  # x0 open
        states[[2, 3], 1] = 1  # x1 open
        or_gene = cis(states)[:, 0]
    none, only_0, only_1, both = or_gene
    assert both - none == pytest.approx(2.0, abs=0.3)
    assert abs(both - only_0) < 0.3 and abs(both - only_1) < 0.3  # either member keeps it on


def _fit_two_gene_units(X: np.ndarray, rna: np.ndarray, genes: list[str], settings=None) -> tuple[Surrogate, dict]:
    """Fit group units for two genes linked to every peak of X (one cell type, 70/15/15 split),
    on residuals from the training mean: (the model with its cis path, fit_group_units' summary)."""
    from grids.surrogate import fit_cis_ridge
    from grids.surrogate.cis import fit_group_units

    n_cells, n_peaks = X.shape
    n_train, n_val = int(n_cells * 0.7), int(n_cells * 0.15)
    split = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * (n_cells - n_train - n_val))
    peaks = pd.DataFrame({"chrom": "chr1", "start": np.arange(n_peaks) * 1000, "end": np.arange(n_peaks) * 1000 + 500})
    data = PairedData(atac=sp.csr_matrix(X), rna=rna.astype(np.float32), cell_type=np.zeros(n_cells, np.int64),
                      cell_types=["a"], split=split, peaks=peaks, genes=genes,
                      cells=[f"c{i}" for i in range(n_cells)], umap=None)
    peak, gene = np.tile(np.arange(n_peaks), 2), np.repeat(np.arange(2), n_peaks)
    train, val = data.rows("train"), data.rows("val")
    model = Surrogate(SurrogateConfig(n_peaks=n_peaks, n_genes=2, chrom_sizes=[n_peaks], n_cell_types=1,
                                      n_cis_links=len(peak), cis_units=2)).eval()
    residual, residual_val = data.rna[train] - data.rna[train].mean(0), data.rna[val] - data.rna[train].mean(0)
    ridge = fit_cis_ridge(data, peak, gene, residual_train=residual, base_val=np.zeros_like(residual_val),
                          observed_val=data.rna[val])
    return model, fit_group_units(model, data, peak, gene=gene, ridge=ridge, residual_train=residual,
                                  residual_val=residual_val, settings=settings)


def test_group_units_find_or_triples_and_drop_the_members_linear_terms():
    """An OR of three peaks is found as one unit although each of its pairs shows little (the
    third member is open in most cells); a pure OR keeps no linear terms on its members, so
    closing one member where another is open costs nothing, while a gene with an OR pair plus an
    extra effect of one member keeps that member's linear term."""
    rng = np.random.default_rng(3)
    n_cells, n_peaks = 1500, 8
    X = (rng.random((n_cells, n_peaks)) < 0.5).astype(np.float32)
    triple = 2.0 * X[:, [0, 1, 2]].max(1)
    mixed = 2.0 * np.maximum(X[:, 4], X[:, 5]) + 1.0 * X[:, 4]
    rna = np.stack([triple, mixed], 1) + rng.normal(0, 0.4, (n_cells, 2))
    model, info = _fit_two_gene_units(X, rna, ["triple", "mixed"])
    units = {(u["gene"], tuple(sorted(u["peaks"]))): u for u in info["units"]}
    assert ("triple", (0, 1, 2)) in units and units[("triple", (0, 1, 2))]["logic"] == "or"
    assert not units[("triple", (0, 1, 2))]["members_linear"]
    assert ("mixed", (4, 5)) in units and units[("mixed", (4, 5))]["members_linear"]
    with torch.no_grad():
        cis = lambda rows: model.cis(csr_to_batch(sp.csr_matrix(rows), np.zeros(n_peaks, np.int64), 1)).numpy()
        states = np.zeros((3, n_peaks), np.float32)
        states[0, [0, 1]] = 1  # two members open
        states[1, [1]] = 1  # member 0 closed: member 1 still keeps the gene on
        states[2, [4, 5]] = 1
        out = cis(states)
    assert abs(out[0, 0] - out[1, 0]) < 0.02  # the removal is fully compensated
    link = {(int(p), int(g)): float(w) for p, g, w in zip(*[t.numpy() for t in model.cis_links()],
                                                           model.cis_weight.detach().numpy())}
    assert link[(0, 0)] == link[(1, 0)] == link[(2, 0)] == 0.0
    assert link[(4, 1)] == pytest.approx(1.0, abs=0.25)


def test_cell_type_loss_trains_resumes_and_is_not_saved(tmp_path):
    """type_weight adds a training-only classifier: its loss is logged, a resumed run ends where
    an uninterrupted one does, and the model's parameters are those of a model without it."""
    data = _toy_data()
    settings = TrainSettings(max_epochs=4, batch_size=32, patience=100, checkpoint_every=2, device="cpu",
                             type_weight=1.0, peak_dropout=0.5)
    model, first = train_surrogate(data, settings, checkpoint=tmp_path / "a.pt", progress=False)
    assert all("cell_type" in epoch and np.isfinite(epoch["cell_type"]) for epoch in first["history"])
    plain, _ = train_surrogate(data, TrainSettings(max_epochs=1, batch_size=32, device="cpu"),
                               checkpoint=tmp_path / "p.pt", progress=False)
    assert set(model.state_dict()) == set(plain.state_dict())
    longer = TrainSettings(**{**vars(settings), "max_epochs": 6})
    _, resumed = train_surrogate(data, longer, checkpoint=tmp_path / "a.pt", progress=False)
    _, straight = train_surrogate(data, longer, checkpoint=tmp_path / "b.pt", progress=False)
    assert resumed["history"][:4] == first["history"] and resumed["history"] == straight["history"]


def test_unknown_stopping_criterion_is_a_clear_error():
    with pytest.raises(ValueError, match="surrogate.stop_on: 'r2' is not one of mse, standardised_mse"):
        TrainSettings(stop_on="r2")


def test_early_stopping_on_the_log_scale_follows_the_expressed_genes(monkeypatch):
    """A prediction that fits an expressed gene better and a barely expressed one a little worse
    is better on the log-normalised scale (the default), worse in standardised units."""
    from grids.surrogate import train as train_module

    data = _toy_data()
    val = data.rows("val")
    data.rna[:, 1] = 0.01 * (np.arange(len(data.rna)) % 2)  # barely expressed: tiny variance
    model = Surrogate(SurrogateConfig(n_peaks=sum(SIZES), n_genes=8, chrom_sizes=SIZES, n_cell_types=2))
    model.gene_scale.copy_(torch.from_numpy(np.maximum(data.rna.std(0), 1e-3)))
    good = data.rna[val].copy()
    good[:, 0] += 0.5  # expressed gene off by 0.5
    better = good.copy()
    better[:, 0] -= 0.4  # ... now off by 0.1
    better[:, 1] += 0.02  # the barely expressed gene off by two of its standard deviations
    losses = {}
    for name, predicted in (("good", good), ("better", better)):
        monkeypatch.setattr(train_module, "predict_rows", lambda *args, p=predicted: p)
        losses[name] = {c: train_module._validation_loss(model, None, data, c) for c in train_module.STOPPING_CRITERIA}
    assert losses["better"]["mse"] < losses["good"]["mse"]
    assert losses["better"]["standardised_mse"] > losses["good"]["standardised_mse"]


def _typed_sparse_data(n_cells: int = 600, n_types: int = 4, seed: int = 0) -> PairedData:
    """Cells whose type shows only in the sum of many weak peaks (each open with p = 0.08 in
    its type, 0.02 elsewhere) and genes that are the type's mean plus noise."""
    rng = np.random.default_rng(seed)
    cell_type = rng.integers(0, n_types, n_cells)
    n_peaks = 400
    owner = np.arange(n_peaks) % n_types
    p = np.where(owner[None, :] == cell_type[:, None], 0.08, 0.02)
    X = sp.csr_matrix((rng.random((n_cells, n_peaks)) < p).astype(np.float32))
    means = rng.gamma(2.0, 1.0, (n_types, 6))
    rna = (means[cell_type] + rng.normal(0, 0.3, (n_cells, 6))).astype(np.float32)
    split = np.array(["train", "val", "test"])[rng.choice(3, n_cells, p=[0.6, 0.1, 0.3])]
    peaks = pd.DataFrame({"chrom": "chr1", "start": np.arange(n_peaks) * 1000, "end": np.arange(n_peaks) * 1000 + 500})
    return PairedData(atac=X, rna=rna, cell_type=cell_type, cell_types=[f"t{k}" for k in range(n_types)],
                      split=split, peaks=peaks, genes=[f"g{i}" for i in range(6)],
                      cells=[f"c{i}" for i in range(n_cells)], umap=None)


def test_cell_type_mean_baseline_is_the_training_mean_of_the_label():
    from grids.surrogate.metrics import cell_type_mean_baseline

    data = _typed_sparse_data()
    train, test = data.rows("train"), data.rows("test")
    predicted = cell_type_mean_baseline(data)
    for i, row in enumerate(test[:20]):
        same = train[data.cell_type[train] == data.cell_type[row]]
        np.testing.assert_allclose(predicted[i], data.rna[same].mean(0), rtol=1e-6)


def test_knn_in_lsi_recovers_cell_identity_from_weak_peaks():
    """Nearest training cells in LSI share the test cell's type far above chance (1/4), so the
    kNN prediction follows the type means; the depth component is dropped."""
    from grids.surrogate.metrics import cell_type_mean_baseline, knn_lsi_baseline, lsi_embedding, per_gene_pearson

    data = _typed_sparse_data()
    train, test = data.rows("train"), data.rows("test")
    embedding = lsi_embedding(data.atac, train, n_components=10)
    assert embedding.shape == (len(data.cells), 10)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-6)
    from sklearn.neighbors import NearestNeighbors

    neighbours = NearestNeighbors(n_neighbors=30).fit(embedding[train]).kneighbors(embedding[test],
                                                                                  return_distance=False)
    same_type = (data.cell_type[train][neighbours] == data.cell_type[test][:, None]).mean()
    assert same_type > 0.6, same_type
    knn = knn_lsi_baseline(data, n_components=10)
    r_knn = np.median(per_gene_pearson(knn, data.rna[test]))
    r_type = np.median(per_gene_pearson(cell_type_mean_baseline(data), data.rna[test]))
    assert 0.6 * r_type < r_knn <= r_type + 0.02, (r_knn, r_type)


def test_peak_dropout_keeps_the_expected_pooled_sums():
    """Inverted peak dropout: averaged over draws, the encoder's pooled sums of a dropped batch
    equal those of the full batch (without the 1 / (1 - p) scale they shrink by p)."""
    from grids.surrogate.data import chrom_blocks
    from grids.surrogate.train import _Batcher

    data = _toy_data()
    _, sizes, chrom = chrom_blocks(data.peaks["chrom"])
    model = Surrogate(SurrogateConfig(n_peaks=sum(SIZES), n_genes=8, chrom_sizes=SIZES, n_cell_types=2))
    batcher = _Batcher(data, chrom, len(sizes), torch.device("cpu"))
    rows = np.arange(40)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        base = model.pooled_base()
        full = model.pooled(batcher(rows)[0]) - base
        dropped = torch.stack([model.pooled(batcher(rows, 0.7, rng)[0]) - base for _ in range(1000)]).mean(0)
    error = float((dropped - full).abs().mean())
    unscaled_error = 0.7 * float(full.abs().mean())  # what sums of the kept peaks at weight 1 would miss
    assert error < 0.1 * unscaled_error, (error, unscaled_error)


def _weak_or_units(seed: int, or_test: str) -> set[tuple[str, str, tuple[int, ...]]]:
    """Units found for a weak OR of three peaks (each open in half the cells, effect 0.3 against
    noise 0.8) and an additive gene with one strong and one weak peak."""
    from grids.surrogate.cis import GroupUnitSettings

    rng = np.random.default_rng(seed)
    X = (rng.random((1500, 8)) < 0.5).astype(np.float32)
    rna = np.stack([0.3 * X[:, [0, 1, 2]].max(1), 1.0 * X[:, 4] + 0.3 * X[:, 5]], 1) + rng.normal(0, 0.8, (1500, 2))
    _, info = _fit_two_gene_units(X, rna, ["or", "additive"], GroupUnitSettings(or_test=or_test))
    units = info["units"]
    return {(u["gene"], u["logic"], tuple(sorted(u["peaks"]))) for u in units}


def test_the_parsimony_test_finds_weak_or_groups_the_interaction_test_misses():
    """Judging an OR set by its indicator alone against its members' additive terms finds more
    weak OR triples over 20 draws than testing the indicator beyond those terms, accepting either
    finds at least as many, and none puts a unit on the additive gene."""
    from grids.surrogate.cis import GroupUnitSettings

    found = {test: [_weak_or_units(seed, test) for seed in range(20)]
             for test in ("parsimony", "interaction", "either")}
    triple = {test: sum(("or", "or", (0, 1, 2)) in units for units in runs) for test, runs in found.items()}
    assert triple["parsimony"] >= triple["interaction"] + 3, triple
    assert triple["either"] >= triple["parsimony"], triple
    assert not any(g == "additive" for runs in found.values() for units in runs for g, _, _ in units)
    with pytest.raises(ValueError, match="or_test"):
        GroupUnitSettings(or_test="likelihood")
    with pytest.raises(ValueError, match="surrogate.cis_or_test"):
        TrainSettings(cis_or_test="likelihood")


def _natural_scale_ratio(or_test: str) -> tuple[float, list[dict]]:
    """A pair that adds on the natural scale, y = log(1 + 3 (x_0 + x_1)) + noise (the simulator's
    additive controls): the fitted cis path's drop with both peaks closed over the sum of single
    drops, on expm1 of the prediction, and the units found."""
    from grids.surrogate.cis import GroupUnitSettings

    rng = np.random.default_rng(5)
    X = (rng.random((1500, 6)) < 0.5).astype(np.float32)
    additive = np.log1p(3.0 * (X[:, 0] + X[:, 1]))
    rna = np.stack([additive, 0.5 * X[:, 3]], 1) + rng.normal(0, 0.4, (1500, 2))
    model, info = _fit_two_gene_units(X, rna, ["additive", "other"], GroupUnitSettings(or_test=or_test))
    states = np.zeros((4, 6), np.float32)
    states[0, [0, 1]] = 1
    states[1, 1] = states[2, 0] = 1  # one of the pair closed; row 3: both closed
    mean = rna[: int(1500 * 0.7), 0].mean()  # the cis path fits residuals from the training mean
    with torch.no_grad():
        cis = model.cis(csr_to_batch(sp.csr_matrix(states), np.zeros(6, np.int64), 1)).numpy()[:, 0]
    level = np.expm1(cis + mean)
    drop = level[0] - level
    return float(drop[3] / (drop[1] + drop[2])), info["units"]


def test_accepting_either_or_test_keeps_natural_scale_additive_pairs_additive():
    """A log-additive cis path makes a natural-scale additive pair sub-additive there (closing both
    costs less than the two single closings). The interaction test sees the pair's sub-additivity
    on the log scale and gives it a unit beside its members' linear terms, which represents it;
    the parsimony test alone rejects it (the unit alone does not fit better), so "either" must
    keep the interaction test's unit."""
    ratios, units = {}, {}
    for test in ("interaction", "parsimony", "either"):
        ratios[test], units[test] = _natural_scale_ratio(test)
    # Measured: 1.20 with a unit (the members' linear terms are penalised more than the unit's
    # weight, so the fit leans a little towards saturation), 0.71 without.
    assert ratios["either"] == ratios["interaction"] and 0.85 <= ratios["either"] <= 1.25, ratios
    assert ratios["parsimony"] < 0.8, ratios
    pair = [u for u in units["either"] if u["gene"] == "additive" and sorted(u["peaks"]) == [0, 1]]
    assert len(pair) == 1 and pair[0]["members_linear"] and pair[0]["test"] == "interaction", units["either"]
