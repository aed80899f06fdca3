"""``etl report``: one self-contained HTML page about a dataset.

The page needs nothing but itself to be viewed: CSS is inline and every plot is an inline SVG
drawn by matplotlib (the ``report`` extra: ``pip install 'etl[report]'``). It shows counts per
run, publisher, language and source; the length distribution; articles over time by
``published_at``; duplicates and rejects by reason; and a sample of titles.
"""

from __future__ import annotations

import html
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.errors import ConfigError, MissingDependency
from etl.store import Store as Dataset

_COLUMNS = (
    "run_id",
    "publisher",
    "language",
    "source",
    "word_count",
    "char_count",
    "published_at",
    "title",
    "uri",
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1f3a5f;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;opacity:.85;font-size:14px}
main{padding:20px 28px;display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 18px}
section.wide{grid-column:1/-1}
h2{font-size:16px;margin:0 0 10px}
.kpis{display:flex;gap:14px;flex-wrap:wrap}
.kpi{background:#eef3fa;border-radius:6px;padding:8px 14px;min-width:110px}
.kpi b{display:block;font-size:20px}
.kpi span{font-size:12px;color:#4a5468}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff3}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:0}
figure svg{width:100%;height:auto;display:block}
.muted{color:#6b7385;font-size:13px}
"""


def _matplotlib():
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependency("report", "matplotlib", "'etl[report]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 96,
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "etl-report",  # stable ids: the same data gives the same page
        }
    )
    return plt


def _svg(plt: Any, fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _bar(plt: Any, counts: list[tuple[str, int]], title: str, *, horizontal: bool = True) -> str:
    labels = [str(k) if k is not None else "(none)" for k, _ in counts]
    values = [v for _, v in counts]
    height = max(1.8, 0.28 * len(labels) + 0.8) if horizontal else 2.8
    fig, ax = plt.subplots(figsize=(6.2, height))
    if horizontal:
        ax.barh(labels[::-1], values[::-1], color="#3b6ea5")
        ax.set_xlabel("articles")
    else:
        ax.bar(labels, values, color="#3b6ea5")
        ax.set_ylabel("articles")
        ax.tick_params(axis="x", rotation=30)
    ax.set_title(title, loc="left", fontsize=10)
    return _svg(plt, fig)


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(
        f'<th class="n">{html.escape(h)}</th>' if i else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{v:,}</td>' if isinstance(v, int) else f"<td>{html.escape(str(v))}</td>"
            for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _counts(table: Any, column: str, top: int = 15) -> list[tuple[Any, int]]:
    if column not in table.column_names:
        return []
    counts = table.column(column).value_counts().to_pylist()
    pairs = sorted(((c["values"], c["counts"]) for c in counts), key=lambda p: (-p[1], str(p[0])))
    if len(pairs) > top:
        rest = sum(n for _, n in pairs[top - 1 :])
        pairs = [*pairs[: top - 1], (f"other ({len(pairs) - top + 1})", rest)]
    return pairs


def collect(path: str | Path, *, titles: int = 20) -> dict[str, Any]:
    """The numbers the report shows (also useful on their own), read as one committed state
    while runs may be committing (:func:`etl.describe.read_committed`)."""
    from etl.describe import read_committed

    return read_committed(path, lambda: _collect(path, titles))


def _collect(path: str | Path, titles: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    from etl.describe import open_dataset, run_line
    from etl.store.fs import arrow

    ds = Dataset(path)
    if not ds.root.is_dir():
        raise ConfigError(f"no dataset at {path}", hint="give the folder a [sink] path points to")
    runs = ds.manifests()
    dataset = open_dataset(ds.root)
    if dataset is None and not runs:
        raise ConfigError(f"{path} holds no etl dataset (no data files, no _etl/runs)")
    if dataset is not None:
        cols = [c for c in _COLUMNS if c in dataset.schema.names]
        table = dataset.to_table(columns=cols)
    else:
        table = pa.table({c: pa.array([], pa.string()) for c in ("run_id", "title")})
    rejects_files = ds.rejects_files()
    rejects = (
        pads.dataset(
            [str(arrow(f)[0]) for f in rejects_files],
            format="parquet",
            filesystem=arrow(rejects_files[0])[1],
        ).to_table(columns=["run_id", "reason"])
        if rejects_files
        else None
    )
    info: dict[str, Any] = {"path": str(ds.root), "rows": table.num_rows}
    per_run_rows = dict(_counts(table, "run_id", top=10**9))
    # the counts of etl inspect and etl runs: duplicates of the corpus, not re-reads;
    # runs that changed nothing are counted, not listed
    lines = [{**run_line(m), "rows": per_run_rows.get(m.get("run_id"), 0)} for m in runs]
    info["runs"] = [r for r in lines if r["changed"]]
    info["runs_total"] = len(lines)
    info["runs_unchanged"] = len(lines) - len(info["runs"])
    info["publishers"] = _counts(table, "publisher")
    info["languages"] = _counts(table, "language")
    info["sources"] = _counts(table, "source")
    info["duplicates"] = sum(r["duplicates"] or 0 for r in lines)
    info["rejects"] = (
        sorted(Counter(rejects.column("reason").to_pylist()).items(), key=lambda p: -p[1])
        if rejects is not None
        else []
    )
    words = table.column("word_count") if "word_count" in table.column_names else None
    info["words"] = (
        pc.drop_null(words).to_numpy() if words is not None else pa.array([], pa.int64()).to_numpy()
    )
    info["published"], info["time_unit"], info["undated"] = [], "month", table.num_rows
    if "published_at" in table.column_names:
        published = pc.drop_null(table.column("published_at"))
        info["undated"] = table.num_rows - len(published)
        if len(published):
            # bucket in Arrow (no Python datetime per article): month, day or hour by span
            bounds = pc.min_max(published).as_py()
            span = (bounds["max"] - bounds["min"]).days
            unit = "month" if span > 120 else "day" if span > 14 else "hour"
            buckets = pc.floor_temporal(published, unit=unit).value_counts().to_pylist()
            info["published"] = sorted((b["values"], b["counts"]) for b in buckets)
            info["time_unit"] = unit
    sample = []
    if "title" in table.column_names and titles:
        picked = table.filter(pc.is_valid(table.column("title")))
        step = max(1, picked.num_rows // titles)
        keep = [c for c in ("title", "publisher", "published_at") if c in picked.column_names]
        rows = pa.array(list(range(0, picked.num_rows, step))[:titles], pa.int64())
        sample = picked.select(keep).take(rows).to_pylist()
    info["titles"] = sample
    return info


def _over_time(plt: Any, buckets: list[tuple[datetime, int]], unit: str) -> str:
    import matplotlib.dates as mdates

    fig, ax = plt.subplots(figsize=(12.4, 2.8))
    width = {"month": 25, "day": 0.8, "hour": 0.03}[unit]
    xs = [x.replace(tzinfo=None) for x, _ in buckets]
    ax.bar(xs, [n for _, n in buckets], width=width, color="#3b6ea5", align="edge")
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax.set_ylabel(f"articles per {unit}")
    ax.set_title(f"Articles by published_at (per {unit}, UTC)", loc="left", fontsize=10)
    return _svg(plt, fig)


def _lengths(plt: Any, words: Any) -> str:
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.2, 2.8))
    ax.hist(words, bins=min(40, max(5, len(np.unique(words)))), color="#3b6ea5")
    ax.set_xlabel("words per article")
    ax.set_ylabel("articles")
    ax.set_title("Length distribution", loc="left", fontsize=10)
    return _svg(plt, fig)


def _runs_plot(plt: Any, runs: list[dict[str, Any]]) -> str:
    labels = [r["run_id"] or "?" for r in runs][-20:]
    shown = runs[-20:]
    fig, ax = plt.subplots(figsize=(6.2, max(1.8, 0.32 * len(labels) + 0.9)))
    y = list(range(len(labels)))[::-1]
    left = [0] * len(labels)
    for key, color in (("written", "#3b6ea5"), ("duplicates", "#e0a030"), ("rejected", "#c0392b")):
        values = [r[key] or 0 for r in shown]
        ax.barh(y, values, left=left, color=color, label=key)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_yticks(y, labels)
    ax.set_xlabel("articles")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title("Per run: written, duplicates skipped, rejected", loc="left", fontsize=10)
    return _svg(plt, fig)


def render(info: dict[str, Any]) -> str:
    """The HTML page for :func:`collect`'s numbers."""
    import numpy as np

    plt = _matplotlib()
    esc = html.escape

    def section(title: str, body: str, wide: bool = False) -> str:
        cls = ' class="wide"' if wide else ""
        return f"<section{cls}><h2>{esc(title)}</h2>{body}</section>"

    def figure(svg: str, label: str) -> str:
        return f'<figure role="img" aria-label="{esc(label)}">{svg}</figure>'

    parts = []
    kpis = [
        ("articles", info["rows"]),
        ("runs", info.get("runs_total", len(info["runs"]))),
        ("publishers", len(info["publishers"])),
        ("duplicates skipped", info["duplicates"]),
        ("rejects", sum(n for _, n in info["rejects"])),
    ]
    kpi_html = "".join(f"<div class='kpi'><b>{v:,}</b><span>{esc(k)}</span></div>" for k, v in kpis)
    parts.append(section("Summary", f"<div class='kpis'>{kpi_html}</div>", wide=True))
    if info["runs"]:
        unchanged = info.get("runs_unchanged", 0)
        note = (
            f"<p class='muted'>{unchanged:,} more runs changed nothing (not shown).</p>"
            if unchanged
            else ""
        )
        rows = [
            (r["run_id"], r["rows"], r["written"] or 0, r["duplicates"] or 0, r["rejected"] or 0)
            for r in info["runs"]
        ]
        parts.append(
            section(
                "Runs",
                figure(_runs_plot(plt, info["runs"]), "articles per run")
                + _table(rows[-20:], ("run", "rows now", "written", "duplicates", "rejected"))
                + note,
            )
        )
    if info["published"]:
        note = f"<p class='muted'>{info['undated']:,} articles have no published_at.</p>"
        parts.append(
            section(
                "Articles over time",
                figure(_over_time(plt, info["published"], info["time_unit"]), "articles over time")
                + note,
                wide=True,
            )
        )
    for key, title in (
        ("publishers", "Per publisher"),
        ("languages", "Per language"),
        ("sources", "Per source"),
    ):
        if info[key]:
            parts.append(
                section(
                    title,
                    figure(_bar(plt, info[key], title), title.lower())
                    + _table(
                        [(k if k is not None else "(none)", n) for k, n in info[key]],
                        (key[:-1], "articles"),
                    ),
                )
            )
    if len(info["words"]):
        words = info["words"]
        note = (
            f"<p class='muted'>median {int(np.median(words)):,} words; shortest "
            f"{int(words.min()):,}, longest {int(words.max()):,}</p>"
        )
        parts.append(section("Length", figure(_lengths(plt, words), "length distribution") + note))
    reject_body = (
        figure(_bar(plt, info["rejects"], "Rejects by reason"), "rejects by reason")
        + _table(info["rejects"], ("reason", "rejects"))
        if info["rejects"]
        else "<p class='muted'>No rejects.</p>"
    )
    dup_rows = [(r["run_id"], r["duplicates"] or 0) for r in info["runs"] if r["duplicates"]]
    dup_body = (
        "<h2>Duplicates skipped (the same text as another article; articles read again "
        "from inputs ingested before are not counted)</h2>"
    ) + (_table(dup_rows, ("run", "duplicates")) if dup_rows else "<p class='muted'>None.</p>")
    parts.append(section("Rejects by reason", reject_body + dup_body))
    if info["titles"]:
        rows = [
            (
                t.get("title"),
                t.get("publisher") or "",
                t["published_at"].strftime("%Y-%m-%d") if t.get("published_at") else "",
            )
            for t in info["titles"]
        ]
        parts.append(
            section(
                "Sample of titles", _table(rows, ("title", "publisher", "published")), wide=True
            )
        )
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>etl report: {esc(Path(info['path']).name)}</title>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>Dataset report: {esc(Path(info['path']).name)}</h1>"
        f"<p>{esc(info['path'])} &middot; {info['rows']:,} articles &middot; made {now}</p></header>"
        f"<main>{''.join(parts)}</main></body></html>\n"
    )


def write_report(path: str | Path, output: str | Path, *, titles: int = 20) -> Path:
    """Write the report of the dataset at ``path`` to ``output``; return the output path."""
    _matplotlib()  # fail before reading anything when the extra is missing
    page = render(collect(path, titles=titles))
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
