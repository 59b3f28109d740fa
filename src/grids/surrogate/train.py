"""Training the surrogate: seeded, resumable, early-stopped, with NaN guards and a progress bar."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..io import atomic_output
from .data import PairedData, chrom_blocks, fit_cis_ridge
from .model import Surrogate, SurrogateConfig, csr_to_batch

__all__ = ["TrainSettings", "TrainingError", "resolve_device", "train_surrogate", "predict_rows"]

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, device unavailable)."""


@dataclass
class TrainSettings:
    """Optimisation settings (config key ``surrogate``)."""

    max_epochs: int = 300
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    gamma_adv: float = 0.1
    focal_gamma: float = 2.0
    predict_weight: float = 5.0
    # Weight of the cell-type loss on the ATAC latent (a linear classifier used in training
    # only; 0: none). It makes the encoder learn cell identity, which sparse ATAC carries in
    # the sum of many weak peaks.
    type_weight: float = 0.0
    peak_dropout: float = 0.0
    atac_sampled_peaks: int = 8192
    patience: int = 25
    stop_on: str = "mse"  # early-stopping criterion on validation cells (STOPPING_CRITERIA)
    cis_or_test: str = "either"  # how the cis path accepts an OR unit (grids.surrogate.cis.OR_TESTS)
    checkpoint_every: int = 200
    seed: int = 0
    device: str = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        from .cis import OR_TESTS

        if self.cis_or_test not in OR_TESTS:
            raise ValueError(f"surrogate.cis_or_test: {self.cis_or_test!r} is not one of {', '.join(OR_TESTS)}")
        if self.stop_on not in STOPPING_CRITERIA:
            raise ValueError(f"surrogate.stop_on: {self.stop_on!r} is not one of {', '.join(STOPPING_CRITERIA)}")


def resolve_device(requested: str, setting: str = "surrogate.device") -> torch.device:
    """``auto`` picks CUDA when available (logged); ``cuda`` without a GPU is an error naming ``setting``.

    Parameters
    ----------
    requested
        ``"auto"``, ``"cuda"`` or ``"cpu"`` (any other value also gives the CPU).
    setting
        The config key named in the error.

    Returns
    -------
    torch.device
        ``cuda`` or ``cpu``.

    Raises
    ------
    TrainingError
        When ``requested`` is ``"cuda"`` and torch sees no CUDA device.
    """
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"{setting} is 'cuda' but torch sees no CUDA device "
                                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); use auto or cpu")
        return torch.device("cuda")
    if requested == "auto":
        if torch.cuda.is_available():
            log.info("device auto: using CUDA (%s)", torch.cuda.get_device_name(0))
            return torch.device("cuda")
        log.info("device auto: no CUDA device, running on CPU")
    return torch.device("cpu")


def _fingerprint(data: PairedData, config: SurrogateConfig, settings: TrainSettings, cis: tuple) -> str:
    """What a checkpoint must match to be resumed."""
    payload = json.dumps({"config": config.to_dict(), "settings": {k: v for k, v in vars(settings).items()
                                                                   if k not in ("threads", "device")},
                          "cells": len(data.cells), "peaks": len(data.peaks), "genes": data.genes},
                         sort_keys=True)
    digest = hashlib.sha256(payload.encode())
    for array in cis:
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


class _Batcher:
    def __init__(self, data: PairedData, chrom_of_peak: np.ndarray, n_chroms: int, device: torch.device) -> None:
        self.data, self.chrom_of_peak, self.n_chroms, self.device = data, chrom_of_peak, n_chroms, device

    def __call__(self, rows: np.ndarray, drop: float = 0.0, rng: np.random.Generator | None = None):
        """Encoder input, reconstruction target (both sparse), expression and cell types of rows."""
        X = self.data.atac[rows]
        target = csr_to_batch(X, self.chrom_of_peak, self.n_chroms).to(self.device)
        batch = target
        if drop > 0:
            # Peak dropout: hide a random share of each cell's open peaks from the encoder (the
            # reconstruction target keeps them), as another library of the same cell would.
            X = X.copy()
            X.data[rng.random(len(X.data)) < drop] = 0
            X.eliminate_zeros()
            # Kept peaks count 1 / (1 - drop) (inverted dropout): the encoder sees pooled sums of
            # the size it meets at prediction time, when every open peak is there.
            X.data[:] = 1.0 / (1.0 - drop)
            batch = csr_to_batch(X, self.chrom_of_peak, self.n_chroms, weighted=True).to(self.device)
        y = torch.from_numpy(self.data.rna[rows]).to(self.device)
        k = torch.from_numpy(self.data.cell_type[rows]).to(self.device)
        return batch, target, y, k


