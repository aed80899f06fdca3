"""How long the ``etl`` command takes to answer when it has little to do.

    python benchmarks/cli_startup.py [--repeat 15] [--json]

Runs ``etl --help`` and ``etl plugins`` (and, for reference, ``python -c pass``) as a user
would, each ``--repeat`` times, and prints the median and best wall time of each against its
budget: ``etl --help`` under 0.3 s, ``etl plugins`` under 0.5 s (issue 18). The best of the
runs is the one compared: on a shared machine the median measures the neighbours too.
Bytecode is cached as an installed package has it (``PYTHONDONTWRITEBYTECODE`` is dropped
for these runs: compiling some 70 modules again each time would add 0.15 s). Exit code 1
when a best time is over its budget.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: (what is run, budget in seconds)
CASES = (
    (["--help"], 0.3),
    (["plugins"], 0.5),
)


def etl_command() -> list[str]:
    """The ``etl`` entry point beside this Python, else ``python -m etl.cli``."""
    script = Path(sys.executable).parent / "etl"
    if script.exists():
        return [str(script)]
    found = shutil.which("etl")
    return [found] if found else [sys.executable, "-m", "etl.cli"]


#: the environment of the timed runs: bytecode cached, as for an installed package
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV
        )
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    etl = etl_command()
    for extra, _ in CASES:  # warm the file cache and write the bytecode
        timed([*etl, *extra], 2)
    rows = []
    python = timed([sys.executable, "-c", "pass"], args.repeat)
    rows.append(("python -c pass", python, None))
    for extra, budget in CASES:
        rows.append((f"etl {' '.join(extra)}", timed([*etl, *extra], args.repeat), budget))
    failed = False
    results = []
    for name, times, budget in rows:
        best, median = min(times), statistics.median(times)
        ok = budget is None or best <= budget
        failed |= not ok
        results.append(
            {
                "command": name,
                "best_s": round(best, 3),
                "median_s": round(median, 3),
                "budget_s": budget,
                "ok": ok,
            }
        )
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print("| command | best | median | budget |\n|---|---|---|---|")
        for r in results:
            budget = (
                f"{r['budget_s']} s" + ("" if r["ok"] else " **over**") if r["budget_s"] else "-"
            )
            print(f"| `{r['command']}` | {r['best_s']:.3f} s | {r['median_s']:.3f} s | {budget} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
