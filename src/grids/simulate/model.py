"""The planted regulatory model: genome, genes, CREs, links and the expression function.

Everything here is derived from the seed alone, so every sample of one simulation
shares the same genome and regulation, and tests can rebuild the exact model.

Expression model (per gene g, cell c, latent open/closed CRE states z)::

    drive_g(c) = w_prom * z_prom
               + sum_e w_e * z_e                          (single enhancers)
               + sum_G log(1 + a_G * f_G(z_G))            (grouped CREs)
               + w_tf * tf_T(c)                           (indirect: through TF gene T)
    f_G        = max_m z_m   (logic "or": any open member keeps the gene on; redundant)
               = min_m z_m   (logic "and": every member is needed)
               = sum_m z_m   (logic "additive": each member adds a_G on the natural scale)
    tf_T(c)    = exp(drive_T(c) - drive_T,max)            (TF level in (0, 1])
    mu_g(c)    = umis_c * base_g * exp(drive_g(c)) / R    (negative-binomial mean)

Grouped CREs act on the natural scale, so "additive" pairs add in expression (the scale on
which the evaluation measures drops) and an OR group's joint removal costs a_G while removing
one member alone costs nothing wherever another member is open.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .params import _HG38_AUTOSOME_MB, SimulationParams, cell_type_names, model_seed_sequence

__all__ = ["RegulatoryModel", "build_regulatory_model", "MITO_GENES", "LINK_KINDS", "GROUP_LOGICS"]

log = logging.getLogger(__name__)

LINK_KINDS = ("promoter", "enhancer", "redundant", "indirect")
GROUP_LOGICS = ("or", "and", "additive")
# Group id suffix per logic: SG0012_R1 (redundant, OR), SG0012_N1 (AND), SG0012_A1 (additive).
_GROUP_SUFFIX = {"or": "R", "and": "N", "additive": "A"}

# Human mitochondrial genes with their hg38 chrM coordinates (1-based, inclusive) and strand.
MITO_GENES: tuple[tuple[str, int, int, str], ...] = (
    ("MT-ND1", 3307, 4262, "+"), ("MT-ND2", 4470, 5511, "+"), ("MT-CO1", 5904, 7445, "+"),
    ("MT-CO2", 7586, 8269, "+"), ("MT-ATP8", 8366, 8572, "+"), ("MT-ATP6", 8527, 9207, "+"),
    ("MT-CO3", 9207, 9990, "+"), ("MT-ND3", 10059, 10404, "+"), ("MT-ND4L", 10470, 10766, "+"),
    ("MT-ND4", 10760, 12137, "+"), ("MT-ND5", 12337, 14148, "+"), ("MT-ND6", 14149, 14673, "-"),
    ("MT-CYB", 14747, 15887, "+"),
)
CHRM_LENGTH = 16569

_SLOT = 1000  # CREs sit one per 1 kb slot, so planted CREs never overlap
_MIN_TSS_SPACING = 20_000
ACTIVE_THRESHOLD = 0.3  # a link is "active" in a cell type where its CRE opens with p >= this


@dataclass
class RegulatoryModel:
    """The simulated genome and its ground-truth regulation.

    Attributes
    ----------
    chrom_sizes
        Ordered chromosome -> length (autosomes, then chrM).
    cell_types
        Cell type names.
    genes
        One row per regulated gene (TFs included): name, id, coordinates, TSS, weights.
    cres
        One row per planted CRE, sorted by chromosome then start: coordinates, kind, the gene it
        regulates directly (empty for orphans), redundant group, weight, fragment yield, module.
    access
        (n_cres, n_cell_types) open probability of each CRE in each cell type.
    """

    params: SimulationParams
    chrom_sizes: dict[str, int]
    cell_types: list[str]
    genes: pd.DataFrame
    cres: pd.DataFrame
    access: np.ndarray
    markers: dict[str, list[str]]

    # ---- derived sparse operators (built lazily) ----------------------------------------------
    def __post_init__(self) -> None:
        n_genes, n_cres = len(self.genes), len(self.cres)
        gene_index = pd.Index(self.genes["gene"])
        grouped = self.cres["group"].to_numpy() != ""
        direct = self.cres[self.cres["kind"].isin(["promoter", "enhancer"]).to_numpy() & ~grouped]
        self.direct_weights = sp.csr_matrix(
            (direct["weight"].to_numpy(), (direct.index.to_numpy(), gene_index.get_indexer(direct["gene"]))),
            shape=(n_cres, n_genes),
        )
        members = self.cres[grouped]
        group_ids = pd.Index(sorted(members["group"].unique()))
        self.group_names = list(group_ids)
        self.group_members = sp.csr_matrix(
            (np.ones(len(members)), (members.index.to_numpy(), group_ids.get_indexer(members["group"]))),
            shape=(n_cres, len(group_ids)),
        )
        first = members.drop_duplicates("group").set_index("group").loc[group_ids]
        self.group_logic = first["logic"].to_numpy().astype(str)
        # The stored weight is log(1 + a_G): the log-scale effect of the group (or, for an
        # additive pair, of one member) at full strength.
        self.group_amplitude = np.expm1(first["weight"].to_numpy(dtype=np.float64))
        self.group_size = np.asarray(self.group_members.sum(axis=0)).ravel()
        self.group_genes = sp.csr_matrix(
            (np.ones(len(group_ids)), (np.arange(len(group_ids)), gene_index.get_indexer(first["gene"]))),
            shape=(len(group_ids), n_genes),
        )
        # Row of each grouped CRE's first member (-1 for ungrouped CREs): the simulator couples
        # members' opening through it when redundant_correlation > 0.
        leader = members.reset_index().groupby("group")["index"].transform("min")
        self.group_leader = np.full(n_cres, -1, dtype=np.int64)
        self.group_leader[members.index.to_numpy()] = leader.to_numpy()
        tfs = self.genes.index[self.genes["is_tf"]].to_numpy()
        self.tf_gene_indices = tfs
        regulated = self.genes[self.genes["tf"] != ""]
        tf_pos = pd.Index(self.genes["gene"].to_numpy()[tfs]).get_indexer(regulated["tf"])
        self.tf_weights = sp.csr_matrix(
            (regulated["w_tf"].to_numpy(), (tf_pos, regulated.index.to_numpy())), shape=(len(tfs), n_genes)
        )
        # Highest direct drive of each TF (everything open): normalises TF levels to (0, 1].
        group_max = np.log1p(self.group_amplitude * np.where(self.group_logic == "additive", self.group_size, 1.0))
        max_direct = np.asarray(self.direct_weights.sum(axis=0)).ravel() + np.asarray(
            self.group_genes.T @ group_max
        ).ravel()
        self.tf_max_drive = max_direct[tfs]
        self.base = self.genes["base"].to_numpy()
        self.rate_normaliser = self._mean_total_rate()

    # ---- the expression function ---------------------------------------------------------------
    def direct_drive(self, z: sp.spmatrix | np.ndarray, cre_rows: slice | None = None) -> np.ndarray:
        """Drive from promoters, single enhancers and grouped CREs for CREs ``cre_rows``.

        ``z`` is (cells, CREs in ``cre_rows``), 0/1. Chromosome blocks can be summed because
        every link, and every member of a group, lies on its gene's chromosome.
        """
        rows = cre_rows if cre_rows is not None else slice(None)
        z = sp.csr_matrix(z, dtype=np.float64)
        drive = np.asarray((z @ self.direct_weights[rows]).todense())
        # A group with no member in this block contributes nothing here.
        present = np.flatnonzero(np.asarray(self.group_members[rows].sum(axis=0)).ravel() > 0)
        if len(present):
            n_open = (z @ self.group_members[rows][:, present]).toarray()
            drive += self.group_term(n_open, present) @ self.group_genes[present].toarray()
        return drive

    def group_term(self, n_open: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """log(1 + a_G f_G) per cell and group from the number of open members (cells x groups)."""
        groups = np.arange(len(self.group_names)) if groups is None else groups
        logic, size = self.group_logic[groups], self.group_size[groups]
        f = np.where(logic == "or", n_open >= 1, np.where(logic == "and", n_open >= size, n_open)).astype(np.float64)
        return np.log1p(self.group_amplitude[groups] * f)

    def add_indirect(self, drive: np.ndarray) -> np.ndarray:
        """Add the TF-mediated (indirect) term to a direct drive matrix."""
        tf_level = np.exp(drive[:, self.tf_gene_indices] - self.tf_max_drive)
        return drive + np.asarray(tf_level @ self.tf_weights.toarray())

    def drive(self, z: sp.spmatrix | np.ndarray) -> np.ndarray:
        """Full log-scale drive (cells x genes) from latent CRE states (cells x all CREs)."""
        return self.add_indirect(self.direct_drive(z))

    def expected_expression(self, z: sp.spmatrix | np.ndarray, umis: float | np.ndarray = 1.0) -> np.ndarray:
        """Negative-binomial mean per cell and gene for latent states ``z`` and UMI budgets."""
        rate = self.base * np.exp(self.drive(z))
        return np.asarray(umis).reshape(-1, 1) * rate / self.rate_normaliser

    def _mean_total_rate(self, cells_per_type: int = 64) -> float:
        """Mean of sum_g base_g * exp(drive_g) over cells drawn from each type (fixed RNG).

        Used as R so that a cell's expected non-mitochondrial UMIs equal its UMI budget.
        """
        rng = np.random.default_rng(model_seed_sequence(self.params.seed, 5))
        totals = []
        for k in range(len(self.cell_types)):
            z = rng.random((cells_per_type, len(self.cres))) < self.access[:, k]
            totals.append(np.sum(self.base * np.exp(self.drive(z)), axis=1))
        return float(np.mean(np.concatenate(totals)))

    # ---- convenience ---------------------------------------------------------------------------
    def chrom_slices(self) -> dict[str, slice]:
        """Row slice of ``cres`` per chromosome (rows are sorted by chromosome)."""
        out: dict[str, slice] = {}
        chroms = self.cres["chrom"].to_numpy()
        for chrom in self.chrom_sizes:
            idx = np.flatnonzero(chroms == chrom)
            if len(idx):
                out[chrom] = slice(int(idx[0]), int(idx[-1]) + 1)
        return out

    def links(self) -> pd.DataFrame:
        """The planted CRE -> gene links in the ``truth/links.tsv`` layout (docs/architecture.md §3)."""
        linked = self.cres[self.cres["kind"] != "orphan"]
        active = self._active_types()
        direct = pd.DataFrame(
            {
                "gene": linked["gene"],
                "chrom": linked["chrom"],
                "start": linked["start"],
                "end": linked["end"],
                "kind": linked["kind"],
                "group": linked["group"],
                "cell_types": active[linked.index],
                "logic": linked["logic"],
                "cre_id": linked["cre_id"],
                "weight": linked["weight"],
                "via_tf": "",
            }
        )
        # Indirect links: every direct CRE of the TF regulates the TF's targets.
        regulated = self.genes[self.genes["tf"] != ""][["gene", "tf", "w_tf"]]
        tf_links = direct.merge(regulated, left_on="gene", right_on="tf", suffixes=("_tf", ""))
        indirect = pd.DataFrame(
            {
                "gene": tf_links["gene"],
                "chrom": tf_links["chrom"],
                "start": tf_links["start"],
                "end": tf_links["end"],
                "kind": "indirect",
                "group": "",
                "cell_types": tf_links["cell_types"],
                "logic": "",
                "cre_id": tf_links["cre_id"],
                "weight": tf_links["w_tf"],
                "via_tf": tf_links["tf"],
            }
        )
        order = {c: i for i, c in enumerate(self.chrom_sizes)}
        out = pd.concat([direct, indirect], ignore_index=True)
        out["_chrom"] = out["chrom"].map(order)
        gene_order = {g: i for i, g in enumerate(self.genes["gene"])}
        out["_gene"] = out["gene"].map(gene_order)
        out = out.sort_values(["_gene", "_chrom", "start", "kind"], kind="stable")
        return out.drop(columns=["_chrom", "_gene"]).reset_index(drop=True)

    def _active_types(self) -> np.ndarray:
        names = np.array(self.cell_types)
        return np.array([",".join(names[row >= ACTIVE_THRESHOLD]) for row in self.access], dtype=object)


# ------------------------------------------------------------------------------------------------
def _chrom_sizes(params: SimulationParams) -> dict[str, int]:
    lengths = np.array(_HG38_AUTOSOME_MB[: params.n_chromosomes])
    lengths = np.round(lengths / lengths.sum() * params.genome_size / _SLOT).astype(int) * _SLOT
    sizes = {f"chr{i + 1}": int(n) for i, n in enumerate(lengths)}
    sizes["chrM"] = CHRM_LENGTH
    return sizes


def _loguniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def _enhancer_offsets(rng: np.random.Generator, n: int) -> np.ndarray:
    """Signed CRE-to-TSS distances: mostly < 100 kb, some to 500 kb, a few to ~1 Mb."""
    band = rng.choice(3, size=n, p=[0.7, 0.25, 0.05])
    log_low = np.log(np.array([3e3, 1e5, 5e5]))[band]
    log_high = np.log(np.array([1e5, 5e5, 1e6]))[band]
    dist = np.exp(log_low + rng.random(n) * (log_high - log_low))
    return np.where(rng.random(n) < 0.5, -1, 1) * np.round(dist).astype(np.int64)


class _SlotMap:
    """One CRE per 1 kb slot, so planted CREs never overlap; finds the nearest free slot."""

    def __init__(self, chrom_sizes: dict[str, int]) -> None:
        self.n_slots = {c: n // _SLOT for c, n in chrom_sizes.items()}
        self.used: dict[str, set[int]] = {c: set() for c in chrom_sizes}

    def claim(self, chrom: str, position: int, max_shift: int = 200) -> int | None:
        slot = int(position) // _SLOT
        for shift in range(max_shift + 1):
            for candidate in ((slot + shift, slot - shift) if shift else (slot,)):
                if 1 <= candidate < self.n_slots[chrom] - 1 and candidate not in self.used[chrom]:
                    self.used[chrom].add(candidate)
                    return candidate
        return None

    def free_slots(self, chrom: str) -> np.ndarray:
        slots = np.arange(1, self.n_slots[chrom] - 1)
        used = np.fromiter(self.used[chrom], dtype=np.int64, count=len(self.used[chrom]))
        return np.setdiff1d(slots, used, assume_unique=True)


def _place_genes(params: SimulationParams, rng: np.random.Generator, chrom_sizes: dict[str, int]) -> pd.DataFrame:
    autosomes = [c for c in chrom_sizes if c != "chrM"]
    lengths = np.array([chrom_sizes[c] for c in autosomes], dtype=float)
    n_per_chrom = rng.multinomial(params.n_genes - len(autosomes), lengths / lengths.sum()) + 1
    rows = []
    for chrom, n in zip(autosomes, n_per_chrom):
        size = chrom_sizes[chrom]
        margin = 50_000
        if size - 2 * margin < n * _MIN_TSS_SPACING:
            raise ValueError(
                f"simulate: chromosome {chrom} ({size} bp) cannot hold {n} genes; raise genome_size_mb"
            )
        # Sorted uniform positions with a minimum spacing: draw gaps, then shift.
        free = size - 2 * margin - n * _MIN_TSS_SPACING
        tss = np.sort(rng.integers(0, free, n)) + np.arange(n) * _MIN_TSS_SPACING + margin
        strand = np.where(rng.random(n) < 0.5, "+", "-")
        length = np.clip(np.round(_loguniform(rng, 3e3, 1.5e5, n)), 2_000, 200_000).astype(np.int64)
        for t, s, ln in zip(tss, strand, length):
            start, end = (t, t + ln) if s == "+" else (t - ln + 1, t + 1)
            start, end = max(int(start), 1), min(int(end), size - 1)
            rows.append((chrom, start, end, s, int(t)))
    genes = pd.DataFrame(rows, columns=["chrom", "start", "end", "strand", "tss"])
    return genes


def _specific_access(
    rng: np.random.Generator, n: int, n_types: int, on: tuple[float, float], off: tuple[float, float],
    max_types: int, forced_type: np.ndarray | None = None,
) -> np.ndarray:
    """Open probabilities for CREs open in 1..max_types cell types and mostly closed elsewhere."""
    p = rng.uniform(*off, size=(n, n_types))
    n_on = rng.integers(1, max_types + 1, size=n)
    for i in range(n):
        types = rng.choice(n_types, size=n_on[i], replace=False)
        if forced_type is not None and forced_type[i] >= 0:
            types = np.unique(np.append(types[: max(n_on[i] - 1, 0)], forced_type[i]))
        p[i, types] = rng.uniform(*on, size=len(types))
    return p


def _constitutive_access(rng: np.random.Generator, n: int, n_types: int, low: float, high: float) -> np.ndarray:
    level = rng.uniform(low, high, size=(n, 1))
    return np.clip(level * rng.uniform(0.85, 1.15, size=(n, n_types)), 0.0, 0.95)


def build_regulatory_model(params: SimulationParams) -> RegulatoryModel:
    """Build the seeded genome and regulatory model shared by all samples of a simulation.

    Parameters
    ----------
    params
        Simulation parameters; the model depends only on them (seeded by ``params.seed``).

    Returns
    -------
    RegulatoryModel
        Chromosomes, cell types (``CT1``, ...), genes, CREs (sorted by chromosome, then start) with
        their accessibility per cell type, and each cell type's marker genes.

    Raises
    ------
    ValueError
        When the genome is too small to place every promoter or the requested orphan CREs
        (raise ``genome_size_mb``).
    """
    rng = np.random.default_rng(model_seed_sequence(params.seed, 0))
    chrom_sizes = _chrom_sizes(params)
    cell_types = cell_type_names(params.n_cell_types)
    n_types = params.n_cell_types

    genes = _place_genes(params, rng, chrom_sizes)
    n_genes = len(genes)
    genes["gene"] = [f"SG{i + 1:04d}" for i in range(n_genes)]
    tf_idx = np.sort(rng.choice(n_genes, size=params.n_tfs, replace=False))
    genes["is_tf"] = False
    genes.loc[tf_idx, "is_tf"] = True
    genes.loc[tf_idx, "gene"] = [f"STF{i + 1:03d}" for i in range(params.n_tfs)]
    genes["gene_id"] = [f"SIMG{i + 1:011d}" for i in range(n_genes)]

    # Markers: genes with type-specific promoters and enhancers; half of them get a redundant group.
    candidates = rng.permutation(np.flatnonzero(~genes["is_tf"].to_numpy()))
    n_mark = params.n_markers_per_type
    marker_type = np.full(n_genes, -1)
    markers: dict[str, list[str]] = {}
    for k, name in enumerate(cell_types):
        chosen = np.sort(candidates[k * n_mark : (k + 1) * n_mark])
        marker_type[chosen] = k
        markers[name] = genes.loc[chosen, "gene"].tolist()
    genes["marker_of"] = [cell_types[k] if k >= 0 else "" for k in marker_type]

    has_group = rng.random(n_genes) < params.frac_redundant
    is_marker = marker_type >= 0
    has_group[is_marker] = rng.random(is_marker.sum()) < max(params.frac_redundant, 0.5)
    has_group[is_marker & (np.arange(n_genes) % 2 == 0)] = True
    n_enh = np.minimum(rng.poisson(params.mean_enhancers, n_genes), 6)
    genes["base"] = _loguniform(rng, 0.3, 3.0, n_genes)
    genes["base"] /= genes["base"].sum()
    genes["w_promoter"] = rng.uniform(1.5, 2.5, n_genes)
    tf_choice = rng.integers(0, max(params.n_tfs, 1), n_genes)
    indirect = (rng.random(n_genes) < params.frac_indirect) & ~genes["is_tf"].to_numpy() & (params.n_tfs > 0)
    tf_names = genes.loc[tf_idx, "gene"].to_numpy()
    genes["tf"] = np.where(indirect, tf_names[tf_choice] if params.n_tfs else "", "")
    genes["w_tf"] = np.where(indirect, rng.uniform(1.0, 2.0, n_genes), 0.0)

    # Control pairs (docs/architecture.md §7): additive (effects add) and AND (both needed), drawn after the
    # other gene-level draws so the genome and the OR groups do not depend on them.
    has_additive = rng.random(n_genes) < params.frac_additive_pairs
    has_and = rng.random(n_genes) < params.frac_and_pairs

    # ---- CREs ----
    slots = _SlotMap(chrom_sizes)
    rows: list[tuple] = []  # chrom, slot, kind, gene, group, weight, gene_index, marker_k, logic

    def plant_group(g, logic: str, size: int, weight: float, marker_k: int) -> None:
        # Grouped CREs cluster like shadow enhancers: members within ~50 kb of a group anchor.
        kind = "redundant" if logic == "or" else "enhancer"
        group = f"{g.gene}_{_GROUP_SUFFIX[logic]}1"
        anchor = g.tss + _enhancer_offsets(rng, 1)[0]
        for off in rng.integers(-50_000, 50_000, size):
            slot = slots.claim(g.chrom, int(np.clip(anchor + off, 0, chrom_sizes[g.chrom] - 1)))
            if slot is not None:
                rows.append((g.chrom, slot, kind, g.gene, group, weight, g.Index, marker_k, logic))

    for g in genes.itertuples():
        marker_k = marker_type[g.Index]
        upstream = -100 if g.strand == "+" else 100
        slot = slots.claim(g.chrom, g.tss + upstream, max_shift=0) or slots.claim(g.chrom, g.tss + upstream)
        rows.append((g.chrom, slot, "promoter", g.gene, "", g.w_promoter, g.Index, marker_k, ""))
        for off in _enhancer_offsets(rng, int(n_enh[g.Index])):
            slot = slots.claim(g.chrom, int(np.clip(g.tss + off, 0, chrom_sizes[g.chrom] - 1)))
            if slot is not None:
                rows.append((g.chrom, slot, "enhancer", g.gene, "", rng.uniform(0.4, 1.2), g.Index, marker_k, ""))
        if has_group[g.Index]:
            size = int(rng.integers(params.redundant_group_min, params.redundant_group_max + 1))
            plant_group(g, "or", size, rng.uniform(*params.group_effect), marker_k)
        if has_additive[g.Index]:
            # Per member, so the pair's joint effect (1 + 2a) is of the OR groups' size.
            plant_group(g, "additive", 2, np.log1p(np.expm1(rng.uniform(*params.group_effect)) / 2), marker_k)
        if has_and[g.Index]:
            plant_group(g, "and", 2, rng.uniform(*params.group_effect), marker_k)
    linked = pd.DataFrame(rows, columns=["chrom", "slot", "kind", "gene", "group", "weight", "gene_index", "marker_k",
                                         "logic"])
    if linked["slot"].isna().any():
        raise ValueError("simulate: could not place every promoter; raise genome_size_mb")

    # Orphan CREs (open chromatin that regulates no modelled gene), spread over free slots.
    autosomes = [c for c in chrom_sizes if c != "chrM"]
    free = [slots.free_slots(c) for c in autosomes]
    n_free = np.array([len(f) for f in free])
    if n_free.sum() < params.n_orphan_cres:
        raise ValueError("simulate: genome too small for the requested number of CREs")
    pick = np.sort(rng.choice(n_free.sum(), size=params.n_orphan_cres, replace=False))
    bounds = np.concatenate([[0], np.cumsum(n_free)])
    orphan_rows = []
    for i, chrom in enumerate(autosomes):
        sel = pick[(pick >= bounds[i]) & (pick < bounds[i + 1])] - bounds[i]
        orphan_rows.append(pd.DataFrame({"chrom": chrom, "slot": free[i][sel]}))
    orphans = pd.concat(orphan_rows, ignore_index=True)
    orphans = orphans.assign(kind="orphan", gene="", group="", weight=0.0, gene_index=-1, marker_k=-1, logic="")
    cres = pd.concat([linked, orphans], ignore_index=True)
    cres["slot"] = cres["slot"].astype(np.int64)

    # Accessibility per cell type.
    n_cres = len(cres)
    kind = cres["kind"].to_numpy()
    marker_k = cres["marker_k"].to_numpy()
    access = np.zeros((n_cres, n_types))
    prom = kind == "promoter"
    prom_marker = prom & (marker_k >= 0)
    access[prom & ~prom_marker] = _constitutive_access(rng, int((prom & ~prom_marker).sum()), n_types, 0.6, 0.9)
    idx = np.flatnonzero(prom_marker)
    access[idx] = rng.uniform(0.03, 0.12, size=(len(idx), n_types))
    access[idx, marker_k[idx]] = rng.uniform(0.75, 0.92, size=len(idx))
    grouped = cres["group"].to_numpy() != ""
    enhancer = (kind == "enhancer") & ~grouped
    specific = enhancer & ((rng.random(n_cres) < 0.6) | (marker_k >= 0))
    constitutive = enhancer & ~specific
    access[constitutive] = _constitutive_access(rng, int(constitutive.sum()), n_types, 0.45, 0.8)
    idx = np.flatnonzero(specific)
    access[idx] = _specific_access(rng, len(idx), n_types, (0.55, 0.85), (0.01, 0.05), 2, marker_k[idx])
    # Grouped CREs open in the same cell types. Independent regime: each member at a moderate
    # rate of its own, so every combination of open members occurs in the type's cells.
    # Co-accessible regime: all open often, so any one member nearly always keeps the gene on.
    independent = params.redundancy_regime == "independent"
    # Independent regime: most groups act in every cell type (a marker's group at least in its
    # own), so each group is seen in many cells with none, one or several members open.
    share_everywhere = params.group_everywhere if independent else 0.4
    on = (params.redundant_open_min, params.redundant_open_max) if independent else (0.8, 0.95)
    groups = cres["group"][grouped]
    for _, members in cres.index[grouped].groupby(groups).items():
        members = np.asarray(members)
        k = marker_k[members[0]]
        if (k < 0 or independent) and rng.random() < share_everywhere:
            on_types = np.arange(n_types)
        else:
            on_types = _specific_access(rng, 1, n_types, (1.0, 1.0), (0.0, 0.0), 2,
                                        np.array([k]))[0].nonzero()[0]
        access[members] = rng.uniform(0.01, 0.05, size=(len(members), n_types))
        access[np.ix_(members, on_types)] = rng.uniform(*on, size=(len(members), len(on_types)))
    orphan = kind == "orphan"
    orphan_const = orphan & (rng.random(n_cres) < 0.3)
    orphan_spec = orphan & ~orphan_const
    s = params.orphan_open_scale
    access[orphan_const] = _constitutive_access(rng, int(orphan_const.sum()), n_types, 0.05 * s, 0.5 * s)
    idx = np.flatnonzero(orphan_spec)
    access[idx] = _specific_access(rng, len(idx), n_types, (0.3 * s, 0.8 * s), (0.005, 0.03), 3)

    # Coordinates: centre jittered within the slot, width 300-800 bp, so CREs never overlap.
    centre = cres["slot"].to_numpy() * _SLOT + _SLOT // 2 + rng.integers(-50, 51, n_cres)
    half = rng.integers(150, 401, n_cres)
    cres["start"] = centre - half
    cres["end"] = centre + half
    strength = np.exp(rng.normal(0.0, 0.3, n_cres)) * np.where(prom, 1.5, 1.0)
    cres["strength"] = strength
    chrom_order = {c: i for i, c in enumerate(chrom_sizes)}
    window = params.coaccessibility_window
    cres["module"] = (
        cres["chrom"].map(chrom_order).to_numpy() * (max(chrom_sizes.values()) // window + 1) + centre // window
    )
    cres["_chrom_rank"] = cres["chrom"].map(chrom_order)
    order = np.lexsort((cres["start"].to_numpy(), cres["_chrom_rank"].to_numpy()))
    cres = cres.iloc[order].reset_index(drop=True)
    access = access[order]
    cres["module"] = pd.factorize(cres["module"])[0]
    cres["cre_id"] = [f"CRE{i + 1:06d}" for i in range(n_cres)]
    cres = cres[["cre_id", "chrom", "start", "end", "kind", "gene", "group", "logic", "weight", "strength", "module"]]
    genes = genes[
        ["gene", "gene_id", "chrom", "start", "end", "strand", "tss", "is_tf", "marker_of", "base",
         "w_promoter", "tf", "w_tf"]
    ]
    model = RegulatoryModel(
        params=params, chrom_sizes=chrom_sizes, cell_types=cell_types, genes=genes, cres=cres,
        access=access, markers=markers,
    )
    log.info(
        "regulatory model: %d chromosomes, %d genes (%d TFs), %d CREs (%d linked), groups: %d or, %d and, "
        "%d additive (%s regime)", len(chrom_sizes), n_genes, params.n_tfs, n_cres,
        int((cres["kind"] != "orphan").sum()), *(int((model.group_logic == lg).sum()) for lg in GROUP_LOGICS),
        params.redundancy_regime,
    )
    return model
