"""GPU scheduling: GPU jobs ask Snakemake for a GPU, and concurrent GPU jobs never share a device."""

from __future__ import annotations

import multiprocessing
import re
import time

import pytest
import yaml

from conftest import copy_workflow, snakemake
from grids.workflow.gpus import claimed_gpu, visible_gpus


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ["2", "5"]
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert visible_gpus() == []


def _gpu_job(lock_dir: str, hold: float, results, claimed=None) -> None:
    import os

    with claimed_gpu(True, lock_dir, poll_seconds=0.05) as device:
        if claimed is not None:
            claimed.set()
        seen = os.environ["CUDA_VISIBLE_DEVICES"]
        started = time.monotonic()
        time.sleep(hold)
        results.put((device, seen, started, time.monotonic()))


def test_concurrent_gpu_jobs_never_share_a_device(tmp_path, monkeypatch):
    """Five jobs at once on a two-GPU node: each sees exactly one device, and no two jobs hold
    the same device at the same time (the later ones wait for a free device)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    jobs = [context.Process(target=_gpu_job, args=(str(tmp_path), 0.6, results)) for _ in range(5)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=60)
        assert job.exitcode == 0
    runs = [results.get(timeout=5) for _ in jobs]
    assert all(device == seen and device in ("0", "1") for device, seen, _, _ in runs)
    for device in ("0", "1"):
        spans = sorted((start, end) for d, _, start, end in runs if d == device)
        assert spans, f"device {device} was never used"
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), f"device {device} shared"
    # Five 0.6 s jobs on two devices need three rounds: some jobs really waited.
    assert max(end for *_, end in runs) - min(start for _, _, start, _ in runs) >= 1.2


def test_a_claim_is_released_when_the_job_dies(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    context = multiprocessing.get_context("spawn")
    results, claimed = context.Queue(), context.Event()
    holder = context.Process(target=_gpu_job, args=(str(tmp_path), 60, results, claimed))
    holder.start()
    assert claimed.wait(timeout=60)  # the holder has claimed device 0
    with claimed_gpu(True, tmp_path) as device:
        assert device == "1"
    holder.kill()  # SIGKILL: no clean-up code runs, the kernel drops the lock
    holder.join()
    with claimed_gpu(True, tmp_path) as device:
        assert device == "0"


def test_slurm_and_cpu_jobs_claim_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with claimed_gpu(True, tmp_path) as device:  # a single GPU is claimed too: jobs queue for it
        assert device == "3" and [p.name for p in tmp_path.iterdir()] == ["gpu3.lock"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    with claimed_gpu(True, tmp_path):
        assert [p.name for p in tmp_path.iterdir()] == ["gpu3.lock"]  # nothing new
    with claimed_gpu(False, tmp_path) as device:
        assert device is None


def _job_resources(dry_run_output: str) -> list[tuple[str, str, str]]:
    """(rule, first output, resources line) of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", dry_run_output):
        rule = re.match(r"rule (\w+):", block)
        output = re.search(r"\n\s+output: ([^,\n]+)", block)
        resources = re.search(r"\n\s+resources: (.*)", block)
        if rule and output and resources:
            jobs.append((rule.group(1), output.group(1), resources.group(1)))
    return jobs


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_gpu_jobs_request_one_gpu_from_snakemake(tmp_path, device):
    """With ``--resources gpu=1``, Snakemake runs one job holding ``gpu=1`` at a time; so every job
    that will use CUDA must declare it, and CPU jobs must not (they would queue for nothing)."""
    root = copy_workflow(tmp_path)
    (root / "gpu.yaml").write_text(yaml.safe_dump({"surrogate": {"device": device}, "explain": {"device": device}}))
    result = snakemake(root, "-n", "--cores", "4", "--resources", "gpu=1", "--configfile", "gpu.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = _job_resources(result.stdout + result.stderr)
    gpu_methods = {"grids", "grids_cis", "saliency", "smoothgrad", "fimap", "sage", "lime"}
    checked = 0
    for rule, output, resources in jobs:
        method = output.split("/")[2] if rule == "explain_shard" else None
        wants = device == "cuda" and (rule == "train_surrogate" or (rule == "explain_shard" and method in gpu_methods))
        assert ("gpu=1" in resources) == wants, (rule, output, resources)
        checked += wants
    shards = sum(rule == "explain_shard" and "/random/" in output for rule, output, _ in jobs)
    assert shards and checked == (1 + len(gpu_methods) * shards if device == "cuda" else 0), checked
