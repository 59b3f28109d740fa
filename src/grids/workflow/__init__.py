"""The code only the Snakemake workflow needs, kept apart from the library proper.

- ``logs``: :func:`logged`, the logging glue each rule script wraps its call in;
- ``config``: the checks of the config, sample sheet and targets table that JSON schema cannot
  express (``workflow/rules/common.smk`` runs them when Snakemake parses the workflow);
- ``gpus``: which GPU a job gets;
- ``stages``: the stage runners, one module per stage, one function per rule: they read the
  rule's input files, call the library and write the rule's outputs.

The library (every other subpackage of :mod:`grids`) never imports this package.
"""

from grids.workflow.logs import logged

__all__ = ["logged"]
