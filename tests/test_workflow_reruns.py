"""Results depend only on the settings that change them (issue 16): a performance-only setting
reruns nothing, and dropping or adding an explain method reruns no other method's shards.

The workflow tests work on Snakemake's own change detection (params, input, mtime, code) in a
copy of the finished demo run, with dry runs only.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_workflow, snakemake
from grids.explain.tasks import METHOD_ONLY_SETTINGS, SHARD_LAYOUT_SETTINGS, ExplainTask, shard_settings

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
EXPLAIN_KEYS = set(SCHEMA["properties"]["explain"]["properties"])
METHODS = SCHEMA["properties"]["explain"]["properties"]["methods"]["items"]["enum"]
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
# The rules that read every method's shards: the only jobs that dropping or adding a method may rerun
# (besides that method's own shards and tracks when it is added).
ALL_METHOD_RULES = {"evaluate_expression_drop", "evaluate_hit_ratio", "evaluate_hic", "evaluate_ground_truth",
                    "evaluate_redundancy_calls", "all"}


# ---- which explain settings a shard is given (no workflow run) --------------------------------

def test_every_setting_the_shard_runner_reads_reaches_the_methods_that_read_it():
    grids = REPO / "src" / "grids"
    source = (grids / "workflow" / "stages" / "explain.py").read_text() + (grids / "explain" / "methods.py").read_text()
    read = set(re.findall(r'settings(?:\.get\(|\[)"(\w+)"', source))
    assert {"L", "beta", "k", "steps", "seed", "window", "sage_max_peaks"} <= read
    assert read <= EXPLAIN_KEYS - SHARD_LAYOUT_SETTINGS, "the runner reads a key no shard is given"
    assert set(METHOD_ONLY_SETTINGS) <= EXPLAIN_KEYS and set().union(*METHOD_ONLY_SETTINGS.values()) <= set(METHODS)


def test_the_schema_lists_exactly_the_registered_methods():
    """The config schema's method enums (explain.methods, redundancy.methods, ...) and the
    registry (grids.explain.methods) name the same methods, in the same order."""
    from grids.explain.methods import METHODS as REGISTERED

    enums = [prop["items"]["enum"] for block in SCHEMA["properties"].values() if isinstance(block, dict)
             for prop in block.get("properties", {}).values()
             if isinstance(prop, dict) and prop.get("type") == "array"
                and "grids" in prop.get("items", {}).get("enum", [])]
    assert len(enums) >= 2 and all(enum == list(REGISTERED) for enum in enums), enums
    assert set(CONFIG["explain"]["methods"]) <= set(REGISTERED)


def test_shard_settings_hold_only_what_decides_that_methods_selections():
    settings = {key: f"value of {key}" for key in EXPLAIN_KEYS}
    genes = [ExplainTask("CT1", "G1")]
    both = [ExplainTask("CT1", "G1"), ExplainTask("CT1", "top100", "set")]
    for method in METHODS:
        kept = shard_settings(method, settings, both)
        assert not set(kept) & SHARD_LAYOUT_SETTINGS  # methods, shard_size, device, ...: never a rerun
        assert {"L", "beta", "top_n_genes"} <= set(kept)
        assert "top_n_genes" not in shard_settings(method, settings, genes)  # gene tasks ignore it
        assert all(kept[k] == settings[k] for k in kept) and list(kept) == sorted(kept)
    assert set(shard_settings("grids", settings, genes)) >= {"k", "steps", "batch_size", "moves", "seed", "window"}
    assert set(shard_settings("random", settings, genes)) == {"L", "beta", "seed"}
    assert set(shard_settings("saliency", settings, genes)) == {"L", "beta"}
    assert "sage_max_peaks" in shard_settings("sage", settings, genes)
    assert "sage_max_peaks" not in shard_settings("lime", settings, genes)
    # A key the runner does not know yet goes to every method: a rerun too many, never a stale result.
    assert all("new_key" in shard_settings(m, {**settings, "new_key": 1}, genes) for m in METHODS)


# ---- the workflow's rerun decisions on a finished demo run (dry runs) --------------------------

@pytest.fixture
def finished_run(demo_run, tmp_path) -> Path:
    """The demo run's outputs, logs and Snakemake metadata (mtimes kept) beside this checkout's
    workflow, in a temporary folder: nothing is written to the demo run itself."""
    if not (demo_run / ".snakemake" / "metadata").is_dir() or not (demo_run / "results").is_dir():
        pytest.skip(f"{demo_run} holds no finished run with Snakemake metadata")
    (tmp_path / "run").mkdir()
    root = copy_workflow(tmp_path / "run")
    for item in ("results", "logs", ".snakemake/metadata"):
        if (demo_run / item).is_dir():
            shutil.copytree(demo_run / item, root / item, symlinks=True)
    # A reused run (GRIDS_TEST_DEMO_RUN) may predate this code or a later retraining: record it as
    # up to date for the current workflow, so that what follows measures only the config changes.
    dry_run(root, "--touch", "--cores", "1")
    assert planned(root) == {}, "the unchanged config plans jobs: a param is not reproducible between runs"
    return root


def dry_run(root: Path, *args: str, overlay: dict | None = None) -> str:
    """``snakemake ARGS`` (``-n`` unless touching) with ``overlay`` merged into config/config.yaml."""
    command = list(args) or ["-n"]
    if overlay is not None:
        path = root / "overlay.yaml"
        path.write_text(yaml.safe_dump(overlay))
        command += ["--configfile", "config/config.yaml", str(path)]
    result = snakemake(root, *command, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def planned(root: Path, overlay: dict | None = None) -> dict[str, int]:
    """rule -> jobs that `snakemake -n` plans; {} when nothing is to be done."""
    output = dry_run(root, overlay=overlay)
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def shard_methods(root: Path, overlay: dict | None = None) -> set[str]:
    """The methods of the explain_shard jobs that `snakemake -n` plans."""
    return set(re.findall(r"wildcards: method=(\w+), shard=\d+", dry_run(root, overlay=overlay)))


def _no_gpu() -> bool:
    from grids.workflow.gpus import visible_gpus

    return not visible_gpus()


@pytest.mark.slow
def test_performance_only_settings_rerun_nothing(finished_run):
    assert planned(finished_run, {"atac": {"chunk_size": CONFIG["atac"]["chunk_size"] // 2}}) == {}
    assert planned(finished_run, {"atac": {"chunk_size": 1000}, "surrogate": {"checkpoint_every": 7}}) == {}
    if _no_gpu():  # on the CPU, auto and cpu are the same computation (on a GPU they differ)
        assert planned(finished_run, {"surrogate": {"device": "cpu"}, "explain": {"device": "cpu"}}) == {}
    # A setting that changes results still reruns its stage and what follows (so the overlay is applied).
    again = planned(finished_run, {"atac": {"macs_qvalue": 0.02}})
    assert again["atac_call_peaks"] == 2 and again["explain_shard"] > 0 and "atac_barcode_qc" not in again
    # The simulator's parameters are the simulate rules' param (once a dataclass, which Snakemake
    # did not record): a new seed resimulates both samples and the Hi-C maps.
    resimulated = planned(finished_run, {"simulate": {"seed": 1}})
    assert resimulated["simulate_sample"] == 2 and resimulated["simulate_hic"] == 1


@pytest.mark.slow
def test_an_edited_blacklist_reruns_the_consensus_peaks(finished_run):
    """genome.blacklist is an input: editing the file (same path) redoes the consensus and what
    follows; a missing file is named before any job runs."""
    blacklist = finished_run / "blacklist.bed"
    blacklist.write_text("chr1\t0\t1000\n")
    overlay = {"genome": {"blacklist": "blacklist.bed"}}
    dry_run(finished_run, "--touch", "--cores", "1", overlay=overlay)
    assert planned(finished_run, overlay) == {}
    time.sleep(1.1)  # a newer mtime than the outputs touched above
    blacklist.write_text("chr1\t0\t2000\n")
    again = planned(finished_run, overlay)
    assert again["atac_consensus_peaks"] == 1 and again["train_surrogate"] == 1, again
    blacklist.unlink()
    path = finished_run / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    result = snakemake(finished_run, "-n", "--configfile", "config/config.yaml", str(path), timeout=600)
    assert result.returncode != 0 and "blacklist.bed" in result.stdout + result.stderr


@pytest.mark.slow
def test_dropping_or_adding_a_method_reruns_no_other_methods_shards(finished_run):
    methods = list(CONFIG["explain"]["methods"])
    kept_for_others = {CONFIG["evaluate"]["cross_method"], CONFIG["evaluate"]["track_method"],
                       *CONFIG["redundancy"]["methods"]}
    dropped = next(m for m in reversed(methods) if m not in kept_for_others)
    fewer = {"explain": {"methods": [m for m in methods if m != dropped]}}
    every_method = {rule: 1 for rule in ALL_METHOD_RULES}
    if not CONFIG["evaluate"]["truth"]:
        every_method = {r: 1 for r in every_method if r not in ("evaluate_ground_truth", "evaluate_redundancy_calls")}

    # Dropped: the other methods' shards, tracks and maps, the cross-cell-type matrix (cross_method
    # only) and the track figures (track_method only) stay; only the tables over every method are redone.
    assert planned(finished_run, fewer) == every_method

    # A setting only the GRIDS methods read reruns only their shards.
    assert shard_methods(finished_run, {"explain": {"k": CONFIG["explain"]["k"] + 1}}) == {
        m for m in methods if m in ("grids", "grids_cis")}

    # Added (a method that never ran): its own shards and tracks, and the tables over every method.
    dry_run(finished_run, "--touch", "--cores", "1", overlay=fewer)
    shutil.rmtree(finished_run / "results" / "explain" / dropped)
    n_shards = len(list((finished_run / "results" / "explain" / methods[0] / "shards").glob("shard*.tsv")))
    assert shard_methods(finished_run) == {dropped}
    assert planned(finished_run) == {**every_method, "explain_shard": n_shards, "explain_tracks": 1}
