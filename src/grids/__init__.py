"""GRIDS workflow library: redundant cis-regulatory element sets from single-cell multiome data.

Heavy dependencies (torch, pegasus, scanpy) are imported lazily by the modules that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
