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


# --- reports that read well at any n (issue 12, items 4, 6 and 7), on synthetic run folders ------------------

from _synthetic_runs import make_build_output, make_eval_run  # noqa: E402


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict:
    """Evaluate reports at n = 2 and n = 30 and curation reports at n = 2 and n = 30 (synthetic numbers)."""
    from reports.build_report import build_build_report
    from reports.run_report import build_run_report

    root = tmp_path_factory.mktemp("synthetic")
    out = {}
    for n in (2, 30):
        out[("evaluate", n)] = build_run_report(make_eval_run(root / f"e{n}", n))
        out[("curation", n)] = build_build_report(make_build_output(root / f"b{n}", n))
    return out


def _section(html: str, sid: str) -> str | None:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S)
    return m.group(1) if m else None


def _figures_have_images(index: Path, html: str) -> None:
    """No caption without its plot: every figure holds an image file that exists."""
    for fig in re.findall(r"<figure[^>]*>(.*?)</figure>", html, re.S):
        src = re.search(r'<img src="([^"]+)"', fig)
        assert src and (index.parent / src.group(1)).is_file(), fig[:200]


def _abbreviations(html: str, sid: str) -> dict[str, str]:
    block = re.search(rf'id="{sid}"[^>]*>(.*?)</dl>', html, re.S).group(1)
    terms = re.findall(r"<dt>(.*?)</dt>", block)
    assert len(terms) == len(set(terms)), terms  # each explained once
    return dict(zip(terms, re.findall(r"<dd>(.*?)</dd>", block, re.S)))


@pytest.mark.parametrize("n", [2, 30])
def test_evaluate_report_labels_ranks_and_infinite_values(synthetic, n) -> None:
    index = synthetic[("evaluate", n)]
    html = index.read_text(encoding="utf-8")
    heads = dict(re.findall(r'<th data-metric="([^"]+)">([^<]+)</th>', html))
    # identity columns name their backend; nothing from dlib is headed like the papers' ArcFace IDS
    assert heads["identity_cos"] == "ID(dlib) ↑" and heads["identity_angle"] == "Deg(dlib) ↓"
    assert heads["lmd"] == "LMD(dlib) ↓" and heads["psnr"] == "PSNR ↑"
    assert "IDS" not in heads.values() and "dlib" in _section(html, "evaluated")
    # best among the restoration methods only; the caption says so
    rows = dict(re.findall(r'<tr data-method="([^"]+)">(.*?)</tr>', html, flags=re.S))
    assert 'class="best"' not in rows["lq"] and 'class="best"' not in rows["bicubic"]
    assert rows["dmdnet"].count('class="best"') + rows["codeformer"].count('class="best"') == len(heads)
    assert "lq, bicubic are reference rows, not ranked" in _section(html, "summary")
    # the untouched image (LQ == GT): a finite mean, the image counted and named, never "inf" as a number
    lq_psnr = re.findall(r"<td[^>]*>(.*?)</td>", rows["lq"], re.S)[1]
    assert re.search(r'<span class="mean">\d+\.\d{4}</span>', lq_psnr) and '<span class="n-inf">1</span>' in lq_psnr
    assert "00000/0" in _section(html, "left-out")
    table = re.search(r'<table id="summary-table">.*?</table>', html, re.S).group(0)
    assert not re.search(r">\s*(inf|nan|-inf)\s*<", table, re.I)
    # settings as small tables, never raw JSON
    evaluated = _section(html, "evaluated")
    assert 'id="profile-table"' in evaluated and 'id="backend-table"' in evaluated and 'id="methods-table"' in evaluated
    assert "{" not in evaluated and "&#34;" not in evaluated
    # every abbreviation used is explained once
    terms = _abbreviations(html, "abbreviations")
    for t in ("PSNR", "SSIM", "ID", "Deg", "LMD", "FID", "LQ", "GT", "(dlib)", "n", "∞"):
        assert t in terms, t
    assert "IDS" not in terms  # not used here
    _figures_have_images(index, html)


