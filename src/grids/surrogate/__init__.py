"""The cross-modal ATAC -> RNA surrogate: model, data, training and the saved model."""

from .data import CisRidge, PairedData, chrom_blocks, cis_links, fit_cis_ridge, load_paired
from .model import SparseBatch, Surrogate, SurrogateConfig, csr_to_batch, dense_pooled_reference
from .saved import ModelMismatchError, SavedSurrogate, load_surrogate, save_surrogate
from .train import TrainingError, TrainSettings, predict_rows, resolve_device, train_surrogate

__all__ = [
    "CisRidge",
    "ModelMismatchError",
    "PairedData",
    "SavedSurrogate",
    "SparseBatch",
    "Surrogate",
    "SurrogateConfig",
    "TrainSettings",
    "TrainingError",
    "chrom_blocks",
    "cis_links",
    "csr_to_batch",
    "dense_pooled_reference",
    "fit_cis_ridge",
    "load_paired",
    "load_surrogate",
    "predict_rows",
    "resolve_device",
    "save_surrogate",
    "train_surrogate",
]
