"""The cross-modal ATAC -> RNA surrogate (DESIGN §4, paper Eq. 3-10), in PyTorch.

ATAC encoder: every peak j has two embeddings E[j, 0] (closed) and E[j, 1] (open). Summing
them over a chromosome's peaks is linear in the binary input:

    s_c(x) = sum_{j in c} E[j, x_j] = b_c + sum_{j in c, x_j = 1} D_j,
    b_c = sum_{j in c} E[j, 0],  D_j = E[j, 1] - E[j, 0],

so the encoder touches only open peaks (``embedding_bag`` over the (cell, chromosome) bags of
a CSR batch) and never builds a batch x peaks x d_h tensor. Per chromosome: BatchNorm, PReLU
and a Linear to ``chrom_dim``; the concatenation goes through a Linear to the latent h_a.
The ATAC decoder mirrors it with per-chromosome output heads (peak logits). The RNA
autoencoder is genes -> 640 -> 320 -> 20 and back. Cross maps f_AR / f_RA translate latents;
per-cell-type discriminators judge real vs translated latents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SurrogateConfig", "SparseBatch", "Surrogate", "TypeDiscriminators", "csr_to_batch", "dense_pooled_reference"]


@dataclass
class SurrogateConfig:
    """Sizes of the surrogate; defaults follow DESIGN §4."""

    n_peaks: int
    n_genes: int
    chrom_sizes: list[int]  # peaks per chromosome block, in peak order
    n_cell_types: int
    d_h: int = 16
    chrom_dim: int = 32
    latent_dim: int = 20
    rna_hidden: list[int] = field(default_factory=lambda: [640, 320])
    cross_hidden: int = 64
    disc_hidden: int = 32
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SparseBatch:
    """A CSR batch of binary peak vectors as tensors for ``embedding_bag``.

    ``peaks`` are the open peak indices, cell by cell and, within a cell, in peak order (so
    chromosome blocks are contiguous); ``offsets`` start each (cell, chromosome) bag.
    """

    peaks: torch.Tensor
    offsets: torch.Tensor
    n_cells: int

    def to(self, device: torch.device) -> SparseBatch:
        return SparseBatch(self.peaks.to(device), self.offsets.to(device), self.n_cells)


def csr_to_batch(X, chrom_of_peak: np.ndarray, n_chroms: int) -> SparseBatch:
    """Bags for ``embedding_bag``: one per (cell, chromosome), in cell-major order."""
    X = X.tocsr()
    X.sort_indices()
    n_cells = X.shape[0]
    cols = X.indices.astype(np.int64)
    rows = np.repeat(np.arange(n_cells), np.diff(X.indptr))
    bag = rows * n_chroms + chrom_of_peak[cols]
    # offsets[b] = first position of bag b; empty bags get the next bag's start.
    offsets = np.searchsorted(bag, np.arange(n_cells * n_chroms), side="left")
    return SparseBatch(torch.from_numpy(cols), torch.from_numpy(offsets.astype(np.int64)), n_cells)


def _mlp(sizes: list[int], final_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_activation:
            layers += [nn.BatchNorm1d(b), nn.PReLU(b)]
    return nn.Sequential(*layers)


class Surrogate(nn.Module):
    """ATAC autoencoder + RNA autoencoder + cross maps + per-cell-type discriminators."""

    def __init__(self, config: SurrogateConfig) -> None:
        super().__init__()
        self.config = config
        c, d = len(config.chrom_sizes), config.d_h
        self.n_chroms = c
        sizes = torch.tensor(config.chrom_sizes)
        self.register_buffer("chrom_of_peak", torch.repeat_interleave(torch.arange(c), sizes))
        self.register_buffer("chrom_start", torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)]))
        scale = 1.0 / np.sqrt(max(1.0, float(np.mean(config.chrom_sizes)) * 0.05))
        self.embed_closed = nn.Parameter(torch.randn(config.n_peaks, d) * scale * 0.1)
        self.embed_open = nn.Parameter(torch.randn(config.n_peaks, d) * scale)
        # Per-chromosome BatchNorm/PReLU/Linear, batched over chromosomes.
        self.chrom_norm = nn.BatchNorm1d(c * d)
        self.chrom_act = nn.PReLU(c * d)
        self.chrom_weight = nn.Parameter(torch.randn(c, d, config.chrom_dim) / np.sqrt(d))
        self.chrom_bias = nn.Parameter(torch.zeros(c, config.chrom_dim))
        self.atac_to_latent = nn.Linear(c * config.chrom_dim, config.latent_dim)
        # ATAC decoder: latent -> per-chromosome hidden -> per-chromosome peak logits.
        self.latent_to_chroms = nn.Sequential(nn.Linear(config.latent_dim, c * config.chrom_dim),
                                              nn.PReLU(c * config.chrom_dim))
        self.peak_weight = nn.Parameter(torch.randn(config.n_peaks, config.chrom_dim) / np.sqrt(config.chrom_dim))
        self.peak_bias = nn.Parameter(torch.full((config.n_peaks,), -2.0))
        # RNA autoencoder.
        hidden = list(config.rna_hidden)
        self.rna_encoder = _mlp([config.n_genes, *hidden, config.latent_dim], final_activation=False)
        self.rna_decoder = _mlp([config.latent_dim, *reversed(hidden), config.n_genes], final_activation=False)
        # Genes are modelled standardised; these buffers map back to log-normalised expression.
        self.register_buffer("gene_mean", torch.zeros(config.n_genes))
        self.register_buffer("gene_scale", torch.ones(config.n_genes))
        # Cross maps (shared over cell types, so prediction needs no label; see the issue note).
        self.f_ar = _mlp([config.latent_dim, config.cross_hidden, config.latent_dim], final_activation=False)
        self.f_ra = _mlp([config.latent_dim, config.cross_hidden, config.latent_dim], final_activation=False)
        # One discriminator pair per cell type: real vs translated latents.
        self.disc_rna = TypeDiscriminators(config.n_cell_types, config.latent_dim, config.disc_hidden)
        self.disc_atac = TypeDiscriminators(config.n_cell_types, config.latent_dim, config.disc_hidden)

    # ---- ATAC encoder, in the pieces the explainer needs ---------------------------------------
    @property
    def embedding_delta(self) -> torch.Tensor:
        """D_j = E[j, 1] - E[j, 0] (peaks x d_h)."""
        return self.embed_open - self.embed_closed

    def pooled_base(self) -> torch.Tensor:
        """b_c = sum_{j in c} E[j, 0] (chromosomes x d_h): the pooled sums of an all-closed cell."""
        out = torch.zeros(self.n_chroms, self.config.d_h, device=self.embed_closed.device,
                          dtype=self.embed_closed.dtype)
        return out.index_add(0, self.chrom_of_peak, self.embed_closed)

    def pooled(self, batch: SparseBatch) -> torch.Tensor:
        """Per-chromosome sum-pooled embeddings (cells x chromosomes x d_h), from open peaks only."""
        sums = F.embedding_bag(batch.peaks, self.embedding_delta, batch.offsets, mode="sum")
        sums = sums.view(batch.n_cells, self.n_chroms, self.config.d_h)
        return sums + self.pooled_base().unsqueeze(0)

    def encode_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """h_a from pooled sums."""
        n = pooled.shape[0]
        h = self.chrom_act(self.chrom_norm(pooled.reshape(n, -1))).view(n, self.n_chroms, self.config.d_h)
        h = torch.einsum("bcd,cdo->bco", h, self.chrom_weight) + self.chrom_bias
        return self.atac_to_latent(F.dropout(h.reshape(n, -1), self.config.dropout, self.training))

    def decode_atac(self, h_a: torch.Tensor) -> torch.Tensor:
        """Peak logits (cells x peaks) through per-chromosome heads."""
        hidden = self.latent_to_chroms(h_a).view(-1, self.n_chroms, self.config.chrom_dim)
        blocks = []
        for c in range(self.n_chroms):
            lo, hi = int(self.chrom_start[c]), int(self.chrom_start[c + 1])
            blocks.append(hidden[:, c] @ self.peak_weight[lo:hi].T + self.peak_bias[lo:hi])
        return torch.cat(blocks, dim=1)

    # ---- the surrogate F(x) ---------------------------------------------------------------------
    def standardise(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.gene_mean) / self.gene_scale

    def genes_from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Log-normalised expression from pooled sums (unclamped): f_Dec^r(f_AR(f_Enc^a(s)))."""
        return self.rna_decoder(self.f_ar(self.encode_pooled(pooled))) * self.gene_scale + self.gene_mean

    def forward(self, batch: SparseBatch) -> torch.Tensor:
        """F(x): predicted log-normalised expression, clamped at 0."""
        return self.genes_from_pooled(self.pooled(batch)).clamp_min(0.0)


class TypeDiscriminators(nn.Module):
    """K independent two-layer discriminators, one per cell type, evaluated in one batched pass:
    row i is judged by the discriminator of its cell type k[i]."""

    def __init__(self, n_types: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(n_types, latent_dim, hidden) / np.sqrt(latent_dim))
        self.b1 = nn.Parameter(torch.zeros(n_types, hidden))
        self.w2 = nn.Parameter(torch.randn(n_types, hidden) / np.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(n_types))

    def forward(self, h: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        hidden = F.leaky_relu(torch.bmm(h.unsqueeze(1), self.w1[k]).squeeze(1) + self.b1[k], 0.2)
        return (hidden * self.w2[k]).sum(-1) + self.b2[k]


def dense_pooled_reference(model: Surrogate, X_dense: torch.Tensor) -> torch.Tensor:
    """The same pooling computed densely (cells x peaks x d_h): for tests only."""
    emb = torch.where(X_dense.unsqueeze(-1) > 0, model.embed_open.unsqueeze(0), model.embed_closed.unsqueeze(0))
    out = torch.zeros(X_dense.shape[0], model.n_chroms, model.config.d_h, dtype=emb.dtype)
    return out.index_add(1, model.chrom_of_peak, emb)
