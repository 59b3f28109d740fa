"""``grids-simulate``: write simulated multiome samples outside the workflow."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from .hic import write_hic_cool
from .model import build_regulatory_model
from .params import PRESETS, make_params
from .sample import simulate_sample

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """``grids-simulate``: write simulated samples (and, optionally, redundancy targets) to disk.

    Parameters
    ----------
    argv
        Command-line arguments without the program name (see ``grids-simulate --help``); None:
        ``sys.argv[1:]``.

    Raises
    ------
    SystemExit
        From argparse, with status 2, for bad arguments: an unknown option or preset, a ``--set``
        without ``KEY=VALUE``, or parameters :func:`grids.simulate.params.make_params` rejects (a
        ``--set`` value that is not JSON raises ``json.JSONDecodeError`` instead).
    """
    parser = argparse.ArgumentParser(prog="grids-simulate", description=__doc__)
    parser.add_argument("samples", nargs="+", help="sample names (each gets OUT/<sample>/)")
    parser.add_argument("--out", type=Path, default=Path("results/simulated"), help="output folder")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", metavar="KEY=JSON", action="append", default=[],
                        help="override a SimulationParams field, e.g. --set cells_per_sample=300")
    parser.add_argument("--no-hic", action="store_true", help="skip the per-cell-type .cool files")
    parser.add_argument("--targets", type=Path, metavar="TSV",
                        help="also write per-gene targets (markers with a planted OR group) as a targets.tsv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if not value:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = json.loads(value)
    try:
        params = make_params(args.preset, args.seed, **overrides)
    except ValueError as err:
        parser.error(str(err))
    model = build_regulatory_model(params)
    if args.targets:
        from ..io import write_tsv
        from .targets import redundancy_targets

        write_tsv(redundancy_targets(model), args.targets)
    for sample in args.samples:
        simulate_sample(params, sample, args.out / sample, model=model, hic=False)
        if not args.no_hic:
            for cell_type in model.cell_types:
                write_hic_cool(model, cell_type, args.out / sample / "hic" / f"{cell_type}.cool")


if __name__ == "__main__":
    main()
