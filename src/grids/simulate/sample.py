"""Generate one simulated multiome sample and write it in the formats real pipelines produce."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..fragments import merge_duplicate_fragments
from ..intervals import fragment_in_intervals
from ..io import FragmentsWriter, atomic_output, write_10x_h5, write_chrom_sizes, write_gtf, write_tsv
from .hic import write_hic_cool
from .model import MITO_GENES, RegulatoryModel, build_regulatory_model
from .params import SimulationParams, model_seed_sequence, sample_seed_sequence

__all__ = ["simulate_sample", "SampleOutputs", "barcode_whitelist", "sample_output_paths", "sample_output_files"]

log = logging.getLogger(__name__)

_CELL_CHUNK = 2048
# Tn5 fragment-length mixture: nucleosome-free, mono- and di-nucleosome.
_CRE_LENGTH_MIX = (0.6, 0.3, 0.1)
_BACKGROUND_LENGTH_MIX = (0.3, 0.5, 0.2)
_EMPTY_FRIP = 0.15


@dataclass(frozen=True)
class SampleOutputs:
    """Paths written for one simulated sample (the docs/architecture.md §3 layout)."""

    root: Path

    @property
    def fragments(self) -> Path:
        return self.root / "fragments.tsv.gz"

    @property
    def rna_h5(self) -> Path:
        return self.root / "filtered_feature_bc_matrix.h5"

    @property
    def gtf(self) -> Path:
        return self.root / "genes.gtf"

    @property
    def chrom_sizes(self) -> Path:
        return self.root / "chrom.sizes"

    @property
    def cell_types(self) -> Path:
        return self.root / "cell_types.tsv"

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    def hic(self, cell_type: str) -> Path:
        return self.root / "hic" / f"{cell_type}.cool"


def sample_output_paths(root: str | Path, cell_types: list[str]) -> dict[str, str | list[str]]:
    """Every file ``simulate_sample`` writes, keyed by role (used by the Snakemake rule).

    Parameters
    ----------
    root
        The sample's output folder (``outdir`` of :func:`simulate_sample`).
    cell_types
        The model's cell types, one ``.cool`` each.

    Returns
    -------
    dict
        Role -> path as str: ``fragments``, ``fragments_index``, ``rna``, ``gtf``, ``chrom_sizes``,
        ``cell_types``, ``links``, ``cres``, ``genes``, ``cells``, ``markers``, ``markers_json``, and
        ``hic`` -> the list of ``hic/{cell_type}.cool`` paths in the order of ``cell_types``.
    """
    out = SampleOutputs(Path(root))
    return {
        "fragments": str(out.fragments),
        "fragments_index": f"{out.fragments}.tbi",
        "rna": str(out.rna_h5),
        "gtf": str(out.gtf),
        "chrom_sizes": str(out.chrom_sizes),
        "cell_types": str(out.cell_types),
        "links": str(out.truth / "links.tsv"),
        "cres": str(out.truth / "cres.tsv"),
        "genes": str(out.truth / "genes.tsv"),
        "cells": str(out.truth / "cells.tsv"),
        "markers": str(out.truth / "markers.tsv"),
        "markers_json": str(out.truth / "markers.json"),
        "hic": [str(out.hic(c)) for c in cell_types],
    }


def sample_output_files(root: str | Path, cell_types: list[str]) -> list[str]:
    """The same files as :func:`sample_output_paths`, as one flat list.

    Parameters
    ----------
    root
        The sample's output folder.
    cell_types
        The model's cell types.

    Returns
    -------
    list of str
        The paths in the order of :func:`sample_output_paths`, the ``.cool`` files last.
    """
    files: list[str] = []
    for value in sample_output_paths(root, cell_types).values():
        files.extend(value if isinstance(value, list) else [value])
    return files


# ------------------------------------------------------------------------------------------------
def barcode_whitelist(params: SimulationParams) -> np.ndarray:
    """A seeded list of unique 16-mer 10x-style barcodes (``ACGT...-1``).

    Parameters
    ----------
    params
        ``seed`` and ``barcode_whitelist_size`` are used; every sample of a simulation draws from the
        same list.

    Returns
    -------
    numpy.ndarray
        ``barcode_whitelist_size`` distinct str barcodes (16 of A/C/G/T, then ``-1``), in draw order.
    """
    rng = np.random.default_rng(model_seed_sequence(params.seed, 1))
    codes = rng.integers(0, 4**16, size=int(params.barcode_whitelist_size * 1.1) + 16, dtype=np.int64)
    _, first = np.unique(codes, return_index=True)
    codes = codes[np.sort(first)][: params.barcode_whitelist_size]
    digits = (codes[:, None] >> (2 * np.arange(15, -1, -1))) & 3
    letters = np.frombuffer(b"ACGT", dtype="S1")[digits]
    return np.char.add(letters.view("S16").ravel().astype(str), "-1")


def _truncated(rng: np.random.Generator, values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Values outside [low, high) redrawn uniformly inside it (clipping would pile them on the edges)."""
    outside = (values < low) | (values >= high)
    values[outside] = rng.uniform(low, high, int(outside.sum()))
    return values


