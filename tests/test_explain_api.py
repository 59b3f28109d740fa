"""explain_model: GRIDS on any torch model (issue 18), on scikit-learn's digits, 3 vs 8."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from conftest import REPO
from grids.explain import Explanation, explain_model
from grids.explain.generic import ModuleObjective


def _example():
    spec = importlib.util.spec_from_file_location("explain_digits", REPO / "examples" / "explain_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digits():
    example = _example()
    model, X_train, y_train, X_test, y_test = example.three_vs_eight()
    return example, model, X_train[y_train == 1], X_test[y_test == 1], X_test, y_test


def test_grids_finds_the_four_pixels_that_make_an_eight(digits):
    """At L = 4, GRIDS's pixels lower the held-out 8s' "8" probability at least as much as
    SAGE's top 4 and more than saliency's (its start); at L = 10 every method removes it."""
    example, model, eights_train, eights_test, X_test, y_test = digits
    with torch.no_grad():
        assert (model(torch.from_numpy(X_test)).argmax(1).numpy() == y_test).mean() >= 0.95
    after = {}
    for method in ("grids", "saliency", "sage"):
        result = explain_model(model, eights_train, target=1, L=4, method=method, seed=0)
        assert isinstance(result, Explanation) and len(set(result.features.tolist())) == 4
        assert len(result.scores) == 4 and np.isfinite(result.objective)
        after[method] = (example.eight_probability(model, eights_test, result.features), result.objective)
    print('\nL = 4, "8" probability of held-out 8s with the pixels blanked: '
          + ", ".join(f"{m} {p:.3f}" for m, (p, _) in after.items()))
    assert after["grids"][0] <= after["sage"][0] and after["grids"][0] < after["saliency"][0] - 0.03, after
    assert after["grids"][1] <= after["saliency"][1]  # never worse than its start
    for method in ("grids", "saliency", "sage"):
        result = explain_model(model, eights_train, target=1, L=10, method=method, seed=0)
        assert example.eight_probability(model, eights_test, result.features) < 0.02


def test_the_generic_objective_scores_removals_exactly(digits):
    """Swap and subset losses equal the model run on masked inputs; gains match a finite
    difference of the objective along each feature's mask."""
    _, model, eights_train, *_ = digits
    X = eights_train[:40]
    objective = ModuleObjective(model, [1], baseline=0.0)
    cells = objective.cells(X)

    def direct(subset) -> float:
        Z = X.copy()
        Z[:, list(subset)] = 0.0
        with torch.no_grad():
            ratio = model(torch.from_numpy(Z))[:, 1] / model(torch.from_numpy(X))[:, 1]
        return float((ratio.double() ** 2).mean())

    subset = np.array([18, 27, 42, 43])
    swaps = objective.swap_losses(cells, subset, 1, np.array([5, 26, 60]))
    expected = [direct(subset)] + [direct([18, c, 42, 43]) for c in (5, 26, 60)]
    np.testing.assert_allclose(swaps, expected, rtol=1e-5)
    np.testing.assert_allclose(objective.subset_losses(cells, np.array([subset, [1, 2, 3, 4]])),
                               [direct(subset), direct([1, 2, 3, 4])], rtol=1e-5)
    gains = objective.gains(cells, subset[:2])
    masks = objective._masks([subset[:2]])
    for j in (26, 42, 60):
        step = torch.zeros_like(masks)
        step[0, j] = 1e-3
        with torch.no_grad():
            plus, minus = objective._loss_of_masks(cells, masks + step), objective._loss_of_masks(cells, masks - step)
        assert gains[j] == pytest.approx(float(plus - minus) / 2e-3, rel=1e-2, abs=1e-4)


def test_explain_model_errors_name_the_problem(digits):
    _, model, eights_train, *_ = digits
    with pytest.raises(ValueError, match="method 'lime'"):
        explain_model(model, eights_train, target=1, L=4, method="lime")
    with pytest.raises(ValueError, match="target 5 is not an output of the model"):
        explain_model(model, eights_train, target=5, L=4)
    logits = model[0]  # without the softmax: the "3" logit of an 8 is negative
    with pytest.raises(ValueError, match="must be nonnegative"):
        explain_model(logits, eights_train, target=0, L=4)
    with pytest.raises(ValueError, match="L = 100 is larger than"):
        explain_model(model, eights_train, target=1, L=100)
