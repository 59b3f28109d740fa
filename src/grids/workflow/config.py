"""Checks on the workflow configuration that JSON schema cannot express.

The Snakefile validates ``config/config.yaml`` and the sample sheet against the schemas in
``workflow/schemas`` first (types, ranges, enums, defaults); the functions here then check
cross-key rules and files, and raise :class:`ConfigError` with the offending key named.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "ConfigError",
    "SAMPLE_FILE_COLUMNS",
    "SAMPLE_NAME_PATTERN",
    "check_config",
    "read_samples",
    "check_samples",
    "read_targets",
]

SAMPLE_FILE_COLUMNS = ("fragments", "bam", "atac_matrix", "rna", "cell_types")
ATAC_COLUMNS = ("fragments", "bam", "atac_matrix")
# Same pattern as workflow/schemas/samples.schema.yaml; checked before the schema so the message
# names the sample and says why ("#" joins sample and barcode in cell names).
SAMPLE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SIMULATED_ROOT = "results/simulated"



class ConfigError(ValueError):
    """A configuration value or input file is unusable; the message names the key and file."""


def _simulated_paths(config: Mapping[str, Any]) -> set[str]:
    """Every path the simulate rules will produce (exempt from existence checks)."""
    from grids.simulate import cell_type_names, make_params, sample_output_files

    samples = config.get("simulate", {}).get("samples", [])
    if not samples:
        return set()
    sim = config["simulate"]
    n_types = make_params(sim.get("preset", "demo"), sim.get("seed", 0), **sim.get("overrides", {})).n_cell_types
    cell_types = cell_type_names(n_types)
    return {str(Path(p)) for sample in samples for p in sample_output_files(f"{SIMULATED_ROOT}/{sample}", cell_types)}


def _require_file(path: str, key: str, produced: Collection[str]) -> None:
    if not path:
        raise ConfigError(f"config key {key}: a path is required")
    if str(Path(path)) not in produced and not Path(path).exists():
        raise ConfigError(f"config key {key}: file not found: {path}")


def _read_tsv(path: str | Path) -> pd.DataFrame:
    """Read a TSV as strings, skipping blank lines and lines that start with "#".

    pandas' ``comment="#"`` would also cut a line at a "#" inside a cell, silently turning the
    sample name "a#b" into "a" and dropping the rest of its row.
    """
    lines = Path(path).read_text().splitlines(keepends=True)
    kept = "".join(line for line in lines if not line.lstrip().startswith("#"))
    return pd.read_csv(io.StringIO(kept), sep="\t", dtype=str, skip_blank_lines=True)


def check_config(config: Mapping[str, Any]) -> None:
    """Cross-key checks on a schema-validated config (defaults already filled in).

    Parameters
    ----------
    config
        The workflow config after schema validation. Input files must exist unless the simulate
        rules of ``simulate.samples`` will write them.

    Raises
    ------
    ConfigError
        When ``split`` train + val + test is not 1; ``simulate`` (with samples) has unusable preset
        or overrides; a required file is missing (``genome.gtf``, ``genome.chrom_sizes``, and when set
        ``genome.blacklist``, each of ``hic.files``, ``evaluate.truth``, and a marker ``.json`` of
        ``rna.markers`` when ``rna.labels`` is ``infer``); ``evaluate.cross_method`` or
        ``evaluate.track_method`` is not in ``explain.methods``; ``explain.genes`` or
        ``explain.genes_cell_types`` is malformed; ``rna.markers`` is neither a Pegasus preset nor a
        ``.json`` file; or ``rna.max_genes`` does not exceed ``rna.min_genes``.
    """
    split = config["split"]
    total = split["train"] + split["val"] + split["test"]
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ConfigError(
            f"config key split: train + val + test must sum to 1, got "
            f"{split['train']} + {split['val']} + {split['test']} = {total:g}"
        )
    sim = config["simulate"]
    if sim["samples"]:
        from grids.simulate import make_params

        try:
            make_params(sim["preset"], sim["seed"], **sim["overrides"])
        except (TypeError, ValueError) as err:
            raise ConfigError(f"config key simulate: {err}") from err
    produced = _simulated_paths(config)
    genome = config["genome"]
    _require_file(genome["gtf"], "genome.gtf", produced)
    _require_file(genome["chrom_sizes"], "genome.chrom_sizes", produced)
    if genome["blacklist"]:
        _require_file(genome["blacklist"], "genome.blacklist", produced)
    for cell_type, path in config["hic"]["files"].items():
        _require_file(path, f"hic.files.{cell_type}", produced)
    evaluate = config["evaluate"]
    if evaluate["truth"]:
        _require_file(evaluate["truth"], "evaluate.truth", produced)
    methods = config["explain"]["methods"]
    for key in ("cross_method", "track_method"):
        if evaluate[key] not in methods:
            raise ConfigError(f"config key evaluate.{key}: {evaluate[key]!r} is not one of explain.methods "
                              f"({', '.join(methods)})")
    _check_genome_wide(config["explain"])
    from grids.rna.labels import PEGASUS_MARKER_SETS

    rna = config["rna"]
    if rna["labels"] == "infer" and rna["markers"] not in PEGASUS_MARKER_SETS:
        if not rna["markers"].endswith(".json"):
            raise ConfigError(
                f"config key rna.markers: {rna['markers']!r} is neither a Pegasus preset "
                f"({', '.join(PEGASUS_MARKER_SETS)}) nor a marker .json file"
            )
        _require_file(rna["markers"], "rna.markers", produced)
    if rna["max_genes"] <= rna["min_genes"]:
        raise ConfigError(f"config key rna.max_genes: must exceed rna.min_genes ({rna['min_genes']})")


def _check_genome_wide(explain: Mapping[str, Any]) -> None:
    """explain.genes (targets, all, an integer N >= 1 or a list of gene names) and
    explain.genes_cell_types (distinct cell types with distinct file names). Whether the genes and
    cell types exist is known only once the paired file does (the checkpoint checks it)."""
    from grids.explain.genome_wide import genes_mode, genome_wide_cell_types

    try:
        genes_mode(explain.get("genes", "targets"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    cell_types = explain.get("genes_cell_types", [])
    if not isinstance(cell_types, list) or not all(isinstance(c, str) and c for c in cell_types):
        raise ConfigError(f"config key explain.genes_cell_types: a list of cell-type names, got {cell_types!r}")
    try:
        genome_wide_cell_types({"genes_cell_types": cell_types}, pd.DataFrame({"cell_type": []}))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def read_samples(path: str | Path) -> pd.DataFrame:
    """Read the sample sheet (TSV) as strings; missing cells become NaN for schema validation.

    Parameters
    ----------
    path
        The sample sheet: tab-separated with a header; blank lines and lines whose first non-blank
        character is ``#`` are skipped (a ``#`` inside a cell is kept).

    Returns
    -------
    pandas.DataFrame
        One row per sample in file order, index 0..n-1, every column as str (NaN for an empty cell).

    Raises
    ------
    ConfigError
        When the file does not exist, has no ``sample`` column, a sample name does not match
        :data:`SAMPLE_NAME_PATTERN`, or a column is neither ``sample`` nor one of
        :data:`SAMPLE_FILE_COLUMNS`.
    """
    if not Path(path).exists():
        raise ConfigError(f"config key samples: sample sheet not found: {path}")
    frame = _read_tsv(path)
    if "sample" not in frame.columns:
        raise ConfigError(f"{path}: no 'sample' column (columns: {', '.join(frame.columns)})")
    bad_names = [name for name in frame["sample"].dropna() if not re.match(SAMPLE_NAME_PATTERN, name)]
    if bad_names:
        raise ConfigError(
            f"{path}: column 'sample': invalid sample name(s) {bad_names}; use letters, digits, _ . - "
            "only (cell barcodes become '{sample}#{barcode}')"
        )
    unknown = sorted(set(frame.columns) - {"sample", *SAMPLE_FILE_COLUMNS})
    if unknown:
        raise ConfigError(
            f"{path}: unknown column(s) {unknown}; allowed: sample, {', '.join(SAMPLE_FILE_COLUMNS)}"
        )
    return frame


def check_samples(samples: pd.DataFrame, config: Mapping[str, Any], path: str | Path) -> pd.DataFrame:
    """Check a schema-validated sample sheet; return it indexed by sample with "" for empty cells.

    Parameters
    ----------
    samples
        The sheet from :func:`read_samples`, validated against the schema; not modified.
    config
        The workflow config (``simulate.samples`` and ``rna.labels`` are read).
    path
        The sample sheet's file, named in errors.

    Returns
    -------
    pandas.DataFrame
        A copy with every column of :data:`SAMPLE_FILE_COLUMNS` (added as ``""`` when absent), ``""``
        for empty cells, indexed by sample name (the ``sample`` column kept), in sheet order.

    Raises
    ------
    ConfigError
        When the sheet lists no sample or a sample twice, a sample of ``simulate.samples`` is not in
        it, ``rna.labels`` is ``given`` and a sample has no ``cell_types`` file, a sample has none of
        ``fragments``, ``bam`` and ``atac_matrix``, or a listed file does not exist (files the
        simulate rules will write excepted).
    """
    samples = samples.copy()
    for column in SAMPLE_FILE_COLUMNS:
        if column not in samples.columns:
            samples[column] = ""
    samples = samples.fillna("")
    if samples.empty:
        raise ConfigError(f"{path}: the sample sheet lists no samples")
    duplicated = samples["sample"][samples["sample"].duplicated()].unique()
    if len(duplicated):
        raise ConfigError(f"{path}: sample name(s) listed twice: {', '.join(duplicated)}")
    missing_sim = sorted(set(config["simulate"]["samples"]) - set(samples["sample"]))
    if missing_sim:
        raise ConfigError(f"config key simulate.samples: {missing_sim} not in the sample sheet {path}")
    produced = _simulated_paths(config)
    if config["rna"]["labels"] == "given":
        unlabelled = samples.loc[samples["cell_types"] == "", "sample"].tolist()
        if unlabelled:
            raise ConfigError(
                f"config key rna.labels is 'given' but sample(s) {unlabelled} have no cell_types file in {path}; "
                "add one (barcode, cell_type) or set rna.labels: infer"
            )
    for row in samples.itertuples(index=False):
        if not any(getattr(row, column) for column in ATAC_COLUMNS):
            raise ConfigError(f"{path}: sample {row.sample!r} needs one of the columns {', '.join(ATAC_COLUMNS)}")
        for column in SAMPLE_FILE_COLUMNS:
            value = getattr(row, column)
            if value and str(Path(value)) not in produced and not Path(value).exists():
                raise ConfigError(f"{path}: sample {row.sample!r}, column {column!r}: file not found: {value}")
    return samples.set_index("sample", drop=False)


def read_targets(path: str | Path) -> pd.DataFrame:
    """Read config/targets.tsv (columns cell_type, gene).

    Parameters
    ----------
    path
        Tab-separated targets file with a header; blank lines and lines whose first non-blank
        character is ``#`` are skipped.

    Returns
    -------
    pandas.DataFrame
        One row per target in file order, index 0..n-1, every column (``cell_type``, ``gene`` and
        any other) as str.

    Raises
    ------
    ConfigError
        When the file does not exist, lacks ``cell_type`` or ``gene``, lists no target, lists a
        (cell_type, gene) pair twice, or two cell types or two targets would map to the same file
        name.
    """
    if not Path(path).exists():
        raise ConfigError(f"config key targets: file not found: {path}")
    frame = _read_tsv(path)
    missing = {"cell_type", "gene"} - set(frame.columns)
    if missing:
        raise ConfigError(f"{path}: missing column(s) {sorted(missing)}; expected cell_type and gene")
    if frame.empty:
        raise ConfigError(f"{path}: no targets listed")
    duplicated = frame[frame.duplicated(["cell_type", "gene"])]
    if len(duplicated):
        pairs = ", ".join(f"{r.cell_type}/{r.gene}" for r in duplicated.itertuples())
        raise ConfigError(f"{path}: target(s) listed twice: {pairs}")
    from grids.explain.tasks import file_name_clash

    clash = file_name_clash(zip(frame["cell_type"], frame["gene"]))
    if clash:
        raise ConfigError(f"{path}: {clash}")
    return frame
