"""The ``train_surrogate`` rule: train, save ``model.pt``, test metrics vs ridge, figures."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from grids.genome import read_tss
from grids.io import atomic_output
from grids.plots import marker_heatmaps, predictor_comparison, umap_expression
from grids.surrogate.data import PairedData, cis_links, load_paired
from grids.surrogate.metrics import (
    KNN_NEIGHBOURS,
    cell_type_mean_baseline,
    evaluate_predictions,
    knn_lsi_baseline,
    ridge_baseline,
)
from grids.surrogate.saved import load_surrogate, save_surrogate
from grids.surrogate.train import TrainSettings, train_surrogate
from grids.workflow.config import read_targets

__all__ = ["run_train_surrogate", "gene_links", "MODEL_KEYS", "TRAIN_KEYS", "PREDICTORS"]

log = logging.getLogger(__name__)

MODEL_KEYS = ("d_h", "chrom_dim", "latent_dim", "rna_hidden", "cross_hidden", "disc_hidden", "dropout", "cis_units")
TRAIN_KEYS = tuple(TrainSettings.__dataclass_fields__)
DEFAULT_CIS_WINDOW = 500_000
# Every predictor metrics.json scores on the test cells, in the order tables and figures show them.
PREDICTORS = ("surrogate", "surrogate_linear_cis", "ridge", "knn_lsi", "cell_type_mean")


def gene_links(data: PairedData, gtf: str, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The cis path's (peak, gene) pairs: peaks within ``window`` bp of each gene's TSS.

    Parameters
    ----------
    data
        The paired data: its peaks and genes.
    gtf
        Genome annotation; the TSSs of its gene records on the peak chromosomes are used (a gene's
        first one). Genes without a TSS there get no link (a warning lists them).
    window
        Largest distance in bp between a peak midpoint and the TSS.

    Returns
    -------
    tuple of numpy.ndarray
        ``(peak, gene)`` as :func:`grids.surrogate.data.cis_links` returns them.

    Raises
    ------
    ValueError
        When the GTF has no gene record.
    """
    chroms = {str(c): 0 for c in data.peaks["chrom"].unique()}
    tss = read_tss(gtf, chroms)
    peak, gene = cis_links(data.peaks, data.genes, tss, window=window)
    linked = len(np.unique(gene))
    missing = sorted(set(data.genes) - set(tss["gene"]))
    log.info("cis path: %d peak-gene links within %d bp of a TSS; %d of %d genes have at least one",
             len(peak), window, linked, len(data.genes))
    if missing:
        log.warning("%d of %d model genes have no TSS in %s on the peak chromosomes (%s%s); they are "
                    "predicted by the deep path alone", len(missing), len(data.genes), gtf,
                    ", ".join(missing[:5]), ", ..." if len(missing) > 5 else "")
    return peak, gene


