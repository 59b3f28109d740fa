"""The cross-modal ATAC -> RNA surrogate: model, data and training (issue 6, in progress)."""

from .data import PairedData, chrom_blocks, load_paired
from .model import SparseBatch, Surrogate, SurrogateConfig, csr_to_batch, dense_pooled_reference
from .saved import ModelMismatchError, SavedSurrogate, load_surrogate, save_surrogate
from .train import TrainingError, TrainSettings, predict_rows, resolve_device, train_surrogate

__all__ = [
    "ModelMismatchError",
    "PairedData",
    "SavedSurrogate",
    "SparseBatch",
    "Surrogate",
    "SurrogateConfig",
    "TrainSettings",
    "TrainingError",
    "chrom_blocks",
    "csr_to_batch",
    "dense_pooled_reference",
    "load_paired",
    "load_surrogate",
    "predict_rows",
    "resolve_device",
    "save_surrogate",
    "train_surrogate",
]
