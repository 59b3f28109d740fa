"""The CUDA paths of training and explanation (issue 17): each runs on the GPU and agrees with the
CPU. Skipped on a machine where torch sees no CUDA device (CI has none); run on a GPU machine with
``python -m pytest tests/test_cuda.py``.

Only numpy, pandas, scipy, torch and the methods' own libraries (sage-importance, lime) are
needed: the data are built in memory, so no AnnData or GTF reader is involved.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from grids.explain.core import SubsetObjective
from grids.explain.methods import METHODS
from grids.explain.tasks import ExplainTask
from grids.surrogate import TrainSettings, load_surrogate, save_surrogate, train_surrogate
from grids.surrogate.data import PairedData, chrom_blocks, cis_links
from grids.surrogate.metrics import per_gene_pearson
from grids.surrogate.train import _Batcher, predict_rows
from grids.workflow.stages.explain import _method_input, _run_one, _search_group

GPU = "cuda"
pytestmark = pytest.mark.skipif(GPU == "cuda" and not torch.cuda.is_available(), reason="torch sees no CUDA device")

N_PEAKS, N_GENES = 80, 6
L_VALUES = [3, 6]
# Small settings so every method finishes in seconds; the same on both devices.
SETTINGS = {"L": L_VALUES, "seed": 0, "top_n_genes": 3, "window": 60_000, "beta": 0.0, "steps": 60,
            "sage_max_peaks": 12, "lime_max_peaks": 12}


def _toy() -> tuple[PairedData, pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """Two cell types on two chromosomes; gene g is driven by peaks 10g..10g+3 near its TSS, with
    an OR pair (10g+4, 10g+5: either one open is enough)."""
    rng = np.random.default_rng(0)
    n = 400
    cell_type = rng.integers(0, 2, n)
    X = (rng.random((n, N_PEAKS)) < 0.35).astype(np.float32)
    X[cell_type == 1, 60:] = 0
    drive = np.stack([X[:, 10 * g : 10 * g + 4].sum(1) + 2 * np.maximum(X[:, 10 * g + 4], X[:, 10 * g + 5])
                      for g in range(N_GENES)], axis=1)
    rna = np.log1p(2 * drive + cell_type[:, None] + rng.random((n, N_GENES))).astype(np.float32)
    chrom = np.where(np.arange(N_PEAKS) < 40, "chr1", "chr2")
    start = (np.arange(N_PEAKS) % 40) * 10_000
    peaks = pd.DataFrame({"chrom": chrom, "start": start, "end": start + 500},
                         index=[f"{c}:{s}-{s + 500}" for c, s in zip(chrom, start)])
    genes = [f"G{g}" for g in range(N_GENES)]
    split = np.array((["train"] * 7 + ["val"] + ["test"] * 2) * (n // 10))
    data = PairedData(sp.csr_matrix(X), rna, cell_type, ["a", "b"], split, peaks, genes,
                      [f"s#c{i}" for i in range(n)], None)
    tss = pd.DataFrame({"chrom": [chrom[10 * g] for g in range(N_GENES)],
                        "position": [start[10 * g] + 20_000 for g in range(N_GENES)],
                        "strand": "+", "gene": genes})
    return data, tss, cis_links(peaks, genes, tss, window=60_000)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The toy trained on the GPU and, with the same seed and settings, on the CPU."""
    data, tss, links = _toy()
    root = tmp_path_factory.mktemp("cuda")
    models = {}
    for device in (GPU, "cpu"):
        settings = TrainSettings(max_epochs=30, batch_size=32, patience=30, device=device, seed=0)
        models[device] = train_surrogate(data, settings, checkpoint=root / f"{device}.pt", cis=links, progress=False)
    return data, tss, models, root


