"""Bad config and bad sample sheets fail fast: at parse time, before any job runs, naming the problem.

The CLI tests run the real ``snakemake`` on a copy of the workflow in a temporary directory (never
in the repository), without ``-n``, so a check that let bad input through would start jobs and
create ``results/``. The unit tests call :mod:`grids.workflow.config` directly.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from grids.workflow.config import (
    SAMPLE_NAME_PATTERN,
    ConfigError,
    check_config,
    check_samples,
    read_samples,
    read_targets,
)

REPO = Path(__file__).resolve().parents[1]
DEMO_SAMPLES = ("demo1", "demo2")


def default_config() -> dict[str, Any]:
    """The shipped config/config.yaml (the simulated demo), as a fresh dict."""
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def demo_row(sample: str) -> dict[str, str]:
    """A sample-sheet row for a simulated sample (paths the workflow itself produces)."""
    root = f"results/simulated/{sample}"
    return {
        "sample": sample,
        "fragments": f"{root}/fragments.tsv.gz",
        "rna": f"{root}/filtered_feature_bc_matrix.h5",
        "cell_types": f"{root}/cell_types.tsv",
    }


def write_sheet(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> None:
    """Write rows as a TSV sample sheet; absent cells stay empty."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["\t".join(columns)] + ["\t".join(row.get(col, "") for col in columns) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# A parse takes ~2 s; a check that let bad input through would start the simulator (minutes).
SNAKEMAKE_TIMEOUT_S = 60


def run_snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the Snakemake CLI of the interpreter running the tests; fail if it runs too long."""
    command = [sys.executable, "-m", "snakemake", *args]
    # Own process group, so a timeout also stops any job Snakemake has started.
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=SNAKEMAKE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"snakemake ran over {SNAKEMAKE_TIMEOUT_S} s (jobs started?):\n{stdout}{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def copy_workflow(dest: Path) -> Path:
    """Copy the entry point, rules, schemas, config and conda envs into ``dest``."""
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake")
    shutil.copy2(REPO / "Snakefile", dest / "Snakefile")
    for name in ("workflow", "config", "envs"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the workflow shared by the failing cases; each case adds its own config file."""
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


# --- CLI cases -----------------------------------------------------------------------------
# Each edit gets the default config and the work dir, changes the config in place (and may write
# a sample sheet or input file there); the listed strings must all appear in Snakemake's output.
Edit = Callable[[dict[str, Any], Path], None]


def _set(*keys_and_value: Any) -> Edit:
    """An edit that sets config[k1][k2]... = value."""
    *keys, value = keys_and_value

    def edit(config: dict[str, Any], workdir: Path) -> None:
        node = config
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def _sheet(name: str, rows: list[dict[str, str]], columns: list[str] | None = None) -> Edit:
    """An edit that points config key samples at a new sheet config/{name}.tsv."""

    def edit(config: dict[str, Any], workdir: Path) -> None:
        write_sheet(workdir / "config" / f"{name}.tsv", rows, columns)
        config["samples"] = f"config/{name}.tsv"

    return edit


def _sheet_with_real_fragments(name: str, row: dict[str, str]) -> Edit:
    """Like _sheet with the demo rows plus ``row``, after creating data/real1.fragments.tsv.gz."""
    write = _sheet(name, [demo_row("demo1"), demo_row("demo2"), row])

    def edit(config: dict[str, Any], workdir: Path) -> None:
        (workdir / "data").mkdir(exist_ok=True)
        (workdir / "data" / "real1.fragments.tsv.gz").write_bytes(b"")
        write(config, workdir)

    return edit


CLI_CASES: list[tuple[str, Edit, tuple[str, ...]]] = [
    ("negative_L", _set("explain", "L", [-5, 10]), ("['explain']['L']", "-5", "minimum")),
    ("unknown_method", _set("explain", "methods", ["grids", "shap"]), ("['explain']['methods']", "'shap'")),
    ("genes_not_a_mode", _set("explain", "genes", "some"), ("['explain']['genes']", "'some'")),
    ("genes_cell_types_clash", _set("explain", "genes_cell_types", ["B cell", "B_cell"]),
     ("config key explain.genes_cell_types", "'B cell' and 'B_cell'")),
    ("typo_top_level_key", _set("explian", {"k": 8}), ("'explian' was unexpected",)),
    ("split_not_1", _set("split", "train", 0.5), ("config key split", "sum to 1", "0.8")),
    ("unknown_preset", _set("simulate", "preset", "huge"), ("['simulate']['preset']", "'huge'")),
    ("unknown_override", _set("simulate", "overrides", {"n_gnes": 5}), ("simulate.overrides", "n_gnes")),
    (
        "simulated_sample_not_in_sheet",
        _set("simulate", "samples", ["demo1", "demo3"]),
        ("simulate.samples", "demo3", "config/samples.tsv"),
    ),
    ("missing_targets", _set("targets", "config/no_such_targets.tsv"), ("config key targets", "no_such_targets.tsv")),
    ("missing_sheet", _set("samples", "config/no_such_sheet.tsv"), ("config key samples", "no_such_sheet.tsv")),
    ("missing_hic", _set("hic", "files", "CT9", "data/CT9.cool"), ("hic.files.CT9", "data/CT9.cool")),
    ("missing_truth", _set("evaluate", "truth", "truth/links.tsv"), ("evaluate.truth", "truth/links.tsv")),
    ("cross_method_not_run", _set("evaluate", "cross_method", "sage2"), ("evaluate.cross_method", "'sage2'")),
    ("negative_soft_hit_distance", _set("evaluate", "soft_hit_distance", -1),
     ("['evaluate']['soft_hit_distance']", "minimum")),
    (
        "missing_gtf",
        _set("genome", "gtf", "ref/genes.gtf"),
        ("genome.gtf", "ref/genes.gtf"),
    ),
    (
        "missing_rna",
        _sheet_with_real_fragments(
            "missing_rna", {"sample": "real1", "fragments": "data/real1.fragments.tsv.gz", "rna": "data/real1.h5"}
        ),
        ("sample 'real1'", "column 'rna'", "data/real1.h5"),
    ),
    (
        "missing_fragments",
        _sheet(
            "missing_fragments",
            [demo_row("demo1"), demo_row("demo2"), {"sample": "real1", "fragments": "data/nope.tsv.gz", "rna": "x.h5"}],
        ),
        ("sample 'real1'", "column 'fragments'", "data/nope.tsv.gz"),
    ),
    (
        "duplicate_sample",
        _sheet("duplicate", [demo_row("demo1"), demo_row("demo1"), demo_row("demo2")]),
        ("duplicate.tsv", "listed twice", "demo1"),
    ),
    (
        "illegal_sample_name",
        _sheet("illegal", [demo_row("demo1"), demo_row("demo2"), {**demo_row("demo2"), "sample": "a#b"}]),
        ("illegal.tsv", "'sample'", "a#b"),
    ),
    (
        "row_without_atac",
        _sheet_with_real_fragments("no_atac_cell", {"sample": "real1", "rna": "data/real1.fragments.tsv.gz"}),
        ("sample 'real1'", "fragments, bam, atac_matrix"),
    ),
    (
        "sheet_without_atac_columns",
        _sheet("no_atac_column", [demo_row(s) for s in DEMO_SAMPLES], columns=["sample", "rna", "cell_types"]),
        ("sample 'demo1'", "fragments, bam, atac_matrix"),
    ),
    (
        "sheet_unknown_column",
        _sheet("unknown_column", [{**demo_row(s), "ATAC": "x"} for s in DEMO_SAMPLES]),
        ("unknown_column.tsv", "'ATAC'"),
    ),
]


