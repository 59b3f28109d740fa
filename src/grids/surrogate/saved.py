"""The trained surrogate on disk (``model.pt``) and :func:`load_surrogate`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..io import atomic_output
from .data import PairedData, chrom_blocks
from .model import SparseBatch, Surrogate, SurrogateConfig, csr_to_batch

__all__ = ["SavedSurrogate", "save_surrogate", "load_surrogate", "ModelMismatchError"]

FORMAT = "grids-surrogate/1"


class ModelMismatchError(ValueError):
    """A saved model does not match the data it is used with."""


def save_surrogate(model: Surrogate, data: PairedData, info: dict, *, path: str | Path) -> None:
    """Weights, config, peak and gene index and chromosome blocks, in one ``torch.save`` file.

    Parameters
    ----------
    model
        The trained surrogate; its weights are saved on the CPU.
    data
        The paired data it was trained on: its peaks (names, chrom, start, end), genes, cell types
        and chromosome blocks are saved.
    info
        The training summary of :func:`grids.surrogate.train.train_surrogate`, saved without its
        ``history``.
    path
        The ``model.pt`` file, written atomically.

    Raises
    ------
    ValueError
        When the peaks are not grouped by chromosome.
    """
    names, sizes, _ = chrom_blocks(data.peaks["chrom"])
    payload = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "peaks": {"name": list(map(str, data.peaks.index)), "chrom": data.peaks["chrom"].astype(str).tolist(),
                  "start": data.peaks["start"].astype(int).tolist(), "end": data.peaks["end"].astype(int).tolist()},
        "genes": list(data.genes),
        "cell_types": list(data.cell_types),
        "chromosomes": {"names": names, "sizes": sizes},
        "training": {k: v for k, v in info.items() if k != "history"},
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


class SavedSurrogate:
    """A trained surrogate: ``predict`` plus the hooks the GRIDS explainer needs."""

    def __init__(self, payload: dict, device: str | torch.device = "cpu") -> None:
        self.payload = payload
        self.device = torch.device(device)
        self.model = Surrogate(SurrogateConfig(**payload["config"]))
        self.model.load_state_dict(payload["state_dict"])
        self.model.to(self.device).eval()
        self.peaks = pd.DataFrame(payload["peaks"]).set_index("name")
        self.genes: list[str] = list(payload["genes"])
        self.cell_types: list[str] = list(payload["cell_types"])
        self.chromosomes: list[str] = list(payload["chromosomes"]["names"])
        sizes = payload["chromosomes"]["sizes"]
        self.chrom_of_peak = np.repeat(np.arange(len(sizes)), sizes)

    def check_compatible(self, peaks: Sequence[str], genes: Sequence[str], *, source: str = "data") -> None:
        """Raise :class:`ModelMismatchError` listing differences in peak or gene index."""
        problems = []
        for what, ours, theirs in (("peaks", list(self.peaks.index), list(map(str, peaks))),
                                   ("genes", self.genes, list(map(str, genes)))):
            if ours != theirs:
                missing = [x for x in ours if x not in set(theirs)][:5]
                extra = [x for x in theirs if x not in set(ours)][:5]
                problems.append(f"{what}: model has {len(ours)}, {source} has {len(theirs)}; only in the model: "
                                f"{missing}; only in {source}: {extra}"
                                + ("" if missing or extra else " (order differs)"))
        if problems:
            raise ModelMismatchError("the surrogate was trained on other data — " + "; ".join(problems))

    def batch(self, X) -> SparseBatch:
        if X.shape[1] != len(self.peaks):
            raise ModelMismatchError(f"X has {X.shape[1]} peaks, the model {len(self.peaks)}")
        return csr_to_batch(X, self.chrom_of_peak, len(self.chromosomes)).to(self.device)

    @torch.no_grad()
    def predict(self, X, *, batch_size: int = 1024) -> np.ndarray:
        """Cells x peaks (scipy sparse, binary) -> cells x genes log-normalised, clamped >= 0."""
        import scipy.sparse as sp

        X = sp.csr_matrix(X)
        out = [self.model(self.batch(X[lo : lo + batch_size])).cpu().numpy()
               for lo in range(0, X.shape[0], batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.genes)), np.float32)


def load_surrogate(path: str | Path, *, device: str = "cpu") -> SavedSurrogate:
    """Load ``model.pt`` written by the ``train_surrogate`` rule.

    Parameters
    ----------
    path
        The file of :func:`save_surrogate`. It is unpickled in full (``weights_only=False``): load
        only files you trust.
    device
        Where the model runs (``"cpu"``, ``"cuda"``, ...).

    Returns
    -------
    SavedSurrogate
        The model on ``device`` in eval mode, with its peaks, genes, cell types and chromosomes.

    Raises
    ------
    ValueError
        When the file is not a GRIDS surrogate file of this format.
    """
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a GRIDS surrogate file ({FORMAT})")
    return SavedSurrogate(payload, device=device)
