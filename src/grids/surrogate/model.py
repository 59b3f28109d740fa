"""The cross-modal ATAC -> RNA surrogate (docs/architecture.md §4, paper Eq. 3-10), in PyTorch.

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

Cis path (our addition, see the issue notes): the 20-d latent carries cell state, but not
which of a gene's own enhancers are open in this cell. Each gene therefore also gets a small
model of the peaks within ``cis_window`` of its TSS, fitted after the deep model on its
residuals, in standardised units. Its state is a few sums over open peaks, one linear and
``cis_units`` saturating ones, so that one open member of a redundant (OR) group can keep the
gene on and an AND pair can need both:

    s_g0(x) = sum_{j near g} W_gj x_j,      s_gh(x) = sum_{j near g} V_ghj x_j   (h = 1..H)
    cis_g(x) = b_g + s_g0 + sum_h a_gh clamp~(s_gh + c_gh)
    F(x)_g = scale_g * (Dec_r(f_AR(h_a(x)))_g + cis_g(x)) + mean_g

with clamp~ a smooth clamp to [0, 1]. Removing peak j subtracts its weights from the sums, so
the explainer still scores a removal exactly by touching only the removed columns, and its
gains stay one sparse product per path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SurrogateConfig", "SparseBatch", "Surrogate", "TypeDiscriminators", "csr_to_batch",
           "dense_pooled_reference", "focal_bce", "smooth_clamp"]


@dataclass
class SurrogateConfig:
    """Sizes of the surrogate; defaults follow docs/architecture.md §4."""

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
    n_cis_links: int = 0  # peak -> gene pairs of the cis path (0: no cis path)
    cis_units: int = 0  # saturating sums per gene in the cis path (0: the linear cis path alone)
    cis_sharpness: float = 10.0  # how sharply the smooth clamp bends at 0 and 1

    @property
    def cis_state_width(self) -> int:
        """Sums per gene in the cis state: the linear one plus the saturating units."""
        return 1 + self.cis_units

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SparseBatch:
    """A CSR batch of binary peak vectors as tensors for ``embedding_bag``.

    ``peaks`` are the open peak indices, cell by cell and, within a cell, in peak order (so
    chromosome blocks are contiguous); ``cells`` the cell of each; ``offsets`` start each
    (cell, chromosome) bag.
    """

    peaks: torch.Tensor
    cells: torch.Tensor
    offsets: torch.Tensor
    n_cells: int
    # Per-entry amounts the encoder sums (None: every open peak counts 1). Training's peak
    # dropout scales the kept entries by 1 / (1 - p), so pooled sums keep their expected size.
    weights: torch.Tensor | None = None

    def to(self, device: torch.device) -> SparseBatch:
        weights = None if self.weights is None else self.weights.to(device)
        return SparseBatch(self.peaks.to(device), self.cells.to(device), self.offsets.to(device), self.n_cells, weights)


def csr_to_batch(X, chrom_of_peak: np.ndarray, n_chroms: int, *, weighted: bool = False) -> SparseBatch:
    """Bags for ``embedding_bag``: one per (cell, chromosome), in cell-major order; with
    ``weighted`` the stored values of X are the entries' weights.

    Parameters
    ----------
    X
        Cells x peaks scipy sparse matrix; every stored entry is an open peak. Converted to CSR; a
        CSR matrix has its indices sorted in place.
    chrom_of_peak
        Chromosome block index of each peak, non-decreasing in peak order
        (:func:`grids.surrogate.data.chrom_blocks`).
    n_chroms
        Number of chromosome blocks.
    weighted
        Carry X's stored values as per-entry weights; otherwise every open peak counts 1.

    Returns
    -------
    SparseBatch
        ``peaks`` and ``cells`` (int64) of each stored entry, cell by cell; ``offsets`` (int64,
        ``n_cells * n_chroms``), where each bag starts (an empty bag starts where the next does);
        ``n_cells``; ``weights`` (float32) or None. Tensors are on the CPU.
    """
    X = X.tocsr()
    X.sort_indices()
    n_cells = X.shape[0]
    cols = X.indices.astype(np.int64)
    rows = np.repeat(np.arange(n_cells), np.diff(X.indptr))
    bag = rows * n_chroms + chrom_of_peak[cols]
    # offsets[b] = first position of bag b; empty bags get the next bag's start.
    offsets = np.searchsorted(bag, np.arange(n_cells * n_chroms), side="left")
    weights = torch.from_numpy(X.data.astype(np.float32)) if weighted else None
    return SparseBatch(torch.from_numpy(cols), torch.from_numpy(rows.astype(np.int64)),
                       torch.from_numpy(offsets.astype(np.int64)), n_cells, weights)


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
        # Cis path: links sorted by peak; cis_peak_ptr[j]:cis_peak_ptr[j + 1] are peak j's links.
        self.register_buffer("cis_peak_ptr", torch.zeros(config.n_peaks + 1, dtype=torch.long))
        self.register_buffer("cis_gene", torch.zeros(config.n_cis_links, dtype=torch.long))
        self.cis_weight = nn.Parameter(torch.zeros(config.n_cis_links))
        self.cis_bias = nn.Parameter(torch.zeros(config.n_genes))
        units = config.cis_units
        self.cis_unit_weight = nn.Parameter(torch.zeros(config.n_cis_links, units))
        self.cis_unit_bias = nn.Parameter(torch.zeros(config.n_genes, units))
        self.cis_unit_out = nn.Parameter(torch.zeros(config.n_genes, units))
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

    def open_sums(self, batch: SparseBatch, entry_weight: torch.Tensor | None = None) -> torch.Tensor:
        """sum over open peaks j of c of w_j D_j (cells x chromosomes x d_h); w = 1 by default.
        With per-entry weights this is the explainer's removal perturbation."""
        sums = F.embedding_bag(batch.peaks, self.embedding_delta, batch.offsets, mode="sum",
                               per_sample_weights=entry_weight)
        return sums.view(batch.n_cells, self.n_chroms, self.config.d_h)

    def pooled(self, batch: SparseBatch) -> torch.Tensor:
        """Per-chromosome sum-pooled embeddings (cells x chromosomes x d_h), from open peaks only."""
        return self.open_sums(batch, batch.weights) + self.pooled_base().unsqueeze(0)

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

    def atac_reconstruction_loss(self, h_a: torch.Tensor, target: SparseBatch, gamma: float,
                                 n_sampled: int = 0) -> torch.Tensor:
        """Mean focal BCE of the peak logits over all cells x peaks.

        With ``0 < n_sampled < n_peaks`` each step scores ``n_sampled`` random peaks (shared by
        the batch, open and closed alike): an unbiased estimate of the full mean at a fraction of
        its cost, as the full decoder is batch x peaks logits (16 M at paper shapes). The ATAC
        decoder only shapes the latent; the surrogate F(x) never uses it.
        """
        n_cells, n_peaks = target.n_cells, self.config.n_peaks
        if n_sampled <= 0 or n_sampled >= n_peaks:
            dense = torch.zeros(n_cells, n_peaks, device=h_a.device, dtype=h_a.dtype)
            dense[target.cells, target.peaks] = 1.0
            return focal_bce(self.decode_atac(h_a), dense, gamma).mean()
        # The CPU generator keeps sampling reproducible and inside the checkpointed RNG state.
        sample = torch.randperm(n_peaks)[:n_sampled].sort().values.to(h_a.device)
        weight, bias = self.peak_weight.index_select(0, sample), self.peak_bias.index_select(0, sample)
        bounds = torch.searchsorted(self.chrom_of_peak.index_select(0, sample),
                                    torch.arange(self.n_chroms + 1, device=h_a.device)).tolist()
        hidden = self.latent_to_chroms(h_a).view(n_cells, self.n_chroms, self.config.chrom_dim)
        logits = torch.cat([hidden[:, c] @ weight[lo:hi].T + bias[lo:hi]
                            for c, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))], dim=1)
        is_open = torch.zeros(n_cells, n_peaks, device=h_a.device, dtype=torch.bool)
        is_open[target.cells, target.peaks] = True
        return focal_bce(logits, is_open.index_select(1, sample).to(logits.dtype), gamma).mean()

    # ---- cis path --------------------------------------------------------------------------------
    @torch.no_grad()
    def set_cis_links(self, peak: np.ndarray, gene: np.ndarray, weight: np.ndarray | None = None,
                      bias: np.ndarray | None = None) -> None:
        """Install the (peak, gene) pairs of the cis path, with starting weights (default 0)."""
        if len(peak) != self.config.n_cis_links:
            raise ValueError(f"{len(peak)} cis links for a model built for {self.config.n_cis_links}")
        peak, gene = np.asarray(peak, dtype=np.int64), np.asarray(gene, dtype=np.int64)
        order = np.lexsort((gene, peak))
        counts = np.bincount(peak[order], minlength=self.config.n_peaks)
        self.cis_peak_ptr.copy_(torch.from_numpy(np.r_[0, np.cumsum(counts)]))
        self.cis_gene.copy_(torch.from_numpy(gene[order]))
        if weight is not None:
            self.cis_weight.copy_(torch.from_numpy(np.asarray(weight, dtype=np.float32)[order]))
        if bias is not None:
            self.cis_bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float32)))

    def cis_links(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(peak, gene) index of every cis link, in weight order."""
        counts = self.cis_peak_ptr[1:] - self.cis_peak_ptr[:-1]
        peak = torch.repeat_interleave(torch.arange(self.config.n_peaks, device=counts.device), counts)
        return peak, self.cis_gene

    def cis_link_weights(self) -> torch.Tensor:
        """Per link, its weight in each sum of the cis state (links x (1 + cis_units))."""
        return torch.cat([self.cis_weight.unsqueeze(1), self.cis_unit_weight], dim=1)

    @torch.no_grad()
    def cis_matrix(self):
        """The cis path as a scipy CSR matrix, peaks x (genes x sums), gene-major: row j is what
        an open peak j adds to each sum of each gene's cis state (``X @ cis_matrix()`` is the
        cis state of binary cells X, as :meth:`cis_state` gives it)."""
        import scipy.sparse as sp

        width = self.config.cis_state_width
        peak, gene = (t.cpu().numpy() for t in self.cis_links())
        weight = self.cis_link_weights().detach().cpu().numpy()  # links x sums
        sums = np.arange(width)
        return sp.csr_matrix((weight.ravel(), (np.repeat(peak, width), (gene[:, None] * width + sums).ravel())),
                             shape=(self.config.n_peaks, self.config.n_genes * width))

    def cis_state(self, batch: SparseBatch) -> torch.Tensor:
        """The cis sums over open peaks (cells x genes x (1 + cis_units)), biases not included."""
        n_genes, width = self.config.n_genes, self.config.cis_state_width
        out = torch.zeros(batch.n_cells * n_genes, width, device=self.cis_weight.device, dtype=self.cis_weight.dtype)
        if self.config.n_cis_links == 0 or batch.peaks.numel() == 0:
            return out.view(batch.n_cells, n_genes, width)
        if not torch.is_grad_enabled() and out.device.type == "cpu":
            # Inference on the CPU: one sparse product, several times faster than the per-link
            # expansion below (an index per open entry and link), with the same sums.
            import scipy.sparse as sp

            opened = sp.csr_matrix((np.ones(batch.peaks.numel(), np.float32),
                                    (batch.cells.numpy(), batch.peaks.numpy())),
                                   shape=(batch.n_cells, self.config.n_peaks))
            state = torch.from_numpy((opened @ self.cis_matrix()).toarray())
            return state.to(out.dtype).view(batch.n_cells, n_genes, width)
        first = self.cis_peak_ptr[batch.peaks]
        count = self.cis_peak_ptr[batch.peaks + 1] - first
        entry = torch.repeat_interleave(torch.arange(len(count), device=count.device), count)
        # Position of each expanded link within its peak's run of links.
        within = torch.arange(len(entry), device=count.device) - (torch.cumsum(count, 0) - count)[entry]
        link = first[entry] + within
        index = batch.cells[entry] * n_genes + self.cis_gene[link]
        return out.index_add(0, index, self.cis_link_weights()[link]).view(batch.n_cells, n_genes, width)

    def cis_from_state(self, state: torch.Tensor, genes: torch.Tensor | None = None) -> torch.Tensor:
        """cis_g from the cis state (..., genes, 1 + cis_units) of all genes, or of ``genes``."""
        bias = self.cis_bias if genes is None else self.cis_bias.index_select(0, genes)
        out = state[..., 0] + bias
        if self.config.cis_units:
            unit_bias, unit_out = self.cis_unit_bias, self.cis_unit_out
            if genes is not None:
                unit_bias, unit_out = unit_bias.index_select(0, genes), unit_out.index_select(0, genes)
            out = out + (smooth_clamp(state[..., 1:] + unit_bias, self.config.cis_sharpness) * unit_out).sum(-1)
        return out

    def cis(self, batch: SparseBatch) -> torch.Tensor:
        """cis_g per cell and gene (cells x genes, standardised units)."""
        return self.cis_from_state(self.cis_state(batch))

    # ---- the surrogate F(x) ---------------------------------------------------------------------
    def standardise(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.gene_mean) / self.gene_scale

    def decoder_hidden(self, pooled: torch.Tensor) -> torch.Tensor:
        """The RNA decoder's last hidden layer from pooled sums (rows x hidden): the part of F
        every output gene shares, so the explainer computes it once for many targets' states."""
        return self.rna_decoder[:-1](self.f_ar(self.encode_pooled(pooled)))

    def standardised_from_hidden(self, hidden: torch.Tensor, cis: torch.Tensor | None = None,
                                 genes: torch.Tensor | None = None) -> torch.Tensor:
        """Standardised expression (unclamped) from :meth:`decoder_hidden`; with ``genes`` only
        those outputs (and ``cis`` holds only their columns)."""
        last = self.rna_decoder[-1]
        if genes is None:
            out = last(hidden)
        else:
            out = F.linear(hidden, last.weight.index_select(0, genes), last.bias.index_select(0, genes))
        return out if cis is None else out + cis

    def genes_standardised(self, pooled: torch.Tensor, cis: torch.Tensor | None = None,
                           genes: torch.Tensor | None = None) -> torch.Tensor:
        """Standardised expression from pooled sums and the cis term (unclamped). With ``genes``
        only those outputs are computed (and ``cis`` holds only their columns): the decoder's
        last layer is most of the cost when the explainer needs a single gene."""
        return self.standardised_from_hidden(self.decoder_hidden(pooled), cis, genes)

    def genes_from_hidden(self, hidden: torch.Tensor, cis: torch.Tensor | None = None,
                          genes: torch.Tensor | None = None) -> torch.Tensor:
        """Log-normalised expression (unclamped) from :meth:`decoder_hidden`; all genes or ``genes``."""
        out = self.standardised_from_hidden(hidden, cis, genes)
        if genes is None:
            return out * self.gene_scale + self.gene_mean
        return out * self.gene_scale.index_select(0, genes) + self.gene_mean.index_select(0, genes)

    def genes_from_pooled(self, pooled: torch.Tensor, cis: torch.Tensor | None = None,
                          genes: torch.Tensor | None = None) -> torch.Tensor:
        """Log-normalised expression (unclamped): f_Dec^r(f_AR(f_Enc^a(s))) plus the cis term;
        all genes, or only ``genes``."""
        return self.genes_from_hidden(self.decoder_hidden(pooled), cis, genes)

    def forward(self, batch: SparseBatch) -> torch.Tensor:
        """F(x): predicted log-normalised expression, clamped at 0."""
        return self.genes_from_pooled(self.pooled(batch), self.cis(batch)).clamp_min(0.0)


