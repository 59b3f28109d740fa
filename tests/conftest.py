"""Shared fixtures: one simulated demo sample and one demo workflow run, each made once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grids.simulate import build_regulatory_model, make_params, simulate_sample, write_hic_cool

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# A small simulation for tests that need two full runs (determinism) or many runs.
TINY = dict(
    n_chromosomes=2, genome_size_mb=6.0, n_genes=40, n_tfs=3, n_cell_types=3, n_markers_per_type=2,
    n_orphan_cres=150, cells_per_sample=90, empty_droplets_per_sample=60, barcode_whitelist_size=2000,
)


@pytest.fixture(scope="session")
def demo_params():
    return make_params("demo", seed=0)


@pytest.fixture(scope="session")
def demo_model(demo_params):
    return build_regulatory_model(demo_params)


@pytest.fixture(scope="session")
def demo_sample(tmp_path_factory, demo_params, demo_model) -> Path:
    """The demo preset's sample 'demo1', with Hi-C for the first two cell types."""
    root = tmp_path_factory.mktemp("sim") / "demo1"
    simulate_sample(demo_params, "demo1", root, model=demo_model, hic=False, progress=False)
    for cell_type in demo_model.cell_types[:2]:
        write_hic_cool(demo_model, cell_type, root / "hic" / f"{cell_type}.cool")
    return root


def require_shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test when that folder is absent (user clones)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not available: {path}")
    return path


def snakemake(cwd: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    """Run the Snakemake CLI of the test interpreter in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def copy_workflow(target: Path) -> Path:
    """Copy what a user clones (workflow, package source, config, envs, resources) into ``target``."""
    for item in ("Snakefile", "workflow", "src", "config", "envs", "resources"):
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, target / item, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / item)
    return target


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """`snakemake --cores 2` on the default config, once per test session (tests that change it work on a copy).

    GRIDS_TEST_DEMO_RUN names a finished run of the current code to reuse while iterating on tests.
    """
    if os.environ.get("GRIDS_TEST_DEMO_RUN"):
        return Path(os.environ["GRIDS_TEST_DEMO_RUN"])
    root = copy_workflow(tmp_path_factory.mktemp("demo"))
    result = snakemake(root, "--cores", "2")
    assert result.returncode == 0, result.stderr[-6000:]
    return root