def _fragment_lengths(rng: np.random.Generator, n: int, mix: tuple[float, float, float]) -> np.ndarray:
    component = rng.choice(3, size=n, p=mix)
    nfr = _truncated(rng, np.exp(rng.normal(np.log(70), 0.35, n)), 20, 147)
    mono = _truncated(rng, rng.normal(200, 22, n), 147, 300)
    di = _truncated(rng, rng.normal(380, 30, n), 300, 550)
    return np.choose(component, [nfr, mono, di]).astype(np.int64)


def _cre_fragments(
    rng: np.random.Generator, centres: np.ndarray, halves: np.ndarray, chrom_len: int
) -> tuple[np.ndarray, np.ndarray]:
    n = len(centres)
    length = _fragment_lengths(rng, n, _CRE_LENGTH_MIX)
    mid = centres + np.round(rng.normal(0.0, 1.0, n) * halves / 2).astype(np.int64)
    start = np.clip(mid - length // 2, 0, chrom_len - length)
    return start, start + length


def _background_fragments(rng: np.random.Generator, n: int, chrom_len: int) -> tuple[np.ndarray, np.ndarray]:
    length = _fragment_lengths(rng, n, _BACKGROUND_LENGTH_MIX)
    start = (rng.random(n) * (chrom_len - length)).astype(np.int64)
    return start, start + length


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p) - np.log1p(-p)


@dataclass
class _Cells:
    barcodes: np.ndarray  # all barcodes of the sample (cells then empty droplets), unsorted
    cell_type: np.ndarray  # index into cell types; -1 for empty droplets
    low_quality: np.ndarray
    depth: np.ndarray  # expected fragments per open CRE (x CRE strength)
    frip: np.ndarray  # target FRiP
    umis: np.ndarray
    mito: np.ndarray
    module_noise: np.ndarray  # (cells, modules) co-accessibility shifts on the logit scale
    empty_total: np.ndarray  # fragments per empty droplet

    @property
    def n_cells(self) -> int:
        return int((self.cell_type >= 0).sum())


def _draw_cells(model: RegulatoryModel, sample: str, rng: np.random.Generator) -> _Cells:
    params = model.params
    n_cells, n_empty, n_types = params.cells_per_sample, params.empty_droplets_per_sample, params.n_cell_types
    whitelist = barcode_whitelist(params)
    barcodes = whitelist[rng.choice(len(whitelist), size=n_cells + n_empty, replace=False)]
    # Composition: every type gets at least half its uniform share.
    share = 0.5 / n_types + 0.5 * rng.dirichlet(np.full(n_types, 4.0))
    cell_type = rng.permutation(np.repeat(np.arange(n_types), rng.multinomial(n_cells - n_types, share) + 1))
    low_quality = rng.random(n_cells) < params.frac_low_quality
    sample_depth = np.exp(rng.normal(0.0, 0.15))
    depth = params.fragments_per_open_cre * sample_depth * np.exp(rng.normal(0.0, 0.35, n_cells))
    frip = rng.uniform(params.frip_min, params.frip_max, n_cells)
    umis = params.median_umis * sample_depth * np.exp(rng.normal(0.0, 0.4, n_cells))
    umis[low_quality] *= 0.25
    mito = rng.beta(4.0, 4.0 / params.mito_fraction - 4.0, n_cells)
    mito[low_quality] = rng.uniform(0.3, 0.7, low_quality.sum())
    n_modules = int(model.cres["module"].max()) + 1
    noise = (params.coaccessibility_sd * rng.standard_normal((n_cells, n_modules))).astype(np.float32)
    empty_total = np.clip(np.round(np.exp(rng.normal(np.log(25), 0.8, n_empty))), 1, 400).astype(np.int64)
    return _Cells(
        barcodes=barcodes, cell_type=np.concatenate([cell_type, np.full(n_empty, -1)]),
        low_quality=np.concatenate([low_quality, np.zeros(n_empty, bool)]), depth=depth, frip=frip,
        umis=umis, mito=mito, module_noise=noise, empty_total=empty_total,
    )


