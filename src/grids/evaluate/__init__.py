"""Evaluation of selections (docs/architecture.md §6): expression drops, hit ratios, Hi-C, ground truth,
cross-cell-type."""

# The submodules (drop, hits, hic, truth, cross, figures, track_figure) are imported by
# name: each pulls in its own heavy dependencies, so the package itself exports nothing.
__all__: list[str] = []
