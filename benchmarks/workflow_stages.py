"""Where a workflow run spent its time: per rule, jobs, summed job seconds and the longest job,
read from a Snakemake log (by default the newest under .snakemake/log), and the run's wall time.

    python benchmarks/workflow_stages.py                # the newest run in this directory
    python benchmarks/workflow_stages.py path/to/run.snakemake.log

Job seconds are the time between Snakemake's start and finish lines of each job (a job's own
threads count once); with --cores N, up to N of them overlap, so the wall time is smaller than
their sum. Snakemake's log timestamps have one-second resolution.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import re
import sys
from pathlib import Path

STAMP = re.compile(r"\[(\w{3} \w{3}\s+\d+ [\d:]+ \d{4})\]")
RULE = re.compile(r"(?:local)?rule (\w+):")
JOB = re.compile(r"\s+jobid: (\d+)")
DONE = re.compile(r"Finished job(?:id:)? (\d+)")
ELAPSED = re.compile(r"Elapsed time: ([\d:.]+)")


def newest_log(root: Path) -> Path:
    logs = sorted((root / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        sys.exit(f"no Snakemake log under {root / '.snakemake' / 'log'}; run the workflow first")
    return logs[-1]


def stage_seconds(lines: list[str]) -> tuple[dict[str, list[float]], float | None]:
    """rule -> job durations (s), and the run's wall time in seconds (None if it did not finish)."""
    now = None
    rule = None
    started: dict[str, tuple[str, datetime.datetime]] = {}
    durations: dict[str, list[float]] = collections.defaultdict(list)
    first = last = None
    for line in lines:
        if match := STAMP.match(line):
            now = datetime.datetime.strptime(re.sub(" +", " ", match.group(1)), "%a %b %d %H:%M:%S %Y")
            first = first or now
            last = now
        if match := RULE.match(line.strip()):
            rule = match.group(1)
        elif (match := JOB.match(line)) and rule and now:
            started[match.group(1)] = (rule, now)
            rule = None
        elif (match := DONE.match(line.strip())) and match.group(1) in started and now:
            name, start = started.pop(match.group(1))
            durations[name].append((now - start).total_seconds())
    finished = any(ELAPSED.search(line) for line in lines[-5:])
    return durations, (last - first).total_seconds() if finished and first and last else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", nargs="?", type=Path, help="a Snakemake log (default: the newest in .snakemake/log)")
    args = parser.parse_args()
    path = args.log or newest_log(Path.cwd())
    durations, wall = stage_seconds(path.read_text().splitlines())
    if not durations:
        sys.exit(f"{path}: no finished jobs in this log")
    print(f"log: {path}")
    print(f"{'rule':32s} {'jobs':>4s} {'job_s':>7s} {'max_s':>6s}")
    for name, values in sorted(durations.items(), key=lambda item: -sum(item[1])):
        print(f"{name:32s} {len(values):4d} {sum(values):7.0f} {max(values):6.0f}")
    total = sum(sum(v) for v in durations.values())
    print(f"{'all jobs':32s} {sum(len(v) for v in durations.values()):4d} {total:7.0f}")
    print(f"wall_s={wall:.0f}" if wall is not None else "wall_s=NA (the run did not finish)")


if __name__ == "__main__":
    main()
