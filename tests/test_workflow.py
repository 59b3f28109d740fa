"""The workflow as users run it: lint, and the demo end to end in a copy of the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _snakemake(cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_lint_is_clean():
    result = _snakemake(REPO, "--lint")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Lints for" not in output and "good condition" in output, output


@pytest.mark.slow
def test_demo_workflow_runs_and_reruns_nothing(tmp_path):
    """`snakemake --cores 2` on the default config produces every simulator output."""
    for item in ("Snakefile", "workflow", "config", "envs"):
        source = REPO / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / item)
    result = _snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    for sample in ("demo1", "demo2"):
        root = tmp_path / "results" / "simulated" / sample
        for name in ("fragments.tsv.gz", "fragments.tsv.gz.tbi", "filtered_feature_bc_matrix.h5", "genes.gtf",
                     "chrom.sizes", "cell_types.tsv", "truth/links.tsv", "hic/CT1.cool", "hic/CT6.cool"):
            assert (root / name).stat().st_size > 0, name
        assert (tmp_path / "logs" / "simulate" / f"{sample}.log").exists()
    # Nothing left to do on a second invocation.
    again = _snakemake(tmp_path, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
