"""Shared fixtures: one simulated demo sample, generated once per test session."""

from __future__ import annotations

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