def test_evaluate_report_factor_plots_only_with_enough_distinct_values(synthetic) -> None:
    small = synthetic[("evaluate", 2)].read_text(encoding="utf-8")
    assert '<figure class="wide">' not in small
    notes = re.findall(r"<li>(.*?)</li>", re.search(r'id="factor-notes">(.*?)</ul>', small, re.S).group(1))
    assert len(notes) == 4 and all("not plotted" in t and "at least 5" in t for t in notes), notes
    big = synthetic[("evaluate", 30)].read_text(encoding="utf-8")
    captions = re.findall(r'<figure class="wide"><img src="[^"]+" alt="[^"]*"><figcaption>(.*?)</figcaption>', big)
    assert [c.split(":")[0] for c in captions] == ["metrics against blur_sigma", "metrics against noise_sigma",
                                                  "metrics against jpeg_quality"]
    assert all("6 quantile bins" in c for c in captions)
    assert "scale: not plotted: 2 distinct values (4, 8); a trend needs at least 5." in big


def test_curation_report_settings_empty_sections_and_abbreviations(synthetic) -> None:
    small = synthetic[("curation", 2)].read_text(encoding="utf-8")
    for sid in ("collisions", "outliers", "duplicates"):
        assert _section(small, sid) is None, sid  # nothing to show: no section
    assert "dashed line" not in small.lower()  # the distance plot is not there, so neither is its caption
    assert "not plotted: 1 pair distance" in small and "all 2 identities have 1 image" in small
    assert 'id="thresholds-table"' in small and 'id="backend-table"' in small
    meta_block = re.search(r'<dl class="meta">(.*?)</dl>', small, re.S).group(1)
    assert "{" not in meta_block and "&#34;" not in meta_block
    assert "d" in _abbreviations(small, "abbreviations").keys()
    _figures_have_images(synthetic[("curation", 2)], small)
    big = synthetic[("curation", 30)].read_text(encoding="utf-8")
    for sid in ("collisions", "outliers", "duplicates", "plots"):
        assert _section(big, sid) is not None, sid
    assert "dashed line: identity threshold 0.4" in big
    _figures_have_images(synthetic[("curation", 30)], big)