def run_train_surrogate(
    *,
    paired: str,
    targets: str,
    gtf: str,
    settings: Mapping[str, Any],
    threads: int,
    out_model: str,
    out_metrics: str,
    checkpoint: str,
    out_heatmap: str,
    out_umap: str,
    out_predictors: str,
) -> dict:
    """The train_surrogate rule: fit the surrogate (resuming from ``checkpoint``), then write the
    model, the test metrics next to the ridge, kNN-in-LSI and cell-type-mean baselines, and the
    marker heatmap, UMAP and predictor figures. Returns the metrics.

    Parameters
    ----------
    paired
        The ``paired.h5mu`` file (:func:`grids.surrogate.data.load_paired`).
    targets
        The targets file; its genes are the markers of the marker-mean R² and the figures.
    gtf
        Genome annotation for the cis links.
    settings
        The ``surrogate`` config section: :data:`TRAIN_KEYS` go to
        :class:`grids.surrogate.train.TrainSettings`, :data:`MODEL_KEYS` to the model's config, and
        ``cis_window`` (bp; 500 kb when absent, 0 or less: no cis path) to :func:`gene_links`.
    threads
        Torch threads.
    out_model
        The ``model.pt`` written (:func:`grids.surrogate.saved.save_surrogate`); test predictions
        are made from it as saved.
    out_metrics
        ``metrics.json`` written: the returned dict.
    checkpoint
        Training checkpoint, resumed when it matches the data and settings.
    out_heatmap
        PNG of observed and predicted marker means per cell type (test cells).
    out_umap
        PNG of observed and predicted expression of the first four markers on the test cells' UMAP;
        the marker heatmap without R² when the paired file has no UMAP.
    out_predictors
        PNG box plots of per-gene test r, one per predictor.

    Returns
    -------
    dict
        :func:`grids.surrogate.metrics.evaluate_predictions` of each predictor of :data:`PREDICTORS`
        (``surrogate_linear_cis`` only with group units; ``ridge`` adds its ``alpha``, ``knn_lsi``
        its ``n_neighbors``), ``training`` (the training summary), ``history`` (per epoch) and
        ``n_cells`` per split.

    Raises
    ------
    ValueError
        When the paired file's modalities differ in cells, its peaks are not grouped by chromosome,
        the GTF has no gene record, or a training setting is invalid;
        :class:`grids.surrogate.train.TrainingError` when training cannot run or diverges;
        :class:`grids.workflow.config.ConfigError` for a bad targets file.
    """
    data = load_paired(paired)
    train_settings = TrainSettings(**{k: settings[k] for k in TRAIN_KEYS if k in settings}, threads=threads)
    window = int(settings.get("cis_window", DEFAULT_CIS_WINDOW))
    links = gene_links(data, gtf, window) if window > 0 else None
    model, info = train_surrogate(data, train_settings, checkpoint=checkpoint, cis=links,
                                  model_kwargs={k: settings[k] for k in MODEL_KEYS if k in settings})
    linear_cis = info.get("cis", {}).pop("linear_cis_state", None)
    save_surrogate(model, data, info, path=out_model)

    # Test predictions come from the saved file, so the metrics describe what users load.
    test = data.rows("test")
    saved = load_surrogate(out_model)
    predicted = saved.predict(data.atac[test])
    markers = list(dict.fromkeys(read_targets(targets)["gene"]))
    metrics = {"surrogate": evaluate_predictions(predicted, data, markers)}
    if linear_cis is not None:
        # The same surrogate with the additive (ridge-only) cis path: what the group units add.
        with torch.no_grad():
            for name, value in linear_cis.items():
                getattr(saved.model, name).copy_(value)
            saved.model.cis_unit_out.zero_()
        metrics["surrogate_linear_cis"] = evaluate_predictions(saved.predict(data.atac[test]), data, markers)
    ridge_prediction, alpha = ridge_baseline(data)
    metrics["ridge"] = {**evaluate_predictions(ridge_prediction, data, markers), "alpha": alpha}
    metrics["knn_lsi"] = {**evaluate_predictions(knn_lsi_baseline(data), data, markers), "n_neighbors": KNN_NEIGHBOURS}
    metrics["cell_type_mean"] = evaluate_predictions(cell_type_mean_baseline(data), data, markers)
    metrics["training"] = {k: v for k, v in info.items() if k != "history"}
    metrics["history"] = info["history"]
    metrics["n_cells"] = {s: int(len(data.rows(s))) for s in ("train", "val", "test")}
    for name in PREDICTORS:
        if name not in metrics:
            continue
        m = metrics[name]
        log.info("%s: median test r %.3f, marker-mean R2 %s, test MSE %.3f", name, m["median_pearson_r"],
                 None if m["marker_mean_r2"] is None else round(m["marker_mean_r2"], 3), m["test_mse"])
    with atomic_output(out_metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1) + "\n")

    predictor_comparison({name: np.array([np.nan if v is None else v for v in metrics[name]["pearson_r"].values()])
                          for name in PREDICTORS if name in metrics}, out_predictors)
    cell_type = np.array(data.cell_types)[data.cell_type[test]]
    present = [g for g in markers if g in data.genes]
    index = [data.genes.index(g) for g in present]
    observed = pd.DataFrame(data.rna[test][:, index], columns=present).groupby(cell_type).mean()
    guessed = pd.DataFrame(predicted[:, index], columns=present).groupby(cell_type).mean()
    marker_heatmaps(observed, guessed, out_heatmap, r2=metrics["surrogate"]["marker_mean_r2"])
    if data.umap is not None:
        shown = present[:4]
        shown_index = [data.genes.index(g) for g in shown]
        umap_expression(data.umap[test], pd.DataFrame(data.rna[test][:, shown_index], columns=shown),
                        pd.DataFrame(predicted[:, shown_index], columns=shown), out_umap)
    else:
        marker_heatmaps(observed, guessed, out_umap, r2=None)
    return metrics
