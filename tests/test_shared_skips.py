"""A clone without ../shared skips the golden and real-face tests, and the run says so in one closing line
(issue 21 item 10): how many tests skipped for that reason and what the missing data is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(env_extra: dict[str, str]) -> str:
    env = dict(os.environ, **env_extra)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_metrics_psnr_ssim.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_missing_shared_data_is_counted_in_one_closing_line(tmp_path):
    out = _run({"CELEBREF_GOLDEN_DIR": str(tmp_path / "no-golden"), "CELEBREF_MINI_DIR": str(tmp_path / "no-mini")})
    lines = [ln for ln in out.splitlines() if ln.startswith("celebref: ")]
    assert len(lines) == 1, out
    m = re.match(r"celebref: (\d+) test\(s\) skipped because shared test data is missing: (.*)", lines[0])
    assert m, lines[0]
    n_skipped = int(re.search(r"(\d+) skipped", out.splitlines()[-1]).group(1))
    assert int(m.group(1)) == n_skipped > 0  # every skip of this file is a missing-data skip, and all are counted
    assert "golden" in m.group(2) and "celebref-mini" in m.group(2)