def _losses(model: Surrogate, batch, target, y, k, settings: TrainSettings,
            type_head: torch.nn.Module | None = None) -> tuple[torch.Tensor, dict, tuple]:
    """Generator-side losses: reconstructions, prediction, alignment, cycle, adversarial, and
    with ``type_head`` the cell type read from the ATAC latent."""
    h_a = model.encode_pooled(model.pooled(batch))
    y = model.standardise(y)
    h_r = model.rna_encoder(y)
    h_r_hat, h_a_hat = model.f_ar(h_a), model.f_ra(h_r)
    terms = {
        "atac_rec": model.atac_reconstruction_loss(h_a, target, settings.focal_gamma, settings.atac_sampled_peaks),
        "rna_rec": F.mse_loss(model.rna_decoder(h_r), y),
        "predict": F.mse_loss(model.rna_decoder(h_r_hat), y),
        "align": F.mse_loss(h_r_hat, h_r) + F.mse_loss(h_a_hat, h_a),
        "cycle": F.mse_loss(model.f_ra(h_r_hat), h_a) + F.mse_loss(model.f_ar(h_a_hat), h_r),
    }
    # The translated latents try to pass as real ones for their cell type's discriminators.
    fake_r, fake_a = model.disc_rna(h_r_hat, k), model.disc_atac(h_a_hat, k)
    adv = (F.binary_cross_entropy_with_logits(fake_r, torch.ones_like(fake_r))
           + F.binary_cross_entropy_with_logits(fake_a, torch.ones_like(fake_a)))
    terms["adversarial"] = adv
    if type_head is not None:
        # The label is the least noisy signal a cell has: in sparse data (a few UMIs per gene)
        # the prediction loss alone overfits before the encoder has learnt cell identity.
        terms["cell_type"] = settings.type_weight * F.cross_entropy(type_head(h_a), k)
    # The surrogate is the ATAC -> RNA path, so its prediction term carries the most weight.
    total = (sum(v for key, v in terms.items() if key not in ("adversarial", "predict"))
             + settings.predict_weight * terms["predict"] + settings.gamma_adv * adv)
    return total, terms, (h_a.detach(), h_r.detach(), h_r_hat.detach(), h_a_hat.detach())


def _disc_loss(model: Surrogate, latents, k) -> torch.Tensor:
    h_a, h_r, h_r_hat, h_a_hat = latents
    loss = torch.zeros((), device=h_a.device)
    for disc, real, fake in ((model.disc_rna, h_r, h_r_hat), (model.disc_atac, h_a, h_a_hat)):
        r, f = disc(real, k), disc(fake, k)
        loss = loss + F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
        loss = loss + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
    return loss


@torch.no_grad()
def _map_rows(model: Surrogate, batcher: _Batcher, rows: np.ndarray, fn, batch_size: int = 512) -> np.ndarray:
    """``fn(batch)`` over data rows in chunks, in eval mode, as one numpy array (cells x genes)."""
    model.eval()
    out = [fn(batcher(rows[lo : lo + batch_size])[0]).cpu().numpy() for lo in range(0, len(rows), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.config.n_genes), np.float32)


