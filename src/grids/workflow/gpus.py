"""GPUs for workflow jobs: which a node has, and one device per job on a workstation.

Snakemake's ``--resources gpu=N`` caps how many GPU jobs run at once, but it does not say
which device each job gets: without help every job would open ``cuda:0``. A job that asks
for a GPU therefore claims one device with an exclusive ``flock`` on a node-local lock file
and narrows ``CUDA_VISIBLE_DEVICES`` to it. The kernel drops the lock when the process ends,
however it ends, so a killed job never keeps a device claimed. Under SLURM the allocation
already sets ``CUDA_VISIBLE_DEVICES`` per job, and nothing is claimed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["visible_gpus", "claimed_gpu"]

log = logging.getLogger(__name__)

NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")


def visible_gpus() -> list[str]:
    """CUDA device ids a job on this node may use, without importing torch or touching CUDA.

    ``CUDA_VISIBLE_DEVICES`` when set (empty or ``-1`` mean none), else the NVIDIA driver's
    device list (``/proc/driver/nvidia/gpus``, or ``nvidia-smi -L`` where /proc lacks it).

    Returns
    -------
    list of str
        Device ids as ``CUDA_VISIBLE_DEVICES`` lists them (ids or UUIDs, in its order), or
        ``"0"``, ``"1"``, ... for the driver's devices; empty when there is none or nvidia-smi fails.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        devices = [d.strip() for d in visible.split(",") if d.strip()]
        return [] if devices[:1] == ["-1"] else devices
    if NVIDIA_PROC.is_dir():
        return [str(i) for i in range(len(list(NVIDIA_PROC.iterdir())))]
    if shutil.which("nvidia-smi"):
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        if listed.returncode == 0:
            return [str(i) for i, line in enumerate(listed.stdout.splitlines()) if line.startswith("GPU ")]
    return []


def _default_lock_dir() -> Path:
    # Node-local (not the shared working directory): jobs on other nodes have their own GPUs.
    return Path(tempfile.gettempdir()) / f"grids-gpu-locks-{os.getuid()}"


@contextlib.contextmanager
def claimed_gpu(wants_gpu: bool, lock_dir: str | os.PathLike | None = None,
                poll_seconds: float = 5.0) -> Iterator[str | None]:
    """Hold one visible GPU for the duration of a job; yields its id (None: no claim needed).

    Must run before the job initialises CUDA. Under SLURM the allocation is the job's own and
    nothing is locked. When every device is held by other jobs (more GPU jobs than devices: no
    ``--resources gpu=N``, or N above the device count), it waits for one.

    Parameters
    ----------
    wants_gpu
        Whether the job uses a GPU; when False nothing is claimed.
    lock_dir
        Folder of the lock files (``gpu{id}.lock``), created if missing; None: a node-local folder in
        the temporary directory, one per user.
    poll_seconds
        Seconds between tries while every device is held.

    Yields
    ------
    str or None
        The claimed device id, with ``CUDA_VISIBLE_DEVICES`` set to it inside the block (restored
        after) and its lock held until the block ends; under SLURM the first visible device, with
        nothing locked or changed; None when ``wants_gpu`` is False or no device is visible.
    """
    devices = visible_gpus() if wants_gpu else []
    if not devices or "SLURM_JOB_ID" in os.environ:
        yield devices[0] if devices else None
        return
    directory = Path(lock_dir) if lock_dir is not None else _default_lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    waited = False
    while True:
        for device in devices:
            handle = open(directory / f"gpu{device}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            os.environ["CUDA_VISIBLE_DEVICES"] = device
            log.info("GPU %s of %s claimed for this job (lock %s)", device, ",".join(devices), handle.name)
            try:
                yield device
            finally:
                if previous is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = previous
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if not waited:
            log.warning("all %d GPUs (%s) are held by other jobs; waiting for one (more GPU jobs than GPUs: "
                        "lower --resources gpu=...)", len(devices), ",".join(devices))
            waited = True
        time.sleep(poll_seconds)
