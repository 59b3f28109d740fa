"""Glue between Snakemake scripts and the library: logging to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["logged"]


@contextlib.contextmanager
def logged(log_path: str | Path | None) -> Iterator[logging.Logger]:
    """Send logging, warnings and stderr (progress bars) to the rule's log file.

    Exceptions are logged with their traceback and re-raised, so Snakemake marks the job
    failed and removes its outputs.
    """
    logger = logging.getLogger("grids")
    if not log_path:
        logging.basicConfig(level=logging.INFO)
        yield logger
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as handle:
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        old_stderr = sys.stderr
        sys.stderr = handle
        try:
            yield logger
        except BaseException:
            logger.exception("failed")
            raise
        finally:
            sys.stderr = old_stderr
            root.removeHandler(handler)
            logging.captureWarnings(False)
