"""The cross-modal ATAC -> RNA surrogate: model, data and training (issue 6, in progress)."""

from .data import PairedData, chrom_blocks, load_paired
from .model import SparseBatch, Surrogate, SurrogateConfig, csr_to_batch, dense_pooled_reference
from .train import TrainingError, TrainSettings, predict_rows, resolve_device, train_surrogate

__all__ = [
    "PairedData",
    "SparseBatch",
    "Surrogate",
    "SurrogateConfig",
    "TrainSettings",
    "TrainingError",
    "chrom_blocks",
    "csr_to_batch",
    "dense_pooled_reference",
    "load_paired",
    "predict_rows",
    "resolve_device",
    "train_surrogate",
]
