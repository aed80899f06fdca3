"""`etl report`: a self-contained HTML page, rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers import run_etl
from tests.helpers.analytics import etl_ok

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

# Measures every plot once laid out, and writes the sizes into the DOM that --dump-dom prints.
MEASURE = """<script>
window.addEventListener('load', () => {
  const sizes = [...document.querySelectorAll('figure svg')].map(s => {
    const r = s.getBoundingClientRect(); return Math.round(r.width) + 'x' + Math.round(r.height);
  });
  const out = document.createElement('pre'); out.id = 'etl-sizes';
  out.textContent = sizes.join(' '); document.body.appendChild(out);
});
</script></body>"""


@pytest.fixture(scope="module")
def report(datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "news.html"
    stdout = etl_ok("report", str(datasets["news"]), "-o", str(out))
    assert str(out) in stdout
    return out


@pytest.mark.slow
def test_report_is_self_contained_and_complete(report, datasets):
    page = report.read_text(encoding="utf-8")
    # nothing to fetch: no scripts, stylesheets, images or fonts from anywhere
    assert not re.search(r"<(script|link|iframe)\b", page)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "url(http" not in page and "@import" not in page
    for heading in (
        "Runs",
        "Articles over time",
        "Per publisher",
        "Per language",
        "Per source",
        "Length",
        "Rejects by reason",
        "Duplicates skipped",
        "Sample of titles",
    ):
        assert f">{heading}" in page, heading
    assert page.count("<svg") >= 7
    for name in ("Xinhua", "Le Monde", "El País", "synthetic_news", "empty text"):
        assert name in page
    assert "3,864" in page  # rows of both runs


def test_report_on_seed_dataset(datasets, tmp_path):
    out = tmp_path / "seed.html"
    etl_ok("report", str(datasets["seed"]), "-o", str(out))
    page = out.read_text(encoding="utf-8")
    assert "Global Times" in page and "No rejects." in page


@pytest.mark.slow
def test_report_on_partitioned_dataset(datasets, tmp_path):
    """The partition column comes from the folders (language=en/), counted like any other."""
    import pyarrow.compute as pc

    from etl.describe import open_dataset

    out = tmp_path / "parted.html"
    etl_ok("report", str(datasets["parted"]), "-o", str(out))
    page = out.read_text(encoding="utf-8")
    langs = open_dataset(datasets["parted"]).to_table(columns=["language"]).column("language")
    for row in pc.value_counts(langs).to_pylist():
        assert f'<td>{row["values"]}</td><td class="n">{row["counts"]:,}</td>' in page


def test_report_names_missing_matplotlib(datasets, tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from etl.cli import main; sys.argv = ['etl', 'report', sys.argv[1], '-o', sys.argv[2]]; main()"
    )
    out = tmp_path / "r.html"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(datasets["seed"]), str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "needs the package matplotlib" in proc.stderr
    assert "pip install 'etl[report]'" in proc.stderr
    assert not out.exists()


def test_report_on_missing_dataset(tmp_path):
    proc = run_etl("report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html"))
    assert proc.returncode == 2 and "no dataset at" in proc.stderr


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs Debian's chromium (apt-get install -y chromium) to render the report",
)
@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path):
    import matplotlib.image as mpimg
    import numpy as np

    measured = tmp_path / "measured.html"
    measured.write_text(report.read_text(encoding="utf-8").replace("</body>", MEASURE, 1))
    shot = tmp_path / "report.png"
    # one browser start does both: print the laid-out DOM, then take the screenshot
    proc = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--window-size=1300,2400",
            "--dump-dom",
            f"--screenshot={shot}",
            measured.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="etl-sizes">([^<]*)</pre>', proc.stdout)
    assert found, proc.stdout[-2000:]
    sizes = [tuple(map(int, s.split("x"))) for s in found.group(1).split()]
    assert len(sizes) >= 7
    assert all(w >= 200 and h >= 80 for w, h in sizes), sizes

    assert shot.is_file(), proc.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1200
    # not blank: the plots' bar colour (#3b6ea5) covers a real area of the page
    bar = np.all(np.abs(pixels - np.array([0x3B, 0x6E, 0xA5]) / 255) < 0.03, axis=-1)
    assert bar.mean() > 0.02, bar.mean()
    rgb = (pixels * 255).astype(np.uint32)
    # many colours: each pixel's as one integer (np.unique of rows, axis=0, sorts 3M rows
    # lexically, seconds of CPU)
    colours = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    assert len(np.unique(colours)) > 50