def smooth_clamp(u: torch.Tensor, sharpness: float) -> torch.Tensor:
    """A smooth clamp of u to [0, 1]: (softplus(k u) - softplus(k (u - 1))) / k. It saturates
    above 1, so a second open member of an OR group adds (almost) nothing.

    Parameters
    ----------
    u
        Values to clamp.
    sharpness
        k: how sharply the clamp bends at 0 and 1.

    Returns
    -------
    torch.Tensor
        Elementwise, in the shape of ``u``, strictly between 0 and 1.
    """
    return (F.softplus(sharpness * u) - F.softplus(sharpness * (u - 1.0))) / sharpness


def focal_bce(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Elementwise binary cross-entropy with a focal factor (1 - p_t)^gamma: most peaks are
    closed and easy, so the factor keeps them from drowning the open ones.

    Parameters
    ----------
    logits
        Predicted logits.
    target
        0/1 targets, in the shape of ``logits``.
    gamma
        Focal exponent; 0 gives the plain binary cross-entropy.

    Returns
    -------
    torch.Tensor
        The loss of each element, unreduced, in the shape of ``logits``.
    """
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (1.0 - torch.exp(-bce)) ** gamma * bce


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
    """The same pooling computed densely (cells x peaks x d_h): for tests only.

    Parameters
    ----------
    model
        The surrogate whose peak embeddings are pooled.
    X_dense
        Cells x peaks tensor; an entry > 0 is an open peak.

    Returns
    -------
    torch.Tensor
        Cells x chromosomes x ``d_h``: per chromosome, the sum of each peak's open or closed
        embedding, as :meth:`Surrogate.pooled` computes for an unweighted batch.
    """
    emb = torch.where(X_dense.unsqueeze(-1) > 0, model.embed_open.unsqueeze(0), model.embed_closed.unsqueeze(0))
    out = torch.zeros(X_dense.shape[0], model.n_chroms, model.config.d_h, dtype=emb.dtype, device=emb.device)
    return out.index_add(1, model.chrom_of_peak, emb)