class _FragmentBatch:
    """Fragments of one chromosome from several sources, merged and sorted at the end."""

    def __init__(self) -> None:
        self.barcodes: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        self.ends: list[np.ndarray] = []

    def add(self, barcodes: np.ndarray, fragments: tuple[np.ndarray, np.ndarray]) -> None:
        self.barcodes.append(barcodes)
        self.starts.append(fragments[0])
        self.ends.append(fragments[1])

    def merged(self, rng: np.random.Generator):
        """(barcode rank, start, end, read count) sorted, with PCR duplicates merged."""
        bc = np.concatenate(self.barcodes)
        dup = rng.geometric(0.6, size=len(bc)).astype(np.int64)
        return merge_duplicate_fragments(bc, np.concatenate(self.starts), np.concatenate(self.ends), reads=dup)


def _simulate_atac(
    model: RegulatoryModel, sample: str, cells: _Cells, fragments_path: Path, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write fragments chromosome by chromosome; return direct drive, unique fragments, in-CRE counts."""
    params = model.params
    n_cells = cells.n_cells
    n_barcodes = len(cells.barcodes)
    order = np.argsort(cells.barcodes, kind="stable")
    rank = np.empty(n_barcodes, dtype=np.int64)
    rank[order] = np.arange(n_barcodes)
    sorted_barcodes = cells.barcodes[order]
    types = cells.cell_type[:n_cells]

    cres = model.cres
    strength = cres["strength"].to_numpy()
    centres = ((cres["start"] + cres["end"]) // 2).to_numpy()
    halves = ((cres["end"] - cres["start"]) // 2).to_numpy()
    # Expected in-CRE fragments per cell (all chromosomes), which sets its background so FRiP ~ target.
    type_yield = (model.access * strength[:, None]).sum(axis=0)
    expected_in = cells.depth * type_yield[types]
    background_total = expected_in * (1.0 - cells.frip) / cells.frip
    genome_len = sum(n for c, n in model.chrom_sizes.items() if c != "chrM")
    ambient = model.access.mean(axis=1) * strength
    slices = model.chrom_slices()
    chrom_ambient = np.array([ambient[slices[c]].sum() if c in slices else 0.0 for c in model.chrom_sizes])
    chrom_len = np.array([n if c != "chrM" else 0 for c, n in model.chrom_sizes.items()], dtype=float)
    empty_rng = np.random.default_rng(sample_seed_sequence(params.seed, sample, 1))
    empty_in = empty_rng.binomial(cells.empty_total, _EMPTY_FRIP)
    empty_in_split = empty_rng.multinomial(empty_in, chrom_ambient / chrom_ambient.sum())
    empty_bg_split = empty_rng.multinomial(cells.empty_total - empty_in, chrom_len / chrom_len.sum())

    drive = np.zeros((n_cells, len(model.genes)))
    n_unique = np.zeros(n_barcodes, dtype=np.int64)
    n_in = np.zeros(n_barcodes, dtype=np.int64)
    logit_access = _logit(model.access)
    leader = model.group_leader
    # In the independent regime grouped CREs take no co-accessibility noise: their correlation
    # is exactly redundant_correlation.
    noise_scale = np.ones(len(cres), dtype=np.float32)
    if params.redundancy_regime == "independent":
        noise_scale[leader >= 0] = 0.0
    header = [f"id={sample}", "description=simulated by grids.simulate", f"seed={params.seed}",
              "pipeline_name=grids-simulate", "reference_path=grids-sim"]
    with FragmentsWriter(fragments_path, header=header) as writer:
        chrom_iter = tqdm(list(enumerate(model.chrom_sizes.items())), desc=f"{sample}: fragments",
                          unit="chrom", disable=not progress)
        for chrom_idx, (chrom, chrom_size) in chrom_iter:
            if chrom not in slices:
                continue
            rng = np.random.default_rng(sample_seed_sequence(params.seed, sample, 2, chrom_idx))
            sl = slices[chrom]
            modules = cres["module"].to_numpy()[sl]
            batch = _FragmentBatch()
            for lo in range(0, n_cells, _CELL_CHUNK):
                hi = min(lo + _CELL_CHUNK, n_cells)
                logits = logit_access[sl][:, types[lo:hi]].T + cells.module_noise[lo:hi][:, modules] * noise_scale[sl]
                draws = rng.random(logits.shape, dtype=np.float32)
                if params.redundant_correlation > 0:
                    draws = _couple_group_members(rng, draws, leader[sl] - sl.start, params.redundant_correlation)
                z = draws < 1.0 / (1.0 + np.exp(-logits))
                drive[lo:hi] += model.direct_drive(z, sl)
                ci, ei = np.nonzero(z)
                n_frag = rng.poisson(cells.depth[lo + ci] * strength[sl][ei])
                ci, ei = np.repeat(ci, n_frag), np.repeat(ei, n_frag)
                batch.add(rank[lo + ci], _cre_fragments(rng, centres[sl][ei], halves[sl][ei], chrom_size))
            n_bg = rng.poisson(background_total * chrom_size / genome_len)
            batch.add(rank[np.repeat(np.arange(n_cells), n_bg)],
                      _background_fragments(rng, int(n_bg.sum()), chrom_size))
            # Empty droplets: ambient fragments, mostly background.
            empties = n_cells + np.arange(len(cells.empty_total))
            e_in = empty_in_split[:, chrom_idx]
            chosen = rng.choice(sl.stop - sl.start, size=int(e_in.sum()), p=ambient[sl] / ambient[sl].sum())
            batch.add(rank[np.repeat(empties, e_in)],
                      _cre_fragments(rng, centres[sl][chosen], halves[sl][chosen], chrom_size))
            e_bg = empty_bg_split[:, chrom_idx]
            batch.add(rank[np.repeat(empties, e_bg)], _background_fragments(rng, int(e_bg.sum()), chrom_size))
            bc, start, end, dup = batch.merged(rng)
            in_cre = fragment_in_intervals(start, end, cres["start"].to_numpy()[sl], ends=cres["end"].to_numpy()[sl])
            n_unique += np.bincount(bc, minlength=n_barcodes)
            n_in += np.bincount(bc[in_cre], minlength=n_barcodes)
            writer.write(chrom, start, end, sorted_barcodes[bc], dup)
    # Back from sorted-barcode rank to the sample's own order.
    return drive, n_unique[rank], n_in[rank]


def _couple_group_members(rng: np.random.Generator, draws: np.ndarray, leader: np.ndarray,
                          correlation: float) -> np.ndarray:
    """Each grouped CRE reuses its group leader's uniform draw in a ``correlation`` share of the
    cells, so members with equal open rates are correlated by about ``correlation``."""
    members = np.flatnonzero(leader >= 0)
    members = members[leader[members] != members]
    if len(members) == 0:
        return draws
    share = rng.random((draws.shape[0], len(members))) < correlation
    draws[:, members] = np.where(share, draws[:, leader[members]], draws[:, members])
    return draws


def _simulate_rna(model: RegulatoryModel, cells: _Cells, drive: np.ndarray, rng: np.random.Generator):
    """Negative-binomial counts (cells x (genes + MT genes)) from the regulatory drive."""
    params = model.params
    n_cells = cells.n_cells
    umis, mito = cells.umis[:n_cells], cells.mito
    mu = model.base * np.exp(model.add_indirect(drive)) / model.rate_normaliser
    mu *= (umis * (1.0 - mito))[:, None]
    mt_share = np.exp(np.random.default_rng(model_seed_sequence(params.seed, 3)).normal(0, 0.5, len(MITO_GENES)))
    mt_share /= mt_share.sum()
    mu = np.hstack([mu, (umis * mito)[:, None] * mt_share[None, :]])
    theta = params.nb_theta
    counts = rng.negative_binomial(theta, theta / (theta + mu))
    return counts.astype(np.int32)


def _gtf_records(model: RegulatoryModel) -> pd.DataFrame:
    """Gene, transcript and exon records (1-based, inclusive) for every gene, MT genes on chrM."""
    rng = np.random.default_rng(model_seed_sequence(model.params.seed, 4))
    genes = model.genes
    mito = pd.DataFrame(
        [(name, f"SIMG9{i:010d}", "chrM", start - 1, end, strand)
         for i, (name, start, end, strand) in enumerate(MITO_GENES)],
        columns=["gene", "gene_id", "chrom", "start", "end", "strand"],
    )
    rows = []
    order = {c: i for i, c in enumerate(model.chrom_sizes)}
    for g in pd.concat([genes[mito.columns], mito], ignore_index=True).itertuples(index=False):
        gene_attr = f'gene_id "{g.gene_id}"; gene_name "{g.gene}"; gene_type "protein_coding";'
        tx_attr = gene_attr.replace("gene_id", "transcript_id", 0)
        tx_attr = (f'gene_id "{g.gene_id}"; transcript_id "{g.gene_id.replace("SIMG", "SIMT")}"; '
                   f'gene_name "{g.gene}"; gene_type "protein_coding";')
        start, end = int(g.start) + 1, int(g.end)
        rows.append((g.chrom, "gene", start, end, g.strand, gene_attr))
        rows.append((g.chrom, "transcript", start, end, g.strand, tx_attr))
        length = end - start + 1
        n_exons = 1 if g.chrom == "chrM" else int(rng.integers(2, 9))
        inner = (np.sort(rng.choice(np.arange(start + 200, max(end - 200, start + 201)), size=max(n_exons - 2, 0),
                                    replace=False))
                 if n_exons > 2 and length > 800 + 300 * n_exons else np.array([], int))
        exon_starts = np.concatenate([[start], inner, [max(end - 150, start)]]) if n_exons > 1 else np.array([start])
        for j, es in enumerate(np.unique(exon_starts)):
            ee = end if es == exon_starts[-1] else min(int(es) + 149, end)
            rows.append((g.chrom, "exon", int(es), int(ee), g.strand, f'{tx_attr} exon_number "{j + 1}";'))
    records = pd.DataFrame(rows, columns=["chrom", "feature", "start", "end", "strand", "attributes"])
    records["_rank"] = records["chrom"].map(order)
    records["_type"] = records["feature"].map({"gene": 0, "transcript": 1, "exon": 2})
    # Keep each gene's block together (gene, transcript, exons), genes in genome order.
    records["_gene_start"] = records.groupby((records["_type"] == 0).cumsum())["start"].transform("first")
    records = records.sort_values(["_rank", "_gene_start"], kind="stable")
    return records.drop(columns=["_rank", "_type", "_gene_start"])


def _markers_json(model: RegulatoryModel) -> dict:
    """The simulated markers in Pegasus ``infer_cell_types`` JSON format."""
    return {
        "title": f"grids simulator markers (seed {model.params.seed})",
        "cell_types": [
            {"name": ct, "markers": [{"genes": [f"{g}+" for g in genes], "weight": 1.0,
                                      "comment": "planted type-specific promoter and enhancers"}]}
            for ct, genes in model.markers.items()
        ],
    }


def write_reference_files(model: RegulatoryModel, out: SampleOutputs) -> None:
    """Genome-level files: GTF, chrom sizes and the ground-truth tables."""
    write_gtf(_gtf_records(model), out.gtf, source="grids-sim")
    write_chrom_sizes(model.chrom_sizes, out.chrom_sizes)
    write_tsv(model.links(), out.truth / "links.tsv")
    access = pd.DataFrame(model.access.round(4), columns=[f"p_open_{c}" for c in model.cell_types])
    write_tsv(pd.concat([model.cres.round({"weight": 4, "strength": 4}), access], axis=1), out.truth / "cres.tsv")
    write_tsv(model.genes.round({"base": 6, "w_promoter": 4, "w_tf": 4}), out.truth / "genes.tsv")
    markers = pd.DataFrame([(ct, g) for ct, genes in model.markers.items() for g in genes],
                           columns=["cell_type", "gene"])
    write_tsv(markers, out.truth / "markers.tsv")
    with atomic_output(out.truth / "markers.json") as tmp:
        tmp.write_text(json.dumps(_markers_json(model), indent=2) + "\n")


def simulate_sample(
    params: SimulationParams,
    sample: str,
    outdir: str | Path,
    *,
    model: RegulatoryModel | None = None,
    hic: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Simulate one multiome sample into ``outdir`` and return its per-barcode truth table.

    Writes the 10x fragments file (bgzip + tabix), the 10x ``filtered_feature_bc_matrix.h5``,
    ``genes.gtf``, ``chrom.sizes``, ``cell_types.tsv``, one balanced ``hic/{cell_type}.cool``
    per cell type (unless ``hic=False``; see :func:`write_hic_cool`) and ``truth/*``.
    Output bytes depend only on ``params`` and ``sample``.

    Parameters
    ----------
    params
        Simulation parameters.
    sample
        Sample name; it seeds the sample's draws (:func:`grids.simulate.params.sample_seed_sequence`).
    outdir
        The sample's folder (files as :func:`sample_output_paths` lists them).
    model
        The regulatory model of ``params``, to share one between samples; None: built here with
        :func:`grids.simulate.model.build_regulatory_model`.
    hic
        Also write the per-cell-type ``.cool`` files.
    progress
        Show tqdm progress bars.

    Returns
    -------
    pandas.DataFrame
        The table written to ``truth/cells.tsv``: one row per barcode, cells and empty droplets,
        sorted by barcode, with ``barcode``, ``cell_type`` (``"empty"`` for an empty droplet),
        ``is_cell``, ``low_quality``, ``n_fragments`` (unique fragments), ``frip``, ``n_umis`` and
        ``pct_mito`` (0 for empty droplets).
    """
    model = model or build_regulatory_model(params)
    out = SampleOutputs(Path(outdir))
    rng = np.random.default_rng(sample_seed_sequence(params.seed, sample, 0))
    cells = _draw_cells(model, sample, rng)
    n_cells = cells.n_cells
    log.info("%s: %d cells, %d empty droplets", sample, n_cells, len(cells.empty_total))

    drive, n_unique, n_in = _simulate_atac(model, sample, cells, out.fragments, progress)
    counts = _simulate_rna(model, cells, drive, rng)

    feature_names = list(model.genes["gene"]) + [m[0] for m in MITO_GENES]
    feature_ids = list(model.genes["gene_id"]) + [f"SIMG9{i:010d}" for i in range(len(MITO_GENES))]
    intervals = [f"{r.chrom}:{r.start}-{r.end}" for r in model.genes.itertuples()] + [
        f"chrM:{s - 1}-{e}" for _, s, e, _ in MITO_GENES
    ]
    # Cell Ranger lists barcodes of the filtered matrix in sorted order.
    cell_order = np.argsort(cells.barcodes[:n_cells], kind="stable")
    write_10x_h5(
        counts[cell_order], cells.barcodes[:n_cells][cell_order], feature_ids, feature_names=feature_names,
        path=out.rna_h5, genome="grids-sim", intervals=intervals,
    )
    types = np.array(model.cell_types + ["empty"])[cells.cell_type]
    write_tsv(pd.DataFrame({"barcode": cells.barcodes[:n_cells][cell_order], "cell_type": types[:n_cells][cell_order]}),
              out.cell_types)
    n_umis = counts.sum(axis=1)
    n_mito = counts[:, len(model.genes):].sum(axis=1)
    truth = pd.DataFrame(
        {
            "barcode": cells.barcodes,
            "cell_type": types,
            "is_cell": cells.cell_type >= 0,
            "low_quality": cells.low_quality,
            "n_fragments": n_unique,
            "frip": np.round(n_in / np.maximum(n_unique, 1), 6),
            "n_umis": np.concatenate([n_umis, np.zeros(len(cells.empty_total), int)]),
            "pct_mito": np.round(np.concatenate([100.0 * n_mito / np.maximum(n_umis, 1),
                                                 np.zeros(len(cells.empty_total))]), 4),
        }
    ).sort_values("barcode", kind="stable")
    write_tsv(truth, out.truth / "cells.tsv")
    write_reference_files(model, out)
    for cell_type in tqdm(model.cell_types if hic else [], desc=f"{sample}: hic", disable=not progress):
        write_hic_cool(model, cell_type, out.hic(cell_type))
    return truth