def test_training_on_cuda_keeps_the_model_on_the_gpu_and_predicts_as_well_as_the_cpu(trained):
    data, _, models, _ = trained
    model, info = models[GPU]
    assert info["device"].startswith(GPU) and all(p.device.type == GPU for p in model.parameters())
    test = data.rows("test")
    r = {}
    names, _, chrom_of_peak = chrom_blocks(data.peaks["chrom"])
    for device, (m, _) in models.items():
        batcher = _Batcher(data, chrom_of_peak, len(names), torch.device(device))
        r[device] = float(np.nanmedian(per_gene_pearson(predict_rows(m, batcher, test), data.rna[test])))
    print(f"\nheld-out median per-gene r: cuda {r[GPU]:.3f}, cpu {r['cpu']:.3f}")
    # The GPU draws dropout from its own generator, so the two trainings follow different paths.
    assert r[GPU] > 0.5 and abs(r[GPU] - r["cpu"]) < 0.1, r


def test_a_model_trained_on_cuda_saves_and_loads_on_either_device_with_equal_predictions(trained):
    data, _, models, root = trained
    model, info = models[GPU]
    save_surrogate(model, data, info, path=root / "model.pt")
    X = data.atac[data.rows("test")]
    on_gpu, on_cpu = load_surrogate(root / "model.pt", device=GPU), load_surrogate(root / "model.pt", device="cpu")
    assert next(on_gpu.model.parameters()).device.type == GPU
    np.testing.assert_allclose(on_gpu.predict(X), on_cpu.predict(X), rtol=1e-4, atol=1e-5)


def _explain(model, data, tss, method: str) -> list[list[tuple]]:
    """Every task of the toy (both cell types, two genes each) through the stage's own code path."""
    spec = METHODS[method]
    tasks = [ExplainTask(cell_type, gene, "gene") for cell_type in ("a", "b") for gene in ("G0", "G2")]
    outcomes = []
    for cell_type in ("a", "b"):
        shared: dict = {}
        givens = [_method_input(task, data, tss, model, 0.0, SETTINGS, 0, SETTINGS["window"], L_VALUES, 3, "MT-",
                                shared, "toy", False)[1] for task in tasks if task.cell_type == cell_type]
        outcomes += (_search_group(spec, givens, L_VALUES, False) if spec.plan is not None
                     else [_run_one(spec, given, L_VALUES) for given in givens])
    return outcomes


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_explain_method_runs_on_cuda_and_agrees_with_the_cpu(trained, method):
    """The same GPU-trained weights explained on each device: on the GPU every method returns L
    distinct peaks whose objective the CPU recomputes; deterministic rankings pick the same peaks,
    and the searches end within 5% of the CPU's objective (float sums differ in their last bits,
    so a near tie may break the other way and the search take another path)."""
    data, tss, models, root = trained
    model, info = models[GPU]
    save_surrogate(model, data, info, path=root / f"{method}.pt")
    on = {device: load_surrogate(root / f"{method}.pt", device=device).model for device in (GPU, "cpu")}
    results = {device: _explain(m, data, tss, method) for device, m in on.items()}
    for task_gpu, task_cpu in zip(results[GPU], results["cpu"]):
        for (L, gpu, status, _), (_, cpu, cpu_status, _) in zip(task_gpu, task_cpu):
            assert status == cpu_status, (L, status, cpu_status)
            if gpu is None:
                continue
            assert len(set(gpu.peaks.tolist())) == len(gpu.peaks) <= L
            assert np.isfinite(gpu.train_loss) and np.isfinite(cpu.train_loss)
            if method in ("saliency", "correlation", "random"):
                assert gpu.peaks.tolist() == cpu.peaks.tolist(), (L, gpu.peaks, cpu.peaks)
            if METHODS[method].kind == "search":
                assert gpu.train_loss <= cpu.train_loss * 1.05 + 1e-6, (L, gpu.train_loss, cpu.train_loss)
    # The GPU's objective for a selection is the CPU's.
    first = results[GPU][0][-1][1]
    cells = data.atac[np.flatnonzero((data.cell_type == 0) & (data.split == "train"))]
    objective = SubsetObjective(on["cpu"], np.array([data.genes.index("G0")]))
    assert objective.loss(objective.cells(cells), first.peaks) == pytest.approx(first.train_loss, rel=1e-4, abs=1e-7)

