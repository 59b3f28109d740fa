"""Faults: Ctrl-C mid-run and a killed job. Reruns resume without redoing finished work and no
output is ever left half-written."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from conftest import snakemake, surrogate_metrics
from grids.io import atomic_output


def test_atomic_output_sweeps_what_a_killed_writer_left(tmp_path):
    target = tmp_path / "table.tsv"
    stale = tmp_path / ".table.tsv.x1y2z3.tmp.tsv"  # as mkstemp names them
    stale.write_text("half a table")
    other = tmp_path / ".other.tsv.abc.tmp.tsv"
    other.write_text("belongs to another output")
    with atomic_output(target) as tmp:
        tmp.write_text("whole table\n")
    assert target.read_text() == "whole table\n"
    assert not stale.exists() and other.exists()


def test_sigterm_stops_a_job_cleanly(tmp_path):
    """scancel / preemption send SIGTERM: the job logs it, removes its temporary file and exits 143."""
    code = (
        "import os, signal, sys, time\n"
        "from grids.io import atomic_output\n"
        "from grids.workflow import logged\n"
        f"with logged({str(tmp_path / 'job.log')!r}):\n"
        f"    with atomic_output({str(tmp_path / 'out.tsv')!r}) as tmp:\n"
        "        tmp.write_text('partial')\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(30)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143 and time.monotonic() - started < 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.log"]
    assert "stopped by SIGTERM" in (tmp_path / "job.log").read_text()


# ---- the workflow, interrupted ---------------------------------------------------------------------

def copy_run(demo_run: Path, target: Path) -> Path:
    """A copy of the finished demo run (outputs, logs and Snakemake's metadata, with mtimes)."""
    shutil.copytree(demo_run, target, symlinks=True,
                    ignore=shutil.ignore_patterns("locks", "incomplete", "conda", "__pycache__"))
    return target


class BackgroundRun:
    """``snakemake`` in its own process group, as a user's terminal runs it (Ctrl-C reaches all of it)."""

    def __init__(self, root: Path, *args: str) -> None:
        self.output = root / "snakemake.out"
        # A test session started in the background (`pytest &`, CI runners) ignores SIGINT, and
        # children inherit that: restore the default so Ctrl-C stops this run as a terminal's would.
        self.process = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=root, text=True,
                                        stdout=open(self.output, "w"), stderr=subprocess.STDOUT,
                                        start_new_session=True,
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def text(self) -> str:
        return self.output.read_text()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"snakemake ended before {what}:\n{self.text()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"no {what} after {timeout} s:\n{self.text()[-4000:]}")
            time.sleep(0.02)

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.finish()

    def finish(self) -> int:
        try:
            return self.process.wait(timeout=300)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def job_process(self, script: str):
        """The Python process running a rule's script (Snakemake starts it as a child)."""
        import psutil

        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if any(script in part for part in child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        return None


def leftover_temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob(".*") if ".tmp" in p.name]


def jobs_run(output: str) -> dict[str, int]:
    """Snakemake's job stats table: rule -> count."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


pytestmark = pytest.mark.slow


def test_ctrl_c_during_training_then_rerun_resumes_from_the_checkpoint(demo_run, tmp_path):
    root = copy_run(demo_run, tmp_path / "run")
    surrogate = root / "results" / "surrogate"
    outputs = [surrogate / name for name in ("model.pt", "metrics.json", "markers_heatmap.png", "markers_umap.png")]
    for path in [*outputs, surrogate / "checkpoint.pt"]:
        path.unlink()
    upstream = root / "results" / "multiome" / "paired.h5mu"
    upstream_mtime = upstream.stat().st_mtime_ns

    run = BackgroundRun(root, "--cores", "2", "results/surrogate/metrics.json")
    run.wait_for(lambda: (surrogate / "checkpoint.pt").exists(), "training checkpoint")
    assert run.ctrl_c() != 0
    assert not any(path.exists() for path in outputs), "a killed training left outputs"
    assert not leftover_temporaries(surrogate)
    import torch

    interrupted = torch.load(surrogate / "checkpoint.pt", weights_only=False)["state"]
    assert "stopped by SIGINT" in (root / "logs" / "surrogate" / "train.log").read_text()

    rerun = snakemake(root, "--cores", "2", "results/surrogate/metrics.json")
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert jobs_run(rerun.stderr + rerun.stdout) == {"train_surrogate": 1}, "finished upstream work was redone"
    assert upstream.stat().st_mtime_ns == upstream_mtime
    log = (root / "logs" / "surrogate" / "train.log").read_text()
    assert f"at epoch {interrupted['epoch']} (step {interrupted['step']})" in log, log[-2000:]

    # Resumed training ends exactly where the uninterrupted demo training ended.
    assert surrogate_metrics(root) == surrogate_metrics(demo_run)


def test_ctrl_c_during_an_explain_shard_then_rerun_redoes_only_unfinished_targets(demo_run, tmp_path):
    root = copy_run(demo_run, tmp_path / "run")
    shards = root / "results" / "explain" / "fimap" / "shards"
    outputs = [shards / "shard0.tsv", shards / "shard0.json"]
    for path in outputs:
        path.unlink()
    record = shards / "shard0.partial.json"
    n_targets = pd.read_csv(demo_run / "results" / "explain" / "fimap" / "shards" / "shard0.tsv", sep="\t") \
        .groupby(["cell_type", "target"]).ngroups

    run = BackgroundRun(root, "--cores", "2", *map(str, (p.relative_to(root) for p in outputs)))
    run.wait_for(record.exists, "finished target in the shard's record")
    assert run.ctrl_c() != 0
    assert not any(path.exists() for path in outputs), "a killed shard left outputs"
    assert not leftover_temporaries(shards)
    done = list(json.loads(record.read_text())["tasks"])
    assert 1 <= len(done) < n_targets
    assert "stopped by SIGINT" in (root / "logs" / "explain" / "fimap" / "shard0.log").read_text()

    rerun = snakemake(root, "--cores", "2", *map(str, (p.relative_to(root) for p in outputs)))
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert jobs_run(rerun.stderr + rerun.stdout) == {"explain_shard": 1}
    log = (root / "logs" / "explain" / "fimap" / "shard0.log").read_text()
    assert f"{len(done)} task(s) already done" in log
    assert not record.exists()

    def shard(base: Path) -> tuple[pd.DataFrame, dict]:
        folder = base / "results" / "explain" / "fimap" / "shards"
        table = pd.read_csv(folder / "shard0.tsv", sep="\t").drop(columns="seconds")
        return table, json.loads((folder / "shard0.json").read_text())

    (table, meta), (expected_table, expected_meta) = shard(root), shard(demo_run)
    pd.testing.assert_frame_equal(table, expected_table)
    assert meta == expected_meta


def test_a_killed_job_leaves_none_of_its_outputs(demo_run, tmp_path):
    """SIGKILL (the OOM killer, a lost node) in the middle of a job that writes many files: the
    files it had written are removed with the failed job, and a rerun writes them all again."""
    root = copy_run(demo_run, tmp_path / "run")
    folder = root / "results" / "explain" / "grids"
    outputs = sorted(p.relative_to(root) for p in folder.glob("L*/*") if p.is_file())
    for path in outputs:
        (root / path).unlink()

    run = BackgroundRun(root, "--cores", "2", "explain_tracks_grids")
    run.wait_for(lambda: any((root / p).exists() for p in outputs), "first per-target file")
    job = run.job_process("explain_tracks.py")
    assert job is not None, run.text()[-3000:]
    job.suspend()  # hold it still while the premise is checked
    written = [p for p in outputs if (root / p).exists()]
    assert 0 < len(written) < len(outputs), "the job was not caught half-way"
    job.kill()
    assert run.finish() != 0
    text = run.text()
    assert "Error in rule explain_tracks_grids" in text, text[-3000:]
    assert not [p for p in outputs if (root / p).exists()], "partial outputs of the failed job remain"

    rerun = snakemake(root, "--cores", "2", "explain_tracks_grids")
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    # SIGKILL skipped the clean-up of the file being written; the rerun swept it.
    assert not leftover_temporaries(folder)
    for path in outputs:
        if path.suffix != ".png":
            assert (root / path).read_bytes() == (demo_run / path).read_bytes(), path
