"""Benchmark: one surrogate training step at the paper's shapes, sparse vs dense embedding layout.

    python benchmarks/surrogate_step.py [--steps 5] [--cells 10266] [--peaks 127219] [--genes 3000] [--device cpu|cuda]

Random binary ATAC (~4% of peaks open per cell, as in real data) and random expression at the
paper's shapes; batch 128. "sparse" is the model as trained: embedding_bag over open peaks, and a
reconstruction loss that scores open peaks plus ``atac_sampled_peaks`` shared closed peaks.
"dense" builds the batch x peaks x d_h embedding tensor, sums it per chromosome and scores every
peak's logit, as a layer-by-layer port of the reference would. Each variant runs in its own process so peak
memory is its own; the ratios are printed at the end. On ``--device cuda`` steps are timed after a
synchronise, and memory is the peak GPU allocation (``torch.cuda.max_memory_allocated``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def run_variant(variant: str, args) -> dict:
    import scipy.sparse as sp
    import torch
    from paper_shapes import chromosome_sizes
    from torch.nn import functional as F

    from grids.surrogate.model import Surrogate, SurrogateConfig, csr_to_batch, dense_pooled_reference, focal_bce
    from grids.surrogate.train import TrainSettings

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to torch")
    sizes = chromosome_sizes(args.peaks)
    config = SurrogateConfig(n_peaks=args.peaks, n_genes=args.genes, chrom_sizes=sizes.tolist(), n_cell_types=8)
    model = Surrogate(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    rng = np.random.default_rng(0)
    chrom = np.repeat(np.arange(len(sizes)), sizes)
    settings = TrainSettings()
    times = []
    for step in range(args.steps + 1):
        X = sp.random(128, args.peaks, density=0.04, random_state=int(rng.integers(1 << 30)), format="csr",
                      dtype=np.float32)
        X.data[:] = 1
        y = torch.from_numpy(rng.random((128, args.genes), dtype=np.float32)).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        standardised = model.standardise(y)
        if variant == "sparse":
            batch = csr_to_batch(X, chrom, len(sizes)).to(device)
            h_a = model.encode_pooled(model.pooled(batch))
            reconstruction = model.atac_reconstruction_loss(h_a, batch, settings.focal_gamma,
                                                            settings.atac_sampled_peaks)
        else:
            dense = torch.from_numpy(X.toarray()).to(device)
            h_a = model.encode_pooled(dense_pooled_reference(model, dense))
            reconstruction = focal_bce(model.decode_atac(h_a), dense, settings.focal_gamma).mean()
        loss = (reconstruction + F.mse_loss(model.rna_decoder(model.f_ar(h_a)), standardised)
                + F.mse_loss(model.rna_decoder(model.rna_encoder(standardised)), standardised))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up allocators
            times.append(time.perf_counter() - started)
    peak = (torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return {"variant": variant, "seconds_per_step": float(np.median(times)), "peak_rss_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--cells", type=int, default=10266, help="paper cells (for the epoch estimate)")
    parser.add_argument("--peaks", type=int, default=127219)
    parser.add_argument("--genes", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--variant", choices=["sparse", "dense"])
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args)))
        return
    results = {}
    for variant in ("sparse", "dense"):
        command = [sys.executable, __file__, "--variant", variant] + [
            f"--{k}={v}" for k, v in vars(args).items() if k != "variant"]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(results[variant], flush=True)
    sparse, dense = results["sparse"], results["dense"]
    steps_per_epoch = int(np.ceil(args.cells * 0.7 / 128))
    print(f"shapes: cells={args.cells} peaks={args.peaks} genes={args.genes} batch=128 threads={args.threads} "
          f"device={args.device} (memory: {'peak GPU allocation' if args.device == 'cuda' else 'peak RSS'})")
    print(f"sparse: {sparse['seconds_per_step']:.3f} s/step, peak RSS {sparse['peak_rss_gib']:.2f} GiB, "
          f"~{sparse['seconds_per_step'] * steps_per_epoch:.0f} s/epoch")
    print(f"dense:  {dense['seconds_per_step']:.3f} s/step, peak RSS {dense['peak_rss_gib']:.2f} GiB")
    print(f"speedup_dense_over_sparse={dense['seconds_per_step'] / sparse['seconds_per_step']:.1f}x "
          f"memory_ratio={dense['peak_rss_gib'] / sparse['peak_rss_gib']:.1f}x")


if __name__ == "__main__":
    main()
