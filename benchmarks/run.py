"""The benchmark: ``etl run`` against the hand-written floor, on the same corpus.

    python benchmarks/run.py                                # 10k and 100k articles, 3 rounds
    python benchmarks/run.py --articles 10000 --rounds 5
    python benchmarks/run.py --articles 100000 --inputs text --no-transforms --no-startup

For each corpus size it makes (or reuses) the corpus of ``benchmarks/corpus.py`` under
``--work``, then runs, alternately and ``--rounds`` times each, the floor
(``benchmarks/floor.py``) and ``etl run`` (text -> parquet, and jsonl -> parquet when the
``jsonl`` source is installed), each as a child process writing a fresh output. Per child it
takes the wall time, the CPU time (user + system) and the peak RSS (``os.wait4``'s rusage),
and reports the medians and the ratio framework / floor as a Markdown table. Then it times
the transforms (``normalize``, ``dedup`` with ``method = "near"``) when they are installed,
as the extra wall time of ``text -> transform -> parquet`` over ``text -> parquet``, and the
start-up of ``etl --help`` and ``etl plugins``.

Runs on a busy machine disagree; the ratios measured in one run, with the two programs
alternating, are what to compare. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import make_corpus  # noqa: E402


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mb: float
    #: peak RSS of the largest other process of the tree (a worker), 0 without one
    worker_rss_mb: float = 0.0


@dataclass
class Case:
    """One program on one input: the command, its output to clear, and its samples."""

    name: str
    cmd: list[str]
    output: Path
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


def _become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux), so that the CPU time of
    every process a child starts can be collected: a fork server and the workers it forks
    are not the child's own children, and outlive it by a moment."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


SUBREAPER = _become_subreaper()


def measure(cmd: list[str], output: Path) -> Sample:
    """Run ``cmd`` as a child; its wall time, the CPU time (user + system) of its whole
    process tree, its peak RSS and the largest peak RSS of the other processes of the tree.

    The child's rusage (``os.wait4``) counts the children it waited for; as a subreaper this
    process then waits for the descendants it did not (a fork server and its workers) and
    adds theirs.
    """
    if output.is_dir():
        shutil.rmtree(output)
    elif output.exists():
        output.unlink()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    others = 0.0
    while SUBREAPER:  # the orphans it left (it reaped its own children)
        try:
            _, _, orphan = os.wait4(-1, 0)
        except ChildProcessError:
            break
        cpu += orphan.ru_utime + orphan.ru_stime
        others = max(others, orphan.ru_maxrss / 1024)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-3000:]}")
    return Sample(wall, cpu, usage.ru_maxrss / 1024, others)


def etl_command() -> list[str]:
    return [sys.executable, "-m", "etl.cli"]


def installed_plugins() -> set[tuple[str, str]]:
    out = subprocess.run(
        [*etl_command(), "plugins", "--json"], capture_output=True, text=True, check=True
    ).stdout
    data = json.loads(out)
    items = data if isinstance(data, list) else data.get("plugins", [])
    return {(p.get("kind"), p.get("name")) for p in items}


def write_pipeline(
    path: Path,
    source: str,
    inputs: Path,
    out: Path,
    transforms=(),
    executor: str = "local",
    workers: int = 2,
) -> Path:
    lines = ["[[sources]]", f'plugin = "{source}"', f'paths = ["{inputs}"]', ""]
    if executor != "local":
        lines += ["[executor]", f'plugin = "{executor}"', f"workers = {workers}", ""]
    for name, options in transforms:
        lines += ["[[transforms]]", f'plugin = "{name}"']
        lines += [f"{k} = {json.dumps(v)}" for k, v in options.items()]
        lines.append("")
    lines += ["[sink]", 'plugin = "parquet"', f'path = "{out}"', 'mode = "overwrite"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def floor_case(kind: str, inputs: Path, out: Path) -> Case:
    cmd = [sys.executable, str(HERE / "floor.py"), kind, str(inputs), str(out)]
    return Case(f"floor {kind}", cmd, out)


def etl_case(name: str, pipeline: Path, out: Path) -> Case:
    return Case(name, [*etl_command(), "run", "-q", str(pipeline)], out)


def alternate(cases: list[Case], rounds: int, label: str) -> None:
    for r in range(rounds):
        for case in cases:
            case.samples.append(measure(case.cmd, case.output))
            s = case.samples[-1]
            print(
                f"  [{label} round {r + 1}/{rounds}] {case.name}: {s.wall:.2f} s wall, "
                f"{s.cpu:.2f} s CPU, {s.rss_mb:.0f} MB",
                file=sys.stderr,
            )


TRANSFORMS = {
    "normalize": ("normalize", {}),
    "dedup near": ("dedup", {"method": "near"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/etl-bench"))
    parser.add_argument("--inputs", nargs="+", default=["text", "jsonl"])
    parser.add_argument("--no-transforms", action="store_true")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument(
        "--processes",
        action="store_true",
        help='also run etl with executor "processes" (--workers workers) against the same floor',
    )
    parser.add_argument("--workers", type=int, default=2, help="workers of the processes rows")
    parser.add_argument("--json", type=Path, help="also write the medians here")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    plugins = installed_plugins()
    results: dict = {"machine": machine(), "sizes": {}}
    report: list[str] = []

    for n in args.articles:
        corpus = make_corpus(args.work / f"corpus-{n}", n)
        out = args.work / f"out-{n}"
        out.mkdir(exist_ok=True)
        pairs: list[tuple[str, Case, Case]] = []
        for kind in args.inputs:
            if ("source", kind) not in plugins:
                report.append(f"(skipped {kind}: no '{kind}' source installed)")
                continue
            inputs = corpus / ("text" if kind == "text" else "articles.jsonl")
            pipeline = write_pipeline(out / f"{kind}.toml", kind, inputs, out / f"etl-{kind}")
            floor = floor_case(kind, inputs, out / f"floor-{kind}.parquet")
            pairs.append((kind, floor, etl_case(f"etl {kind}", pipeline, out / f"etl-{kind}")))
            if args.processes:
                many = write_pipeline(
                    out / f"{kind}-processes.toml",
                    kind,
                    inputs,
                    out / f"etl-{kind}-processes",
                    executor="processes",
                    workers=args.workers,
                )
                pairs.append(
                    (
                        f"{kind}, processes ({args.workers} workers)",
                        floor,
                        etl_case(f"etl {kind} processes", many, out / f"etl-{kind}-processes"),
                    )
                )
        print(f"{n} articles: floor and etl, {args.rounds} rounds", file=sys.stderr)
        cases: list[Case] = []
        for case in (c for _, f, e in pairs for c in (f, e)):
            if not any(case is other for other in cases):  # a floor serves two rows
                cases.append(case)
        alternate(cases, args.rounds, f"{n}")
        size = results["sizes"].setdefault(str(n), {})
        for kind, floor, framework in pairs:
            size[kind] = {
                "floor": summary(floor, n),
                "etl": summary(framework, n),
            }

        if not args.no_transforms and n == min(args.articles):  # the smallest size only
            missing = [
                label
                for label, (name, _) in TRANSFORMS.items()
                if ("transform", name) not in plugins
            ]
            if missing:
                report.append(
                    f"(skipped transform timing of {', '.join(missing)}: not installed; "
                    "pip install -e ./plugins/etl-nlp for normalize)"
                )
            present = [t for t in TRANSFORMS if t not in missing]
            if present:
                inputs = corpus / "text"
                base = etl_case(
                    "etl text",
                    write_pipeline(out / "base.toml", "text", inputs, out / "etl-base"),
                    out / "etl-base",
                )
                cases = [base]
                for label in present:
                    pipeline = write_pipeline(
                        out / f"t-{label.replace(' ', '-')}.toml",
                        "text",
                        inputs,
                        out / "etl-t",
                        [TRANSFORMS[label]],
                    )
                    cases.append(etl_case(f"etl text + {label}", pipeline, out / "etl-t"))
                print(f"{n} articles: transforms", file=sys.stderr)
                alternate(cases, args.rounds, f"{n} transforms")
                size["transforms"] = {c.name: summary(c, n) for c in cases}

    if not args.no_startup:
        results["startup"] = startup()

    print(markdown(results, report))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


def _mb(value: float) -> str:
    return f"{value:.0f}" if value else "-"


def summary(case: Case, n: int) -> dict:
    return {
        "wall": case.median("wall"),
        "cpu": case.median("cpu"),
        "rss_mb": case.median("rss_mb"),
        "worker_rss_mb": case.median("worker_rss_mb"),
        "cpus": [round(s.cpu, 3) for s in case.samples],
        "articles_per_s": n / case.median("wall"),
        "walls": [round(s.wall, 3) for s in case.samples],
    }


def startup(runs: int = 10) -> dict:
    out = {}
    for label, argv in (("etl --help", ["--help"]), ("etl plugins", ["plugins"])):
        cmd = [str(Path(sys.executable).with_name("etl")), *argv]
        if not Path(cmd[0]).exists():
            cmd = [*etl_command(), *argv]
        subprocess.run(cmd, capture_output=True, check=True)  # warm the caches
        walls = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            walls.append(time.perf_counter() - t0)
        out[label] = {"median": statistics.median(walls), "min": min(walls)}
    t0 = time.perf_counter()
    for _ in range(runs):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    out["python -c pass"] = {"median": (time.perf_counter() - t0) / runs}
    return out


def machine() -> dict:
    import pyarrow

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "pyarrow": pyarrow.__version__,
        "load_1min_at_end": load,
    }


def markdown(results: dict, notes: list[str]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, pyarrow "
        f"{m['pyarrow']}; medians of alternated runs; load average {m['load_1min_at_end']} "
        "at the end (over the core count, the wall ratios of the processes rows mean little).",
        "CPU s: user + system of the whole process tree (driver, fork server, workers). "
        "RSS: peak of the driver; worker RSS: the largest peak of the other processes.",
        "",
        "| articles | input | floor wall s | etl wall s | **wall ratio** | floor CPU s | "
        "etl CPU s | CPU ratio | floor RSS MB | etl RSS MB | RSS ratio | worker RSS MB | "
        "etl articles/s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, size in results["sizes"].items():
        for kind, pair in size.items():
            if kind == "transforms":
                continue
            f, e = pair["floor"], pair["etl"]
            lines.append(
                f"| {int(n):,} | {kind} | {f['wall']:.2f} | {e['wall']:.2f} | "
                f"**{e['wall'] / f['wall']:.2f}x** | {f['cpu']:.2f} | {e['cpu']:.2f} | "
                f"{e['cpu'] / f['cpu']:.2f}x | "
                f"{f['rss_mb']:.0f} | {e['rss_mb']:.0f} | {e['rss_mb'] / f['rss_mb']:.2f}x | "
                f"{_mb(e['worker_rss_mb'])} | {e['articles_per_s']:,.0f} |"
            )
    sizes = list(results["sizes"])
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        lines += ["", f"Growth from {int(lo):,} to {int(hi):,} articles:", ""]
        for kind in results["sizes"][hi]:
            if kind == "transforms" or kind not in results["sizes"][lo]:
                continue
            # a processes row shares its input's floor: said once, on the input's own row
            for impl in ("floor", "etl") if ", processes" not in kind else ("etl",):
                a, b = results["sizes"][lo][kind][impl], results["sizes"][hi][kind][impl]
                workers = ""
                if a.get("worker_rss_mb") and b.get("worker_rss_mb"):
                    workers = f", largest worker x{b['worker_rss_mb'] / a['worker_rss_mb']:.2f}"
                lines.append(
                    f"- {impl} {kind}: wall x{b['wall'] / a['wall']:.1f} for x"
                    f"{int(hi) / int(lo):.0f} articles; peak RSS x{b['rss_mb'] / a['rss_mb']:.2f}"
                    f"{workers}"
                )
    for n, size in results["sizes"].items():
        t = size.get("transforms")
        if not t:
            continue
        base = t["etl text"]["wall"]
        lines += [
            "",
            f"Transforms, {int(n):,} articles (text -> transform -> parquet):",
            "",
            "| pipeline | wall s | extra wall s | transform articles/s |",
            "|---|---:|---:|---:|",
        ]
        for name, s in t.items():
            if name == "etl text":
                continue
            extra = s["wall"] - base
            rate = f"{int(n) / extra:,.0f}" if extra > 0 else "n/a (within noise)"
            lines.append(f"| {name} | {s['wall']:.2f} | {extra:+.2f} | {rate} |")
    if "startup" in results:
        lines += ["", "Start-up (median of 10):", ""]
        for label, s in results["startup"].items():
            lines.append(f"- `{label}`: {s['median']:.3f} s")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
