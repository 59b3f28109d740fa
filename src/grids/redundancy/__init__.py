"""Redundancy maps (docs/architecture.md §5b): which of a selection's peaks back each other up for a target."""

from .maps import (
    MAP_COLUMNS,
    SUMMARY_COLUMNS,
    MapSettings,
    RedundancyGroup,
    RedundancyMap,
    TargetEvaluator,
    bootstrap_interval,
    empty_map,
    map_selections,
    redundancy_groups,
    redundancy_map,
    stacked_removals,
    summary_row,
)

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
    "stacked_removals",
    "summary_row",
]