def predict_rows(model: Surrogate, batcher: _Batcher, rows: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
    """Predicted log-normalised expression (clamped >= 0) for data rows, in eval mode.

    Parameters
    ----------
    model
        The surrogate; it is left in eval mode.
    batcher
        The training batcher over the paired data, which builds each chunk's batch on the model's
        device.
    rows
        Data rows (cells) to predict.
    batch_size
        Cells per forward pass.

    Returns
    -------
    numpy.ndarray
        float32, ``len(rows)`` x genes, in the order of ``rows``.
    """
    return _map_rows(model, batcher, rows, model, batch_size)


STOPPING_CRITERIA = ("mse", "standardised_mse")


def _validation_loss(model: Surrogate, batcher: _Batcher, data: PairedData, criterion: str = "mse") -> float:
    """The early-stopping criterion on validation cells.

    ``mse``: on the log-normalised scale, so a gene counts by how much it varies. In sparse data
    most genes are barely expressed; in standardised units (``standardised_mse``, every gene
    counting the same) their noise makes the curve flat, and the best epoch is chance.
    """
    rows = data.rows("val")
    predicted = predict_rows(model, batcher, rows)
    if criterion == "standardised_mse":
        scale = model.gene_scale.cpu().numpy()
        return float(np.mean(((predicted - data.rna[rows]) / scale) ** 2))
    return float(np.mean((predicted - data.rna[rows]) ** 2))


def _standardised_rows(model: Surrogate, batcher: _Batcher, rows: np.ndarray) -> np.ndarray:
    """The deep path's prediction in standardised units (no cis term, unclamped)."""
    return _map_rows(model, batcher, rows, lambda batch: model.genes_standardised(model.pooled(batch)))


def _fit_cis_path(model: Surrogate, batcher: _Batcher, data: PairedData, cis: tuple, *,
                  or_test: str = "either") -> dict:
    """Fit the cis path on the trained deep model's residuals: a per-gene ridge regression, then,
    with ``cis_units``, group units found on the ridge's residuals (:mod:`grids.surrogate.cis`)."""
    from .cis import GroupUnitSettings, fit_group_units
    from .metrics import per_gene_pearson

    train, val = data.rows("train"), data.rows("val")
    device = model.gene_mean.device
    residual = model.standardise(torch.from_numpy(data.rna[train]).to(device)).cpu().numpy()
    residual -= _standardised_rows(model, batcher, train)
    observed_val = model.standardise(torch.from_numpy(data.rna[val]).to(device)).cpu().numpy()
    base_val = _standardised_rows(model, batcher, val)
    ridge = fit_cis_ridge(data, cis[0], cis[1], residual_train=residual, base_val=base_val, observed_val=observed_val)
    model.set_cis_links(*cis, weight=ridge.weight, bias=ridge.bias)
    log.info("cis path: %d links, ridge alpha %g, median validation r %.3f", len(cis[0]), ridge.alpha,
             ridge.validation_r)
    info = {"links": int(len(cis[0])), "alpha": ridge.alpha, "validation_median_r": ridge.validation_r,
            "ridge_validation_median_r": ridge.validation_r}
    if model.config.cis_units:
        # The ridge-only (additive) cis path, for the test metrics to compare against; popped by
        # the caller before the info is saved.
        info["linear_cis_state"] = {name: p.detach().cpu().clone() for name, p in model.named_parameters()
                                    if name.startswith("cis_")}
        units = fit_group_units(model, data, cis[0], gene=cis[1], ridge=ridge, residual_train=residual,
                                residual_val=observed_val - base_val, settings=GroupUnitSettings(or_test=or_test))
        cis_val = _map_rows(model, batcher, val, model.cis)
        info["validation_median_r"] = float(np.nanmedian(per_gene_pearson(base_val + cis_val, observed_val)))
        info["group_units"] = units
        log.info("cis path with group units: median validation r %.3f (ridge alone %.3f)",
                 info["validation_median_r"], ridge.validation_r)
    return info


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def train_surrogate(
    data: PairedData,
    settings: TrainSettings,
    *,
    checkpoint: str | Path,
    model_kwargs: dict[str, Any] | None = None,
    cis: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = True,
) -> tuple[Surrogate, dict]:
    """Train on the ``train`` split, stop early on ``val`` prediction MSE, return the best model.

    A checkpoint is written every ``checkpoint_every`` steps and at every epoch; a rerun with the
    same data and settings resumes from it. A non-finite loss stops training with the step and
    loss terms, leaving the last good checkpoint in place. ``cis`` gives the (peak, gene) pairs of
    the cis path (:func:`grids.surrogate.data.cis_links`), fitted after the deep model as a ridge
    regression on its residuals; without it the model has none.

    Parameters
    ----------
    data
        The paired data, with ``train`` and ``val`` cells; peaks grouped by chromosome.
    settings
        Optimisation settings; ``stop_on`` sets the early-stopping criterion.
    checkpoint
        Checkpoint file, written atomically. An existing one is resumed when it was written for the
        same model config, settings (``threads`` and ``device`` aside), cell, peak and gene counts,
        genes and cis links; otherwise it is ignored (logged) and overwritten.
    model_kwargs
        :class:`grids.surrogate.model.SurrogateConfig` fields (sizes such as ``d_h``, ``cis_units``);
        the data sizes come from ``data``.
    cis
        ``(peak, gene)`` index arrays of the cis links; None: no cis path.
    progress
        Show a tqdm progress bar (one step per epoch).

    Returns
    -------
    tuple
        ``(model, info)``: the model with the weights of its best validation epoch and the fitted cis
        path, in eval mode on the chosen device; ``info`` with ``epochs``, ``steps``, ``best_epoch``,
        ``best_val_mse``, ``stopped_by`` (``"early stopping"`` or ``"max_epochs"``), ``device``,
        ``train_seconds`` (``cis_seconds`` of it fitting the cis path), ``history`` (per epoch:
        ``epoch``, ``val_mse`` and the mean loss terms), ``chromosomes`` and ``cis`` (``{"links": 0}``
        without a cis path; else the ridge's ``alpha`` and validation r, plus ``group_units`` and
        ``linear_cis_state`` with units).

    Raises
    ------
    TrainingError
        When the device is unavailable, there are fewer than two training cells or no validation
        cell, or a loss is not finite.
    ValueError
        When the peaks are not grouped by chromosome.
    """
    cis = cis if cis is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    torch.manual_seed(settings.seed)
    torch.set_num_threads(max(1, settings.threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(settings.device)
    chrom_names, block_sizes, chrom_of_peak = chrom_blocks(data.peaks["chrom"])
    config = SurrogateConfig(n_peaks=len(data.peaks), n_genes=len(data.genes), chrom_sizes=block_sizes,
                             n_cell_types=len(data.cell_types), n_cis_links=len(cis[0]), **(model_kwargs or {}))
    model = Surrogate(config)
    fit_rows = data.rows("train")
    model.gene_mean.copy_(torch.from_numpy(data.rna[fit_rows].mean(axis=0)))
    model.gene_scale.copy_(torch.from_numpy(np.maximum(data.rna[fit_rows].std(axis=0), 1e-3)))
    model.set_cis_links(*cis)
    model = model.to(device)
    # The cis path is fitted after the deep model (below), so the optimisers never see it.
    generator_params = [p for n, p in model.named_parameters() if not n.startswith(("disc_", "cis_"))]
    # Training-only head: it shapes the encoder and is not part of the saved model.
    type_head = torch.nn.Linear(config.latent_dim, config.n_cell_types).to(device) if settings.type_weight > 0 else None
    if type_head is not None:
        generator_params += list(type_head.parameters())
    disc_params = [p for n, p in model.named_parameters() if n.startswith("disc_")]
    # The ridge penalty replaces weight decay on the cis weights.
    opt = torch.optim.AdamW(generator_params, lr=settings.learning_rate, weight_decay=settings.weight_decay,
                            foreach=True)
    opt_disc = torch.optim.AdamW(disc_params, lr=settings.learning_rate, foreach=True)
    batcher = _Batcher(data, chrom_of_peak, len(block_sizes), device)
    train_rows = data.rows("train")
    if len(train_rows) < 2 or len(data.rows("val")) == 0:
        raise TrainingError(f"need training and validation cells; have {len(train_rows)} train, "
                            f"{len(data.rows('val'))} val")
    fingerprint = _fingerprint(data, config, settings, cis)
    rng = np.random.default_rng(settings.seed)
    state = {"epoch": 0, "step": 0, "best_val": math.inf, "best_epoch": -1, "bad_epochs": 0, "history": []}
    best_weights = None
    checkpoint = Path(checkpoint)
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        if saved.get("fingerprint") == fingerprint:
            model.load_state_dict(saved["model"])
            if type_head is not None:
                type_head.load_state_dict(saved["type_head"])
            opt.load_state_dict(saved["opt"])
            opt_disc.load_state_dict(saved["opt_disc"])
            state = saved["state"]
            best_weights = saved["best_weights"]
            rng.bit_generator.state = saved["rng"]
            torch.set_rng_state(saved["torch_rng"])
            log.info("resuming from %s at epoch %d (step %d)", checkpoint, state["epoch"], state["step"])
        else:
            log.info("ignoring %s: it belongs to other data or settings", checkpoint)

    def save() -> None:
        _save_checkpoint(checkpoint, {
            "fingerprint": fingerprint, "model": model.state_dict(), "opt": opt.state_dict(),
            "opt_disc": opt_disc.state_dict(), "state": state, "best_weights": best_weights,
            "type_head": None if type_head is None else type_head.state_dict(),
            "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
        })

    started = time.perf_counter()
    bar = tqdm(total=settings.max_epochs, initial=state["epoch"], desc="surrogate", unit="epoch",
               disable=not progress)
    while state["epoch"] < settings.max_epochs and state["bad_epochs"] < settings.patience:
        model.train()
        order = train_rows[rng.permutation(len(train_rows))]
        sums: dict[str, float] = {}
        n_batches = 0
        for lo in range(0, len(order), settings.batch_size):
            rows = order[lo : lo + settings.batch_size]
            if len(rows) < 2:  # BatchNorm needs two cells
                continue
            batch, target, y, k = batcher(rows, settings.peak_dropout, rng)
            loss, terms, latents = _losses(model, batch, target, y, k, settings, type_head)
            if not torch.isfinite(loss):
                values = ", ".join(f"{key}={float(v.detach()):.4g}" for key, v in terms.items())
                raise TrainingError(f"non-finite loss at step {state['step']} (epoch {state['epoch']}): {values}; "
                                    f"the last good checkpoint is {checkpoint}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            opt_disc.zero_grad(set_to_none=True)
            _disc_loss(model, latents, k).backward()
            opt_disc.step()
            state["step"] += 1
            n_batches += 1
            for key, v in terms.items():
                sums[key] = sums.get(key, 0.0) + float(v.detach())
            if state["step"] % settings.checkpoint_every == 0:
                save()
        val = _validation_loss(model, batcher, data, settings.stop_on)
        means = {key: v / max(n_batches, 1) for key, v in sums.items()}
        state["history"].append({"epoch": state["epoch"], "val_mse": val, **means})
        if val < state["best_val"] - 1e-6:
            state.update(best_val=val, best_epoch=state["epoch"], bad_epochs=0)
            best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        state["epoch"] += 1
        bar.set_postfix(predict=f"{means.get('predict', 0):.4f}", atac=f"{means.get('atac_rec', 0):.4f}",
                        val=f"{val:.4f}", best=f"{state['best_val']:.4f}")
        bar.update(1)
        save()
    bar.close()
    if best_weights is not None:
        model.load_state_dict(best_weights)
    model.eval()
    cis_started = time.perf_counter()
    cis_info = _fit_cis_path(model, batcher, data, cis, or_test=settings.cis_or_test) if len(cis[0]) else {"links": 0}
    cis_seconds = time.perf_counter() - cis_started
    stopped = "early stopping" if state["bad_epochs"] >= settings.patience else "max_epochs"
    log.info("trained %d epochs (%d steps, %s); best val MSE %.5f at epoch %d; %.1f s", state["epoch"],
             state["step"], stopped, state["best_val"], state["best_epoch"], time.perf_counter() - started)
    info = {"epochs": state["epoch"], "steps": state["step"], "best_epoch": state["best_epoch"],
            "best_val_mse": state["best_val"], "stopped_by": stopped, "device": str(device),
            "train_seconds": time.perf_counter() - started, "cis_seconds": cis_seconds, "history": state["history"],
            "chromosomes": chrom_names, "cis": cis_info}
    return model, info
