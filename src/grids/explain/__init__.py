"""Explanations: GRIDS and its baselines for the surrogate, and ``explain_model`` for any model.

``explain_model`` and ``Explanation`` load on first use, so that the Snakefile, which reads the
method registry and the task layout from this package, never imports torch.
"""

from __future__ import annotations

__all__ = ["explain_model", "Explanation"]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
