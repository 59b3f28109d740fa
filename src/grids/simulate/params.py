"""Simulation parameters and the named presets (``demo``, ``demo_full``, ``paper``, ``sparse``)."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SimulationParams", "PRESETS", "make_params", "cell_type_names", "sample_seed_sequence"]


@dataclass(frozen=True)
class SimulationParams:
    """All knobs of the ground-truth multiome simulator.

    Rates are per cell unless noted. Defaults are the ``demo_full`` preset (the ``demo`` preset
    is a smaller copy of it with as many cells per cell type).
    """

    seed: int = 0
    # genome
    n_chromosomes: int = 4
    genome_size_mb: float = 30.0
    # genes and regulation
    n_genes: int = 240
    n_tfs: int = 12
    n_cell_types: int = 6
    n_markers_per_type: int = 4
    mean_enhancers: float = 2.0
    frac_redundant: float = 0.35
    frac_indirect: float = 0.25
    n_orphan_cres: int = 1500
    orphan_open_scale: float = 1.0
    coaccessibility_sd: float = 0.7
    coaccessibility_window: int = 500_000
    # Grouped CREs (docs/architecture.md §7). "independent": members of a group open at moderate rates with a
    # configurable within-cell correlation, so cells with none, one or several members open all
    # occur and redundancy is learnable. "coaccessible": members open together in 80-95% of their
    # cell type's cells (the older regime, in which an OR cannot be told from one strong CRE).
    redundancy_regime: str = "independent"
    redundant_correlation: float = 0.0
    redundant_open_min: float = 0.4
    redundant_open_max: float = 0.7
    redundant_group_min: int = 2
    redundant_group_max: int = 3
    # log(1 + a_G): a group's log-scale effect on its gene with it on (OR, AND) or both members on.
    group_effect: tuple[float, float] = (2.0, 3.0)
    group_everywhere: float = 0.6  # share of groups active in every cell type (independent regime)
    # Controls: pairs of independent enhancers whose effects add, and pairs that need both.
    frac_additive_pairs: float = 0.2
    frac_and_pairs: float = 0.1
    # cells
    cells_per_sample: int = 1000
    empty_droplets_per_sample: int = 1200
    frac_low_quality: float = 0.06
    # ATAC
    fragments_per_open_cre: float = 2.0
    # Per-cell target FRiP is uniform in [frip_min, frip_max]; realised values scatter a little.
    frip_min: float = 0.35
    frip_max: float = 0.55
    # RNA
    median_umis: float = 2500.0
    mito_fraction: float = 0.04
    nb_theta: float = 8.0
    # Hi-C
    hic_bin_size: int = 10_000
    hic_max_distance: int = 2_000_000
    hic_contacts_per_bin: float = 60.0
    hic_decay: float = 1.0
    hic_loop_strength: float = 4.0
    # Barcodes come from one seeded "whitelist", as in 10x, so samples can collide.
    barcode_whitelist_size: int = 20_000

    def __post_init__(self) -> None:
        # Config overrides arrive as YAML lists; keep the parameters hashable and comparable.
        object.__setattr__(self, "group_effect", tuple(float(v) for v in self.group_effect))
        checks = {
            "n_chromosomes": 1 <= self.n_chromosomes <= len(_HG38_AUTOSOME_MB),
            "genome_size_mb": self.genome_size_mb > 0,
            "n_genes": self.n_genes >= 10,
            "n_tfs": 0 <= self.n_tfs < self.n_genes,
            "n_cell_types": 2 <= self.n_cell_types <= 26,
            "n_markers_per_type": 1 <= self.n_markers_per_type
            and self.n_markers_per_type * self.n_cell_types <= self.n_genes - self.n_tfs,
            "frac_redundant": 0 <= self.frac_redundant <= 1,
            "frac_indirect": 0 <= self.frac_indirect <= 1,
            "redundancy_regime": self.redundancy_regime in ("independent", "coaccessible"),
            "redundant_correlation": 0 <= self.redundant_correlation <= 1,
            "redundant_open_min": 0 < self.redundant_open_min <= self.redundant_open_max < 1,
            "redundant_group_min": 2 <= self.redundant_group_min <= self.redundant_group_max <= 8,
            "group_everywhere": 0 <= self.group_everywhere <= 1,
            "group_effect": len(self.group_effect) == 2 and 0 < self.group_effect[0] <= self.group_effect[1],
            "frac_additive_pairs": 0 <= self.frac_additive_pairs <= 1,
            "frac_and_pairs": 0 <= self.frac_and_pairs <= 1,
            "cells_per_sample": self.cells_per_sample >= self.n_cell_types * 10,
            "frip_min": 0 < self.frip_min <= self.frip_max < 1,
            "frac_low_quality": 0 <= self.frac_low_quality < 0.5,
            "hic_bin_size": self.hic_bin_size >= 1000,
            "barcode_whitelist_size": self.barcode_whitelist_size
            >= 2 * (self.cells_per_sample + self.empty_droplets_per_sample),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(f"simulate: invalid parameter(s): {values}")

    @property
    def genome_size(self) -> int:
        return int(self.genome_size_mb * 1e6)


# hg38 autosome lengths (Mb); the simulated genome keeps their proportions.
_HG38_AUTOSOME_MB = (
    248.96, 242.19, 198.30, 190.21, 181.54, 170.81, 159.35, 145.14, 138.39, 133.80, 135.09,
    133.28, 114.36, 107.04, 101.99, 90.34, 83.26, 80.37, 58.62, 64.44, 46.71, 50.82,
)

PRESETS: dict[str, dict[str, Any]] = {
    # The default demo, sized so `make demo` runs in about 4 minutes on 2 cores: demo_full's 6
    # cell types and 2 x 1000 cells (OR groups need ~200 training cells of their type to be
    # learned), with two thirds of its genes, CREs and genome. Four cell types with as many or
    # more cells per type lost the surrogate's OR redundancy (median OR ratio 0.94-1.13, against
    # 1.51 here; benchmarks/RESULTS.md), for reasons not yet known.
    "demo": {
        "n_genes": 160,
        "n_tfs": 8,
        "n_orphan_cres": 1000,
        "genome_size_mb": 20.0,
    },
    # The demo as it was up to 2026-12: 6 cell types, 2 x 1000 cells, 240 genes, ~2.5k CREs
    # (config/demo_full/config.yaml; issue 15's first figures were measured on it).
    "demo_full": {},
    # The paper's scale: 10,266 cells, ~127k peaks, 3,000 genes, 8 cell types.
    "paper": {
        "n_chromosomes": 22,
        "genome_size_mb": 1500.0,
        "n_genes": 3000,
        "n_tfs": 120,
        "n_cell_types": 8,
        "n_markers_per_type": 10,
        "n_orphan_cres": 115_000,
        "orphan_open_scale": 0.2,
        "cells_per_sample": 5133,
        "empty_droplets_per_sample": 8000,
        "fragments_per_open_cre": 0.5,
        "median_umis": 4000.0,
        "hic_bin_size": 25_000,
        "hic_contacts_per_bin": 40.0,
        "barcode_whitelist_size": 100_000,
    },
    # SNARE-seq-like depth (issue 16): a median of ~100 open peaks and ~300 UMIs per cell, 13 cell
    # types. Per cell, sparse ATAC says little about any one CRE; the cell's type is still in the
    # sum of many weak signals, which is what a model of this data must use.
    "sparse": {
        "n_cell_types": 13,
        "n_markers_per_type": 3,
        "cells_per_sample": 2000,
        "empty_droplets_per_sample": 2500,
        "fragments_per_open_cre": 0.1,
        "median_umis": 300.0,
    },
}


def make_params(preset: str = "demo", seed: int = 0, **overrides: Any) -> SimulationParams:
    """Build parameters from a named preset, a seed and keyword overrides.

    Parameters
    ----------
    preset
        A key of :data:`PRESETS`; its values replace the :class:`SimulationParams` defaults.
    seed
        The simulation seed.
    **overrides
        :class:`SimulationParams` fields (other than ``seed``) set on top of the preset.

    Returns
    -------
    SimulationParams
        The validated parameters.

    Raises
    ------
    ValueError
        When ``preset`` is unknown, an override names no field, or a value is out of range
        (:class:`SimulationParams` names every invalid field).
    """
    if preset not in PRESETS:
        raise ValueError(f"simulate.preset: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    known = {f.name for f in dataclasses.fields(SimulationParams)} - {"seed"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"simulate.overrides: unknown parameter(s) {unknown}; known: {sorted(known)}")
    return SimulationParams(seed=seed, **{**PRESETS[preset], **overrides})


def cell_type_names(n_cell_types: int) -> list[str]:
    """Names of the simulated cell types: CT1, CT2, ...

    Parameters
    ----------
    n_cell_types
        How many cell types.

    Returns
    -------
    list of str
        ``["CT1", ..., f"CT{n_cell_types}"]``.
    """
    return [f"CT{i + 1}" for i in range(n_cell_types)]


def sample_seed_sequence(seed: int, sample: str, *streams: int) -> np.random.SeedSequence:
    """A seed sequence for one sample (and sub-stream) keyed by the sample's name, not its row.

    Parameters
    ----------
    seed
        The simulation seed.
    sample
        Sample name; its SHA-256 keys the sequence, so a sample's draws do not depend on the other
        samples or their order.
    *streams
        Sub-stream numbers, appended to the entropy.

    Returns
    -------
    numpy.random.SeedSequence
        Seeded with ``[seed, 1, digest, *streams]`` (the 1 keeps it apart from the sample-independent
        model streams).
    """
    digest = int.from_bytes(hashlib.sha256(sample.encode()).digest()[:8], "little")
    return np.random.SeedSequence([seed, 1, digest, *streams])


def model_seed_sequence(seed: int, stream: int) -> np.random.SeedSequence:
    """A seed sequence for one shared (sample-independent) part of the model."""
    return np.random.SeedSequence([seed, 0, stream])
