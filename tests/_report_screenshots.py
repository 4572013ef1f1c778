"""Screenshots of the evaluate and curation reports of synthetic runs at several n, for looking at them.

    python tests/_report_screenshots.py --out /tmp/screenshots [--n 2 200] [--work DIR]

Writes ``evaluate_n<N>.png``, ``realworld_n<N>.png`` (a run without ground truth) and ``curation_n<N>.png``
(headless Chromium, 1400 px wide) to ``--out``; the run folders and reports stay under ``--work`` (default: a
temporary folder, printed).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _synthetic_runs import make_build_output, make_eval_run, make_real_world_run  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def screenshot(html: Path, png: Path, height: int = 3000, browser: str | None = None) -> None:
    browser = browser or shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                        f"--window-size=1400,{height}", html.resolve().as_uri()],
                       check=True, capture_output=True, timeout=180)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, nargs="+", default=[2, 200])
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--height", type=int, default=3000)
    args = ap.parse_args()
    from reports.build_report import build_build_report
    from reports.run_report import build_run_report

    work = args.work or Path(tempfile.mkdtemp(prefix="celebref-shots-"))
    args.out.mkdir(parents=True, exist_ok=True)
    for n in args.n:
        ev = make_eval_run(work / f"eval_n{n}", n)
        screenshot(build_run_report(ev), args.out / f"evaluate_n{n}.png", args.height)
        rw = make_real_world_run(work / f"realworld_n{n}", n)
        screenshot(build_run_report(rw), args.out / f"realworld_n{n}.png", args.height)
        bd = make_build_output(work / f"build_n{n}", n)
        screenshot(build_build_report(bd), args.out / f"curation_n{n}.png", args.height)
        print(f"n={n}: {ev / 'report' / 'index.html'}, {bd / 'report' / 'index.html'}")
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