def _tick_label_overlaps(fig) -> list:
    """Pairs of neighbouring x tick labels that overlap (rotated labels: parallel boxes closer than their height)."""
    import math

    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    bad = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        ticks = [t for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
        for a, b in zip(ticks, ticks[1:]):
            rot = math.radians(a.get_rotation())
            if rot == 0:
                if a.get_window_extent(r).x1 > b.get_window_extent(r).x0:
                    bad.append((a.get_text(), b.get_text()))
                continue
            a.set_rotation(0)
            height = a.get_window_extent(r).height  # the label's own height, unrotated
            a.set_rotation(math.degrees(rot))
            dx = abs(ax.transData.transform((b.get_position()[0], 0))[0] - ax.transData.transform((a.get_position()[0], 0))[0])
            if dx * math.sin(rot) < height:
                bad.append((a.get_text(), b.get_text()))
    return bad


def test_plot_tick_labels_never_overlap() -> None:
    from reports import plots

    rng = np.random.default_rng(0)
    x = {m: rng.uniform(0.2, 10.0, 200) for m in ("lq", "dmdnet")}
    panels = {f"M{i}": {m: rng.normal(size=200) for m in x} for i in range(5)}
    fig, kind = plots.factor_figure("blur_sigma", x, panels)
    assert kind == "bins" and _tick_label_overlaps(fig) == []
    assert [t.get_text().split("\n")[0] for t in fig.axes[0].get_xticklabels()][0].startswith("[")  # bins, labelled
    names = ["lq", "bicubic", "external:gfpgan-official-results-v1.4", "codeformer:w=0.7", "dmdnet", "dfdnet", "gfpgan"]
    assert _tick_label_overlaps(plots.distribution_figure({k: rng.normal(size=300) for k in names}, "PSNR")) == []
    # identity cosines packed in 0.9957..0.9973 (the demo's): default ticks overlapped there
    close = {"lq": np.array([0.99575, 0.99672]), "bicubic": np.array([0.99580, 0.99721])}
    assert _tick_label_overlaps(plots.histogram_figure(close, "identity cosine")) == []
    assert _tick_label_overlaps(plots.count_bars_figure({k: 1 for k in range(1, 400, 7)}, "images", "identities")) == []
    import matplotlib.pyplot as plt

    plt.close("all")


def test_synthetic_reports_render_in_headless_browser(synthetic, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    url = synthetic[("evaluate", 30)].resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln] == []
    assert "page 1 of 2 (30 images)" in dom.stdout
    assert re.search(r"bicubic PSNR = \d", dom.stdout)  # the sort key shown by its label


# --- issue 21 items 1 and 6, issue 22 item 9, issue 20 item 7 ------------------------------------------------

from _synthetic_runs import make_real_world_run  # noqa: E402


def _relabel(run: Path, names: dict[str, str]) -> None:
    """Rename methods of a synthetic run folder (per_image and summary)."""
    from celebref.tabular import read_table, write_table

    per = read_table(run / "per_image.parquet")
    per["method"] = per["method"].replace(names)
    write_table(per, run / "per_image")
    s = pd.read_csv(run / "summary.csv")
    s["method"] = s["method"].replace(names)
    s.to_csv(run / "summary.csv", index=False)


def test_method_labels_with_dollars_are_literal_in_plots(tmp_path: Path) -> None:
    """Issue 22.9: ``$_$`` used to kill the report in mathtext, and ``$5 and $6`` was typeset as maths."""
    from matplotlib.cbook import is_math_text

    from reports import plots
    from reports.run_report import build_run_report

    run = make_eval_run(tmp_path, 12)
    _relabel(run, {"codeformer": "x$_$", "dmdnet": "$5 and $6"})
    html = build_run_report(run).read_text(encoding="utf-8")
    assert 'data-method="x$_$"' in html and 'data-method="$5 and $6"' in html
    fig = plots.distribution_figure({"x$_$": np.arange(6.0), "$5 and $6": np.arange(6.0)}, "PSNR $ ↑")
    fig.canvas.draw()  # raised ValueError in mathtext before
    texts = [t.get_text() for t in fig.axes[0].get_xticklabels()] + [fig.axes[0].get_title()]
    assert texts and not any(is_math_text(t) for t in texts), texts
    import matplotlib.pyplot as plt

    plt.close("all")


def test_report_wording_detail_strip_enlarge_and_profile(synthetic) -> None:
    """Issue 21.6: boxes caption, 'not restored' beside 'no value', the profile lists only what was run, the detail
    strip is set apart, and every face links to a full-size copy."""
    index = synthetic[("evaluate", 30)]
    html = index.read_text(encoding="utf-8")
    assert "Boxes (from 5 values)" not in html and "boxes (drawn for methods with at least 5 values)" in html
    heads = re.findall(r"<th>([^<]+)</th>", re.search(r'<table id="summary-table">.*?</thead>', html, re.S).group(0))
    assert heads[-1] == "not restored" and "failures" not in heads
    rows = dict(re.findall(r'<tr data-method="([^"]+)">(.*?)</tr>', html, flags=re.S))
    assert "no value 1" in rows["codeformer"] and rows["codeformer"].rstrip().endswith("<td>1</td>")
    assert ", failed " not in html
    evaluated = _section(html, "evaluated")
    profile = re.search(r"<dt>Metric profile</dt><dd>(.*?)</dd>", evaluated, re.S).group(1).split("<table")[0]
    assert "PSNR" in profile and "FID" in profile  # run here
    for absent in ("LPIPS", "NIQE"):
        assert absent not in profile, absent
    data = (index.parent / "assets" / "gallery-data.js").read_text(encoding="utf-8")
    gallery = json.loads(data[data.index("=") + 1: data.rindex(";")])
    for row in gallery["rows"][:3]:
        for c in row["cells"]:
            if c["thumb"]:
                full = cv2.imread(str(index.parent / c["full"]))
                assert full is not None and full.shape[:2] == (64, 64)  # the image's own size, not the thumbnail's
    page = _section(html, "gallery")
    assert page.count('class="enlarge"') >= 4 and "enlarged (at least its own size) beside the LQ input and the ground truth" in page


def test_detail_crops_are_set_apart() -> None:
    """Eye and mouth crops are separated by a white band (they read as a chopped face when butted together)."""
    import tempfile

    from reports import assets

    img = np.full((512, 512, 3), 60, np.uint8)
    lms = np.array([[150 + 4 * k, 200 + (k % 3)] for k in range(68)], np.float32)
    lms[48:] = [[200 + 3 * k, 380 + (k % 4)] for k in range(20)]
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "f.png"
        write_image(src, img)
        out = cv2.imread(str(Path(d) / assets.detail_crops(src, lms, Path(d))))
    white = np.where((out > 240).all(axis=(1, 2)))[0]
    assert len(white) >= assets.GAP - 2 and 0 < white.min() and white.max() < out.shape[0] - 1


def test_report_flags_means_over_different_image_sets(tmp_path: Path) -> None:
    """Issue 21.1: bicubic scored 11 of 12 images, the others 12: its cell is marked and the caption says why."""
    from reports.run_report import build_run_report

    run = make_eval_run(tmp_path, 12)
    s = pd.read_csv(run / "summary.csv")
    sel = (s["method"] == "bicubic") & (s["metric"] == "ssim")
    s.loc[sel, "n"] -= 1
    s.loc[sel, "n_failed"] += 1
    s.to_csv(run / "summary.csv", index=False)
    html = build_run_report(run).read_text(encoding="utf-8")
    rows = dict(re.findall(r'<tr data-method="([^"]+)">(.*?)</tr>', html, flags=re.S))
    ssim = [c for c in re.findall(r"<td[^>]*>(.*?)</td>", rows["bicubic"], re.S)][2]
    assert '<sup class="odd-n">‡</sup>' in ssim and 'n=<span class="n">11</span>' in ssim
    assert rows["bicubic"].count("odd-n") == 1
    assert rows["codeformer"].count("odd-n") == 6  # its one failure: 11 images in every column, FID included
    assert "odd-n" not in rows["lq"] + rows["dmdnet"]  # lq's PSNR is short only by its ∞ image (marked ∞)
    assert "‡: a mean over another image set than the rest of its column" in _section(html, "summary")


def test_real_world_section(tmp_path: Path) -> None:
    """Issue 20.7: a run without ground truth gets NR metrics, FID against the named statistics, identity to the
    input with the low-identity count, and input/output pairs sorted by that score."""
    from reports.run_report import build_run_report

    run = make_real_world_run(tmp_path, 12)
    html = build_run_report(run).read_text(encoding="utf-8")
    sec = _section(html, "real-world")
    assert sec is not None
    per = pd.read_parquet(run / "per_image.parquet")
    for m in ("codeformer", "gfpgan"):
        v = per[per["method"] == m]["identity_input_cos"]
        row = re.search(rf'<tr data-method="{m}">(.*?)</tr>', sec, re.S).group(1)
        assert f'<td class="low-identity">{int((v < 0.30).sum())} of 12</td>' in row
        niqe = per[per["method"] == m]["niqe"].mean()
        assert f"{niqe:.4f} (n=12)" in row
    assert "FID against ffhq-512 (GFPGAN inception statistics) (70000 images)" in sec
    assert "<td>gfpgan</td><td>60.00</td><td>12</td>" in sec
    scores = [float(x) for x in re.findall(r'<span class="score">([0-9.]+)</span>', sec)]
    assert len(scores) == 24 and scores == sorted(scores)
    assert sec.count('class="pair low"') == int((per["identity_input_cos"] < 0.30).sum())
    assert "default: the lowest NTIRE 2025" in sec
    profile = re.search(r"<dt>Metric profile</dt><dd>(.*?)<table", html, re.S).group(1)
    assert "NIQE" in profile and "identity cosine" not in profile and "PSNR" not in profile  # only what ran
    # no empty GT column in the gallery, no GT in the glossary
    assert "<th>GT</th>" not in html and "<dt>GT</dt>" not in html
    # a threshold recorded in run.json is used and named
    run2 = make_real_world_run(tmp_path / "t", 12, threshold=0.5)
    sec2 = _section(build_run_report(run2).read_text(encoding="utf-8"), "real-world")
    assert "below 0.50 (run.json low_identity_threshold)" in sec2


def test_runs_with_ground_truth_have_no_real_world_section(synthetic) -> None:
    assert _section(synthetic[("evaluate", 2)].read_text(encoding="utf-8"), "real-world") is None


def test_report_command_says_folder_and_reports_verify_output(tmp_path: Path, capsys) -> None:
    """Issue 21.6: the report is a folder (index.html + assets), and a verify output is reportable."""
    ds = make_build_output(tmp_path, 20)
    meta = json.loads((ds / "build.json").read_text())
    (ds / "build.json").unlink()
    verify = {"dataset": meta["crawl"], "backend": meta["backend"], "thresholds": meta["thresholds"],
              "images": meta["inputs"], "accepted": meta["accepted"], "rejected": meta["rejected"],
              "funnel": meta["funnel"], "reasons": meta["reasons"], "reflect_padding": 2,
              "identities": {f"{k:05d}": {} for k in range(meta["n_identities"])}, "collisions": 1}
    (ds / "verify.json").write_text(json.dumps(verify))
    assert main(["report", str(ds)]) == 0
    err = capsys.readouterr().err
    n_assets = sum(1 for p in (ds / "report" / "assets").rglob("*") if p.is_file())
    assert f"report folder written: {ds / 'report'} (open index.html; its {n_assets} files in assets/" in err
    html = (ds / "report" / "index.html").read_text(encoding="utf-8")
    assert "<h1>Dataset audit (celebref verify)</h1>" in html and "reflect-padding artifacts: 2" in html
    assert f"passed {meta['accepted']} + flagged {meta['rejected']}" in html
    assert not (ds / "report" / "overrides_template.csv").exists() and "overrides" not in html
    p = _Imgs()
    p.feed(html)
    assert p.srcs and all((ds / "report" / s).is_file() for s in p.srcs)


def test_click_on_a_face_shows_it_full_size_beside_lq_and_gt(synthetic, tmp_path: Path) -> None:
    """Issue 21.6, in a real browser: a click on a method's face opens LQ | that face | GT at full size."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    index = synthetic[("evaluate", 30)]
    html = index.read_text(encoding="utf-8")
    click = ("<script>var a = document.querySelectorAll('#gallery-body a.enlarge')[2]; a.click();"
             "document.body.setAttribute('data-clicked', a.querySelector('img').alt);</script>")
    probe = index.parent / "click-probe.html"
    probe.write_text(html.replace("</body>", click + "</body>"), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([browser, *flags, "--dump-dom", probe.resolve().as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln] == []
    view = re.search(r'<div id="full-view">(.*?)</div>', dom.stdout, re.S)
    assert view, "no full-size view after the click"
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", view.group(1))
    clicked = re.search(r'data-clicked="([^"]+)"', dom.stdout).group(1)
    assert captions == ["LQ", clicked, "GT"] and clicked not in ("LQ", "GT")
    srcs = re.findall(r'<img src="([^"]+)"', view.group(1))
    assert len(srcs) == 3 and all((index.parent / s).is_file() for s in srcs)


def test_report_of_a_real_verify_output(small_build: Path, tmp_path: Path, capsys) -> None:
    """Issue 21.6: ``celebref report VERIFY_OUT`` on what ``celebref verify`` really writes."""
    audit = tmp_path / "audit"
    assert main(["verify", str(small_build), "--out", str(audit), "--backend", "dlib"]) in (0, 3)
    capsys.readouterr()
    assert main(["report", str(audit)]) == 0
    assert f"report folder written: {audit / 'report'}" in capsys.readouterr().err
    html = (audit / "report" / "index.html").read_text(encoding="utf-8")
    meta = json.loads((audit / "verify.json").read_text(encoding="utf-8"))
    assert "<h1>Dataset audit (celebref verify)</h1>" in html
    assert f"{meta['images']} files: passed {meta['accepted']} + flagged {meta['rejected']}" in html
    p = _Imgs()
    p.feed(html)
    assert len(p.srcs) >= meta["images"] and all((audit / "report" / s).is_file() for s in p.srcs)
