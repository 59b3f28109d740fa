"""The GRIDS objective for any differentiable model of (samples x features), by masking inputs.

The surrogate's objective (:mod:`grids.explain.core`) scores a removal by touching only the
removed peaks' columns of a linear encoder. A model in general gives no such shortcut, so here a
removal sets the features to a baseline value and the model is run on the masked inputs; gains
come from autograd of the objective with respect to a per-feature mask. The search
(:func:`grids.explain.search.grids_search`) uses both objectives through the same methods:
``cells``, ``subset``, ``loss``, ``gains``, ``swap_losses``, ``subset_losses``, ``put_back_losses``,
``relative_change`` and ``n_features``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["FeatureSet", "ModuleObjective"]

OUTPUT_FLOOR = 1e-6  # F(x) floored here, so the ratio F(x \ r) / F(x) stays finite


@dataclass
class FeatureSet:
    """Samples as the generic objective sees them."""

    inputs: torch.Tensor  # samples x features
    X: sp.csr_matrix  # 1 where a feature differs from its baseline: only there can a removal act
    reference: torch.Tensor  # F(x) of the target outputs, floored (samples x targets)

    @property
    def n_cells(self) -> int:
        return int(self.inputs.shape[0])


class ModuleObjective:
    """L(r) = mean_samples sum_{t in targets} (F(x \\ r)_t / F(x)_t)^2, where x \\ r sets the
    features in r to ``baseline``; ``model`` maps (samples x features) to nonnegative outputs
    (probabilities, rates, expression) whose ``targets`` the removal should lower."""

    def __init__(self, model: torch.nn.Module, targets, baseline: float | np.ndarray = 0.0,
                 chunk_rows: int = 1 << 16) -> None:
        self.model = model.eval()
        parameter = next(model.parameters(), None)
        self.device = parameter.device if parameter is not None else torch.device("cpu")
        self.dtype = parameter.dtype if parameter is not None else torch.float32
        self.targets = torch.as_tensor(np.atleast_1d(np.asarray(targets, dtype=np.int64)), device=self.device)
        self.baseline_value = baseline
        self.chunk_rows = chunk_rows  # model rows per forward when many masked inputs are scored
        self.n_features = 0

    # ---- samples -------------------------------------------------------------------------------
    @torch.no_grad()
    def cells(self, X) -> FeatureSet:
        """The samples (a NumPy array or tensor, samples x features), with their outputs."""
        inputs = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X, dtype=self.dtype).to(self.device)
        if inputs.ndim != 2:
            raise ValueError(f"X must be samples x features, got shape {tuple(inputs.shape)}")
        self.n_features = int(inputs.shape[1])
        self.baseline = torch.broadcast_to(torch.as_tensor(self.baseline_value, dtype=self.dtype, device=self.device),
                                           (self.n_features,)).clone()
        outputs = self._outputs(inputs)
        if outputs.shape[1] <= int(self.targets.max()):
            raise ValueError(f"target {int(self.targets.max())} is not an output of the model "
                             f"({outputs.shape[1]} outputs)")
        chosen = outputs.index_select(1, self.targets)
        if bool((chosen < 0).any()):
            raise ValueError("the target outputs must be nonnegative (the objective is their ratio to the "
                             "unperturbed outputs): wrap the model in a softmax, sigmoid or softplus")
        differs = (inputs != self.baseline).cpu().numpy()
        return FeatureSet(inputs, sp.csr_matrix(differs.astype(np.float32)), chosen.clamp_min(OUTPUT_FLOOR))

    def subset(self, cells: FeatureSet, rows: np.ndarray) -> FeatureSet:
        """A subset of the samples (a training batch)."""
        index = torch.as_tensor(rows, device=self.device)
        return FeatureSet(cells.inputs.index_select(0, index), cells.X[rows], cells.reference.index_select(0, index))

    def _outputs(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)

    # ---- the objective -------------------------------------------------------------------------
    def _removed(self, inputs: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Inputs with masked features (mask 1) set to the baseline: (..., samples, features)."""
        return inputs + masks.unsqueeze(-2) * (self.baseline - inputs)

    def _loss_of_masks(self, cells: FeatureSet, masks: torch.Tensor) -> torch.Tensor:
        """L for each row of ``masks`` (m x features, 0/1 or soft), as a tensor of m."""
        per_state = max(1, self.chunk_rows // max(cells.n_cells, 1))
        out = []
        for lo in range(0, masks.shape[0], per_state):
            block = self._removed(cells.inputs, masks[lo : lo + per_state])  # b x samples x features
            predicted = self._outputs(block.reshape(-1, self.n_features)).index_select(1, self.targets)
            ratio = predicted.clamp_min(0.0).view(block.shape[0], cells.n_cells, -1) / cells.reference
            out.append(ratio.square().sum(-1).mean(-1))
        return torch.cat(out) if out else torch.zeros(0, device=self.device)

    def _masks(self, subsets: list[np.ndarray]) -> torch.Tensor:
        masks = torch.zeros(len(subsets), self.n_features, device=self.device, dtype=self.dtype)
        for i, subset in enumerate(subsets):
            if len(subset):
                masks[i, torch.as_tensor(np.asarray(subset, dtype=np.int64), device=self.device)] = 1.0
        return masks

    @torch.no_grad()
    def loss(self, cells: FeatureSet, subset: np.ndarray) -> float:
        """L(r) on these samples."""
        return float(self._loss_of_masks(cells, self._masks([subset]))[0])

    @torch.no_grad()
    def subset_losses(self, cells: FeatureSet, subsets: np.ndarray) -> np.ndarray:
        """L of each row of ``subsets`` (m x L feature indices)."""
        return self._loss_of_masks(cells, self._masks(list(np.asarray(subsets)))).cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def put_back_losses(self, cells: FeatureSet, subset: np.ndarray) -> np.ndarray:
        """[L(r), L(r without r_1), ..., L(r without r_L)]: each member alone put back."""
        subset = np.asarray(subset, dtype=np.int64)
        return self._loss_of_masks(cells, self._masks([subset] + [np.delete(subset, i) for i in range(len(subset))])
                                   ).cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def swap_losses(self, cells: FeatureSet, subset: np.ndarray, position: int, candidates: np.ndarray) -> np.ndarray:
        """L with ``subset[position]`` swapped for each candidate; entry 0 is the unchanged subset."""
        options = [np.asarray(subset)]
        for candidate in candidates:
            swapped = np.array(subset, copy=True)
            swapped[position] = candidate
            options.append(swapped)
        return self.subset_losses(cells, np.array(options))

    def gains(self, cells: FeatureSet, subset: np.ndarray) -> np.ndarray:
        """d_j = dL/dm_j at x \\ r, where m_j moves feature j from x_j towards the baseline: the
        first-order change of L from removing j (on r, from moving it further)."""
        mask = torch.zeros(self.n_features, device=self.device, dtype=self.dtype, requires_grad=True)
        loss = self._loss_of_masks(cells, (self._masks([subset])[0] + mask).unsqueeze(0))[0]
        (gradient,) = torch.autograd.grad(loss, mask)
        return gradient.cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def relative_change(self, cells: FeatureSet, subset: np.ndarray) -> float:
        """Per target output, the change of its sample mean relative to the mean before, averaged."""
        before = self._outputs(cells.inputs).index_select(1, self.targets).clamp_min(0.0).double().mean(0)
        after = self._outputs(self._removed(cells.inputs, self._masks([subset]))[0])
        after = after.index_select(1, self.targets).clamp_min(0.0).double().mean(0)
        valid = before > 0
        return float(((after - before)[valid] / before[valid]).mean()) if bool(valid.any()) else float("nan")
