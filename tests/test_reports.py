"""HTML reports: evaluate-run report and build (curation) report, checked as files and in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from celebref.app.cli import main
from celebref.imageio import write_image

EVIL = "<script>alert(1)</script>"


class _Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a.get("src", ""))
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])


def _face_like(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), (0, 0), 3)
    return cv2.resize(base, (128, 128), interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory) -> Path:
    """A real evaluate run: ground truth, LQ and an external method's results, one with a hostile name."""
    root = tmp_path_factory.mktemp("evalrun")
    names = ["a", "b", f"c{EVIL}", "d"]
    for i, n in enumerate(names):
        gt = _face_like(i)
        write_image(root / "gt" / f"{n}.png", gt)
        lq = cv2.GaussianBlur(gt, (0, 0), 2.0)
        write_image(root / "lq" / f"{n}.png", lq)
        out = _face_like(9) if n == "d" else cv2.addWeighted(gt, 0.7, lq, 0.3, 0)  # 'd' is a bad result
        write_image(root / "ext" / f"{n}.png", out)
    run = root / "run"
    rc = main(["evaluate", "--lq", str(root / "lq"), "--gt", str(root / "gt"), "--methods", f"external:sharp={root / 'ext'}",
               "--metrics", "psnr,ssim", "--device", "cpu", "--out", str(run)])
    assert rc == 0
    return run


def test_run_report_files_numbers_and_escaping(eval_run: Path) -> None:
    assert main(["report", str(eval_run)]) == 0
    index = eval_run / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    p = _Imgs()
    p.feed(html)
    assert p.srcs, "the report shows images"
    for src in p.srcs + p.scripts:
        assert (index.parent / src).is_file(), src
    data = (index.parent / "assets" / "gallery-data.js").read_text(encoding="utf-8")
    gallery = json.loads(data[data.index("=") + 1 : data.rindex(";")])
    for row in gallery["rows"]:
        for c in row["cells"]:
            for k in ("thumb", "detail"):
                if c[k]:
                    assert (index.parent / c[k]).is_file()
    # every number in the summary table equals summary.csv (as formatted)
    summary = pd.read_csv(eval_run / "summary.csv")
    shown = dict(re.findall(r'<tr data-method="([^"]+)">(.*?)</tr>', html, flags=re.S))
    for _, r in summary.iterrows():
        assert f'<span class="mean">{r["mean"]:.4f}</span>' in shown[r["method"]]
        assert f'n=<span class="n">{int(r["n"])}</span>' in shown[r["method"]]
    # the hostile file name is escaped, never live markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert EVIL not in html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_run_report_renders_in_headless_browser(eval_run: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    if not (eval_run / "report" / "index.html").is_file():
        assert main(["report", str(eval_run)]) == 0
    url = (eval_run / "report" / "index.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    shot = tmp_path / "shot.png"
    r = subprocess.run([browser, *flags, "--window-size=1280,1600", f"--screenshot={shot}", url],
                       capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    console = [ln for ln in (r.stderr + dom.stderr).splitlines() if ":CONSOLE" in ln]
    assert console == [], console
    assert 'id="summary-table"' in dom.stdout
    body = dom.stdout[dom.stdout.index('id="gallery-body"'):]
    assert body.count("<tr>") >= 4  # rows drawn by the gallery script
    assert "page 1 of 1 (4 images)" in dom.stdout


@pytest.fixture(scope="module")
def small_build(mini_dir: Path, tmp_path_factory) -> Path:
    """A real build of a tiny crawl: 2 people x 3 photos, one hostile file name, one non-face."""
    root = tmp_path_factory.mktemp("build")
    crawl = root / "crawl"
    for person, ident in (("Person A", "00005"), ("Person B", "00022")):
        for k, src in enumerate(sorted((mini_dir / "hq" / ident).glob("*.png"))[:3]):
            face = cv2.imread(str(src))[:, :, ::-1]
            photo = cv2.copyMakeBorder(face, 96, 96, 96, 96, cv2.BORDER_CONSTANT, value=(120, 110, 100))
            name = f"{EVIL}.png" if (person == "Person A" and k == 0) else f"p{k}.png"
            write_image(crawl / person / name, np.ascontiguousarray(photo))
    write_image(crawl / "Person B" / "noise.png", np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8))
    out = root / "ds"
    assert main(["build", str(crawl), "--out", str(out), "--backend", "dlib", "--min-per-identity", "2"]) == 0
    return out


def test_build_report_files_escaping_and_overrides_template(small_build: Path) -> None:
    assert main(["report", str(small_build)]) == 0
    index = small_build / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    p = _Imgs()
    p.feed(html)
    assert len(p.srcs) >= 7
    for src in p.srcs:
        assert (index.parent / src).is_file(), src
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and EVIL not in html
    meta = json.loads((small_build / "build.json").read_text())
    funnel_cells = re.search(r'<table class="funnel" id="funnel-table">.*?</table>', html, re.S).group(0)
    heads = re.findall(r"<th>([^<]+)</th>", funnel_cells)
    assert heads[:2] == ["raw", "decoded"] and heads[-1] == "final"
    assert [int(v) for v in re.findall(r"<td>(\d+)</td>", funnel_cells)] == [meta["funnel"][h] for h in heads]
    # the overrides template lists every input file and is read back by build --overrides as "no change"
    tmpl = pd.read_csv(index.parent / "overrides_template.csv", keep_default_na=False)
    manifest = pd.read_csv(small_build / "manifest.csv", keep_default_na=False)
    assert set(tmpl["source_path"]) == set(manifest["source_path"])
    assert "noise.png" in "".join(tmpl[tmpl["reason"] == "no_face"]["source_path"])
    from celebref.dataset.overrides import read_overrides

    assert read_overrides(index.parent / "overrides_template.csv") == []
