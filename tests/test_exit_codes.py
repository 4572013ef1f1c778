"""Exit status tells the truth (issue 12 item 2), flags are named like the API parameters with the old names kept
as deprecated aliases (issue 11 item 6), and evaluate refuses what is not a test set (issue 12 item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celebref.app.cli import build_parser, main
from celebref.app.outcome import Outcome
from celebref.app.restore import RestoreRunner
from celebref.errors import ConfigError
from celebref.imageio import read_image, write_image


def _img(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture()
def pairs(tmp_path: Path) -> Path:
    for i in range(2):
        write_image(tmp_path / "gt" / f"{i}.png", _img(i))
        write_image(tmp_path / "lq" / f"{i}.png", (_img(i) // 2).astype(np.uint8))
    (tmp_path / "GenericLists.txt").write_text("lq/0.png\nlq/1.png\n")
    return tmp_path


def test_outcome_codes_by_fail_on() -> None:
    done, some, none_done = Outcome(items=4), Outcome(items=4, failed=1), Outcome(items=4, failed=4)
    skipped_all = Outcome(items=2, skipped=["method gfpgan"], all_skipped=True)
    assert [o.exit_code("any") for o in (done, some, none_done, skipped_all)] == [0, 3, 3, 3]
    assert [o.exit_code("all") for o in (done, some, none_done, skipped_all)] == [0, 0, 3, 3]
    assert [o.exit_code("none") for o in (done, some, none_done, skipped_all)] == [0, 0, 0, 0]


def test_restore_where_every_image_fails_exits_3(pairs: Path, capsys) -> None:
    (pairs / "empty").mkdir()  # results of another method that produced nothing: every image is missing
    argv = ["restore", "--methods", f"external:theirs={pairs / 'empty'}", "--input", str(pairs / "GenericLists.txt"),
            "--out", str(pairs / "o")]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "2 of 2 item(s) failed" in err and "theirs: 2 of 2 image(s) not restored" in err
    assert main(argv + ["--fail-on", "all"]) == 3
    assert main(argv + ["--fail-on", "none"]) == 0


def test_restore_with_some_failures_and_fail_on_all(pairs: Path) -> None:
    (pairs / "GenericLists.txt").write_text("lq/0.png\nlq/missing.png\n")
    argv = ["restore", "--methods", "lq", "--input", str(pairs / "GenericLists.txt"), "--out", str(pairs / "o")]
    assert main(argv) == 3
    assert main(argv + ["--fail-on", "all"]) == 0  # something was done


def test_a_text_file_is_a_usage_error(pairs: Path, capsys) -> None:
    (pairs / "notes.txt").write_text("run dmdnet on the new crawl\ncompare with gfpgan\n")
    assert main(["restore", "--methods", "lq", "--input", str(pairs / "notes.txt"), "--out", str(pairs / "o")]) == 2
    assert main(["evaluate", "--data", str(pairs / "notes.txt"), "--metrics", "psnr", "--out", str(pairs / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("not a test set: expected a manifest, a list file or a folder of images") == 2


def test_external_folder_with_the_wrong_layout_exits_3_and_says_why(pairs: Path) -> None:
    for i in range(2):  # results one folder too deep
        write_image(pairs / "ext" / "results" / f"{i}.png", _img(i))
    run = pairs / "run"
    argv = ["evaluate", "--lq", str(pairs / "lq"), "--gt", str(pairs / "gt"), "--methods", f"external:theirs={pairs / 'ext'}",
            "--metrics", "psnr", "--device", "cpu", "--out", str(run)]
    assert main(argv) == 3
    per = pd.read_parquet(run / "per_image.parquet")
    theirs = per[per["method"] == "theirs"]
    assert (theirs["status"] == "missing").all()
    assert all(str(pairs / "ext" / f"{i}.png") in r and "'results/0'" in r for i, r in zip(theirs["id"], theirs["reason"]))


def test_evaluate_when_every_requested_method_was_skipped(pairs: Path, capsys) -> None:
    run = pairs / "run"
    argv = ["evaluate", "--lq", str(pairs / "lq"), "--gt", str(pairs / "gt"), "--methods", "gfpgan", "--metrics", "psnr",
            "--skip-unavailable", "--device", "cpu", "--out", str(run)]
    assert main(argv) == 3  # no weights in the test's isolated home
    assert "skipped (method gfpgan)" in capsys.readouterr().err
    assert main(argv + ["--fail-on", "all"]) == 3  # the only requested method was skipped: nothing requested was done
    assert main(argv + ["--fail-on", "none"]) == 0
    assert [s["name"] for s in json.loads((run / "run.json").read_text())["skipped"]] == ["gfpgan"]


def test_per_image_lq_paths_are_absolute_like_gt_paths(pairs: Path, monkeypatch) -> None:
    monkeypatch.chdir(pairs)
    assert main(["evaluate", "--lq", "lq", "--gt", "gt", "--metrics", "psnr", "--device", "cpu", "--out", "run"]) == 0
    per = pd.read_csv(pairs / "run" / "per_image.csv", dtype=str, keep_default_na=False)
    assert list(per["lq_path"]) == [str(pairs / "lq" / f"{i}.png") for i in range(2)]
    assert list(per["gt_path"]) == [str(pairs / "gt" / f"{i}.png") for i in range(2)]


def test_flags_match_api_names_and_old_flags_are_hidden_deprecated_aliases(pairs: Path, capsys) -> None:
    out = pairs / "o"
    assert main(["restore", "--methods", "lq", "--input", str(pairs / "lq"), "--out", str(out),
                 "--on-landmark-failure", "input", "--landmarks", "gt"]) == 0
    err = capsys.readouterr().err
    assert "--on-landmark-failure is deprecated; use --landmark-policy" in err
    assert "--landmarks is deprecated; use --landmark-source" in err
    meta = json.loads((out / "restore.json").read_text())
    assert (meta["landmark_policy"], meta["landmark_source"]) == ("input", "gt")
    sub = build_parser()._subparsers._group_actions[0].choices
    for name in ("restore", "evaluate"):
        text = sub[name].format_help()
        assert "--landmark-policy" in text and "--landmark-source" in text and "--list-format" in text
        assert "--on-landmark-failure" not in text and "--landmarks " not in text
        assert "exit status" in text and "--fail-on" in text
    np.testing.assert_array_equal(read_image(out / "lq" / "0.png"), read_image(pairs / "lq" / "0.png"))


def test_library_errors_name_parameters_not_flags(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="landmark_source must be one of detect, gt") as e:
        RestoreRunner(tmp_path, landmark_source="oracle")
    assert "--" not in str(e.value)
    from baselines.registry import create_method

    with pytest.raises(ConfigError, match="landmark_policy must be one of") as e:
        create_method("lq", landmark_policy="ignore")
    assert "--" not in str(e.value)


def test_restore_and_evaluate_refuse_a_folder_another_run_holds(pairs: Path, capsys) -> None:
    import subprocess
    import sys

    out = pairs / "busy"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom celebref.lock import lock_folder\n"
        f"with lock_folder({str(out)!r}, command='another run'):\n    print('locked', flush=True)\n    time.sleep(120)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["restore", "--methods", "lq", "--input", str(pairs / "lq"), "--out", str(out)]) == 2
        assert main(["evaluate", "--lq", str(pairs / "lq"), "--gt", str(pairs / "gt"), "--metrics", "psnr",
                     "--device", "cpu", "--out", str(out)]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert err.count("is in use by another celebref run") == 2 and not (out / "lq").exists()
    # the holder was killed: its lock is stale and taken over with a message
    assert main(["restore", "--methods", "lq", "--input", str(pairs / "lq"), "--out", str(out)]) == 0
    assert "taking over the stale lock" in capsys.readouterr().err
