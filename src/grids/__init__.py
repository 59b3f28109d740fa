"""GRIDS workflow library: redundant cis-regulatory element sets from single-cell multiome data.

Heavy dependencies (torch, pegasus, scanpy) are imported lazily by the modules that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_surrogate"]


def load_surrogate(path, *, device: str = "cpu"):
    """Load a trained surrogate (``results/surrogate/model.pt``); see :mod:`grids.surrogate`.

    Parameters
    ----------
    path
        The saved model, as the workflow's ``train_surrogate`` rule writes it.
    device
        Where to load its weights (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).

    Returns
    -------
    grids.surrogate.SavedSurrogate
        The model, its peak and gene names, and ``predict``.
    """
    from .surrogate.saved import load_surrogate as _load

    return _load(path, device=device)
