"""Shared fixtures: one simulated demo sample and one demo workflow run, each made once per test session."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
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


def _run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder every process of this test run shares: under pytest-xdist each
    worker's own folder sits in it."""
    own = tmp_path_factory.getbasetemp()
    return own.parent if os.environ.get("PYTEST_XDIST_WORKER") else own


@contextlib.contextmanager
def _holding(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, Path, Path]]:
    """Hold the lock of the shared folder ``name`` (:func:`built_once`) and give its path, its
    done marker and its failure record; a build that failed elsewhere fails the test at once."""
    from filelock import FileLock

    shared = _run_folder(tmp_path_factory)
    failed = shared / f"{name}.failed"
    with FileLock(str(shared / f"{name}.lock")):
        if failed.exists():
            pytest.fail(f"building {name} failed in another test:\n{failed.read_text()}")
        yield shared / name, shared / f"{name}.done", failed


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name``, built by ``build`` once per test run, also when pytest-xdist runs the
    tests in several processes (``make test``): the first process to ask builds it in the folder
    the processes share, holding a lock, and the others wait and reuse it. A failed build is
    recorded, so the others fail at once with its message rather than build it again."""
    with _holding(tmp_path_factory, name) as (root, done, failed):
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            try:
                build(root)
            except BaseException as error:
                failed.write_text(f"{type(error).__name__}: {error}"[-6000:])
                raise
            done.touch()
    return root


def surrogate_metrics(run: Path) -> dict:
    """A run's ``results/surrogate/metrics.json`` without its timings: what two trainings of the
    same data and settings must give identically."""
    metrics = json.loads((run / "results" / "surrogate" / "metrics.json").read_text())
    for timing in ("train_seconds", "cis_seconds"):
        metrics["training"].pop(timing)
    return metrics


@pytest.fixture(scope="session")
def demo_sample(tmp_path_factory, demo_params, demo_model) -> Path:
    """The demo preset's sample 'demo1', with Hi-C for the first two cell types."""

    def build(folder: Path) -> None:
        simulate_sample(demo_params, "demo1", folder / "demo1", model=demo_model, hic=False, progress=False)
        for cell_type in demo_model.cell_types[:2]:
            write_hic_cool(demo_model, cell_type, folder / "demo1" / "hic" / f"{cell_type}.cool")

    return built_once(tmp_path_factory, "sim", build) / "demo1"


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


def run_demo_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`snakemake --cores 2` on the default config, once per test run (:func:`built_once`); tests
    that change it work on a copy. GRIDS_TEST_DEMO_RUN names a finished run of the current code to
    reuse while iterating on tests."""
    if os.environ.get("GRIDS_TEST_DEMO_RUN"):
        return Path(os.environ["GRIDS_TEST_DEMO_RUN"])

    def build(root: Path) -> None:
        copy_workflow(root)
        result = snakemake(root, "--cores", "2")
        assert result.returncode == 0, result.stderr[-6000:]

    return built_once(tmp_path_factory, "demo", build)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The demo run (:func:`run_demo_once`)."""
    return run_demo_once(tmp_path_factory)


# The SLURM test runs the workflow again in SLURM jobs, mostly waiting on the scheduler.
SLURM_TEST = "test_demo_jobs_run_through_sbatch_on_a_slurm_cluster"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order of the tests, and which share a process under pytest-xdist (``make test``:
    ``-n 2 --dist loadgroup --no-loadscope-reorder``, where each process is handed the next work
    unit in this order when it runs short).

    1. The SLURM run, mostly waits on the scheduler, to one process, and
    2. one test that reads the demo run, so that the other process builds the demo
       (:func:`run_demo_once`) meanwhile;
    3. the tests that need no demo, each module one work unit, whose fixtures are then built once;
    4. the other tests that read the demo (the comparison of the SLURM run with the local run
       among them), each a unit of its own, so both processes share them once the demo is built.

    Without xdist only the order changes."""
    def uses_demo(item: pytest.Item) -> bool:
        return "demo_run" in getattr(item, "fixturenames", ())

    demo_tests = [item for item in items if uses_demo(item)]
    first = next((item for item in demo_tests if item.path.name == "test_workflow.py"), None) or \
        next(iter(demo_tests), None)
    for item in items:
        if not uses_demo(item) and item.name != SLURM_TEST:
            item.add_marker(pytest.mark.xdist_group(item.path.name))

    def rank(item: pytest.Item) -> int:
        if item.name == SLURM_TEST:
            return 0
        if item is first:
            return 1
        return 3 if uses_demo(item) else 2

    items.sort(key=rank)  # stable: otherwise as collected
