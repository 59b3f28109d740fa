"""Evaluation of selections (DESIGN §6): expression drops, hit ratios, Hi-C, ground truth, cross-cell-type."""
