"""Redundancy maps (docs/architecture.md §5b): which of a selection's peaks back each other up for a target."""

from .maps import (
    MAP_COLUMNS,
    MapSettings,
    RedundancyGroup,
    RedundancyMap,
    TargetEvaluator,
    bootstrap_interval,
    empty_map,
    redundancy_groups,
    redundancy_map,
    stacked_removals,
)
from .stage import SUMMARY_COLUMNS, map_selections, run_redundancy_maps, run_redundancy_summary, summary_row

__all__ = [
    "MAP_COLUMNS",
    "SUMMARY_COLUMNS",
    "MapSettings",
    "RedundancyGroup",
    "RedundancyMap",
    "TargetEvaluator",
    "bootstrap_interval",
    "empty_map",
    "map_selections",
    "redundancy_groups",
    "redundancy_map",
    "run_redundancy_maps",
    "run_redundancy_summary",
    "stacked_removals",
    "summary_row",
]