@pytest.mark.parametrize("name, edit, expected", CLI_CASES, ids=[case[0] for case in CLI_CASES])
def test_bad_input_stops_before_any_job(workdir: Path, name: str, edit: Edit, expected: tuple[str, ...]) -> None:
    config = copy.deepcopy(default_config())
    edit(config, workdir)
    (workdir / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    # No -n: if the check let this through, jobs would run and write results/ and logs/.
    result = run_snakemake(workdir, "--cores", "1", "--configfile", f"{name}.yaml")
    output = result.stdout + result.stderr

    assert result.returncode != 0, output
    for text in expected:
        assert text in output, f"{text!r} not in output:\n{output}"
    assert "Building DAG of jobs" not in output, output
    assert not (workdir / "results").exists()
    assert not (workdir / "logs").exists()


def test_default_config_dry_run(tmp_path: Path) -> None:
    """Positive control: the unmodified copy parses and plans the simulator jobs."""
    workdir = copy_workflow(tmp_path)
    result = run_snakemake(workdir, "-n")
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    stats = output[output.index("Job stats:") :]
    assert "simulate_sample" in stats and "simulate_hic" in stats, output
    assert not (workdir / "results").exists()


# --- Unit tests of grids.workflow.config ---------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, so relative paths never resolve against the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sample_name_pattern_matches_schema() -> None:
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "samples.schema.yaml").read_text())
    assert schema["properties"]["sample"]["pattern"] == SAMPLE_NAME_PATTERN


def test_check_config_accepts_demo(in_tmp: Path) -> None:
    check_config(default_config())


def test_check_config_split(in_tmp: Path) -> None:
    config = default_config()
    config["split"]["test"] = 0.3
    with pytest.raises(ConfigError, match=r"config key split: .*sum to 1.*= 1\.1"):
        check_config(config)


def test_check_config_real_data_needs_genome_files(in_tmp: Path) -> None:
    # Without simulated samples, the demo's genome paths are no longer produced by the workflow.
    config = default_config()
    config["simulate"]["samples"] = []
    with pytest.raises(ConfigError, match=r"genome\.gtf: file not found: results/simulated/demo1/genes\.gtf"):
        check_config(config)


def test_read_samples_keeps_hash_in_name(in_tmp: Path) -> None:
    # Regression: pandas' comment="#" used to cut "a#b" to "a" and drop the rest of the row.
    sheet = in_tmp / "samples.tsv"
    sheet.write_text("# a comment line\nsample\tfragments\trna\na#b\tf.tsv.gz\tr.h5\n")
    with pytest.raises(ConfigError, match=r"column 'sample'.*'a#b'"):
        read_samples(sheet)


def test_check_samples(in_tmp: Path) -> None:
    sheet = in_tmp / "samples.tsv"
    write_sheet(sheet, [demo_row("demo1"), demo_row("demo2")], columns=["sample", "fragments", "rna"])
    checked = check_samples(read_samples(sheet), default_config(), sheet)
    assert list(checked.index) == list(DEMO_SAMPLES)
    assert (checked["bam"] == "").all()

    write_sheet(sheet, [demo_row("demo1"), demo_row("demo2"), {"sample": "s3", "bam": "s3.bam", "rna": "s3.h5"}])
    with pytest.raises(ConfigError, match=r"sample 's3', column 'bam': file not found: s3\.bam"):
        check_samples(read_samples(sheet), default_config(), sheet)


def test_read_targets_columns(in_tmp: Path) -> None:
    targets = in_tmp / "targets.tsv"
    targets.write_text("celltype\tgene\nCT1\tSG0001\n")
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['cell_type'\]"):
        read_targets(targets)
