"""Glue between Snakemake scripts and the library: logging to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["logged"]


@contextlib.contextmanager
def logged(log_path: str | Path | None) -> Iterator[logging.Logger]:
    """Send logging, warnings and stderr (progress bars) to the rule's log file.

    Exceptions are logged with their traceback and re-raised, so Snakemake marks the job
    failed and removes its outputs. SIGTERM (Snakemake cancelling a job, ``scancel``, SLURM
    preemption) is turned into an exception too: Python's default would exit on the spot,
    skipping the clean-up of temporary files and the last checkpoint's log line.

    Parameters
    ----------
    log_path
        The rule's log file, overwritten (its folder created if missing); logging goes at INFO level
        to it, and stderr is redirected to it inside the block. None or empty: logging is only set up
        at INFO level on stderr (``logging.basicConfig``), nothing redirected or caught.

    Yields
    ------
    logging.Logger
        The ``grids`` logger.

    Raises
    ------
    Terminated
        A ``SystemExit`` with code 143, when the process gets SIGTERM inside the block (SIGTERM is
        handled so only in the main thread). Exceptions from the block are re-raised after logging.
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
        in_main_thread = threading.current_thread() is threading.main_thread()
        old_sigterm = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
        try:
            yield logger
        except (KeyboardInterrupt, Terminated) as stop:
            logger.error("stopped by %s", "SIGINT" if isinstance(stop, KeyboardInterrupt) else "SIGTERM")
            raise
        except BaseException:
            logger.exception("failed")
            raise
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, old_sigterm)
            sys.stderr = old_stderr
            root.removeHandler(handler)
            logging.captureWarnings(False)


class Terminated(SystemExit):
    """The job received SIGTERM; exits with 128 + 15 like a process the signal killed."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(128 + signum)
