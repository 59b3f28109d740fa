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
    resolve_device,
    train_surrogate,
)

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
    """s_c(x) = b_c + sum of D_j over open peaks j of c (DESIGN §4)."""
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


def _toy_data(n_cells: int = 120, seed: int = 0) -> PairedData:
    rng = np.random.default_rng(seed)
    X = (rng.random((n_cells, sum(SIZES))) < 0.2).astype(np.float32)
    cell_type = rng.integers(0, 2, n_cells)
    X[cell_type == 1, :10] = 1.0
    rna = np.log1p(X[:, :8] * 3 + cell_type[:, None] * 2 + rng.random((n_cells, 8))).astype(np.float32)
    split = np.array(["train"] * 80 + ["val"] * 20 + ["test"] * 20)
    chroms = np.repeat([f"chr{i + 1}" for i in range(len(SIZES))], SIZES)
    peaks = pd.DataFrame({"chrom": chroms, "start": np.arange(sum(SIZES)) * 1000, "end": np.arange(sum(SIZES)) * 1000 + 500})
    return PairedData(atac=sp.csr_matrix(X), rna=rna, cell_type=cell_type, cell_types=["a", "b"], split=split,
                      peaks=peaks, genes=[f"g{i}" for i in range(8)], cells=[f"c{i}" for i in range(n_cells)], umap=None)


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
                                  checkpoint=tmp_path / "c.pt", progress=False)
    save_surrogate(model, data, info, tmp_path / "model.pt")
    loaded = grids.load_surrogate(tmp_path / "model.pt")
    _, sizes, chrom = chrom_blocks(data.peaks["chrom"])
    expected = predict_rows(model, _Batcher(data, chrom, len(sizes), "cpu"), np.arange(20))
    assert np.allclose(loaded.predict(data.atac[:20]), expected, atol=1e-6)
    assert (loaded.predict(data.atac[:20]) >= 0).all()
    loaded.check_compatible(list(map(str, data.peaks.index)), data.genes)
    with pytest.raises(ModelMismatchError, match=r"genes: model has 8, .* only in the model: \['g7'\]"):
        loaded.check_compatible(list(map(str, data.peaks.index)), data.genes[:7] + ["other"])
    with pytest.raises(ModelMismatchError, match="peaks"):
        loaded.check_compatible(list(map(str, data.peaks.index))[:-1], data.genes)
    with pytest.raises(ValueError, match="not a GRIDS surrogate"):
        torch.save({"x": 1}, tmp_path / "other.pt")
        grids.load_surrogate(tmp_path / "other.pt")
