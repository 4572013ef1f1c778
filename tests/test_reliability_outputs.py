"""Issue 22 (reliability round 2), data-loss items, and issue 21 items 2 and 3: no command writes into a folder another
command made or into its own inputs (22.1, 22.2), ``--overwrite`` leaves nothing stale (22.12), ``--out`` a file or a
lock that is a folder is one line (22.5), nested output folders lock each other out (22.13), one folder rule for
every test-set reader (21.2), a list none of whose lines resolve is a usage error (21.3), redraws are bounded and
refused for a preset that never draws (22.7)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celebref.app.cli import main
from celebref.errors import ConfigError
from celebref.imageio import write_image
from celebref.lock import LOCK_NAME, lock_folder

ROOT = Path(__file__).resolve().parents[1]


def _face(seed: int, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def _grouped(root: Path, identities: dict[str, int]) -> Path:
    """A celebref-mini-like folder ``root/hq/<identity>/<n>.png`` (identity-grouped input)."""
    for k, (ident, n) in enumerate(sorted(identities.items())):
        for j in range(n):
            write_image(root / "hq" / ident / f"{j}.png", _face(100 * k + j))
            lm = root / "landmarks" / ident / f"{j}.png.txt"
            lm.parent.mkdir(parents=True, exist_ok=True)
            lm.write_text("".join(f"{10 + i % 20} {12 + i // 4}\n" for i in range(68)))
    return root


def _snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (the lock file aside)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != LOCK_NAME:
            out[p.relative_to(folder).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


DEGRADE = ["degrade", "--preset", "fixed", "--blur", "1", "--seed", "0"]


@pytest.fixture
def test_set(tmp_path: Path) -> Path:
    src = _grouped(tmp_path / "src", {"anna": 3, "ben": 3})
    out = tmp_path / "T"
    assert main([*DEGRADE, "--input", str(src), "--out", str(out)]) == 0
    assert len(list((out / "lq").rglob("*.png"))) == 6 and (out / "refs").is_dir()
    return out


# --- 22.1 / 22.2: outputs never mix with inputs, and never go into another command's folder -----------------

def test_degrade_from_a_test_sets_lq_folder_into_the_test_set_is_refused_and_touches_nothing(test_set, capsys):
    before = _snapshot(test_set)
    capsys.readouterr()
    assert main([*DEGRADE, "--input", str(test_set / "lq"), "--out", str(test_set)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "input folder" in line and "choose" in line
    assert _snapshot(test_set) == before


def _fake_build(ds: Path) -> Path:
    """A folder in a build output's layout with its run file (build.json), manifest and lists."""
    for ident in ("anna", "ben"):
        for j in range(2):
            write_image(ds / "images" / ident / f"{j}.png", _face(7 + j + (ident == "ben") * 10))
            (ds / "landmarks" / ident).mkdir(parents=True, exist_ok=True)
    (ds / "build.json").write_text('{"command": "celebref build"}\n')
    (ds / "manifest.csv").write_text("source_path,decision,output_path\na.png,accepted,images/anna/0.png\n")
    (ds / "SpecificLists.txt").write_text("images/anna/0.png\timages/anna\tlandmarks/anna\n")
    return ds


def test_degrade_into_a_build_output_is_refused_and_keeps_its_manifest(tmp_path, capsys):
    ds = _fake_build(tmp_path / "DS")
    before = _snapshot(ds)
    for out in (ds, ds / "lq"):
        assert main([*DEGRADE, "--input", str(ds), "--out", str(out)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "celebref build" in line or "input folder" in line
    assert _snapshot(ds) == before and not (ds / "lq").exists()


def test_restore_evaluate_and_build_refuse_another_commands_folder_and_their_inputs(test_set, tmp_path, capsys):
    ds = _fake_build(tmp_path / "DS")
    run = tmp_path / "R"
    assert main(["restore", "--methods", "lq", "--input", str(test_set), "--out", str(run)]) == 0
    before = {p: _snapshot(p) for p in (ds, test_set, run)}
    capsys.readouterr()
    cases = [
        ["restore", "--methods", "lq", "--input", str(test_set), "--out", str(ds)],  # a build output
        ["restore", "--methods", "lq", "--input", str(test_set), "--out", str(test_set / "restored")],  # inside the input
        ["evaluate", "--methods", "lq", "--metrics", "psnr", "--data", str(test_set), "--out", str(run)],  # a restore run
        ["evaluate", "--methods", "lq", "--metrics", "psnr", "--data", str(test_set), "--out", str(test_set)],
        ["build", str(tmp_path / "src"), "--out", str(test_set)],  # a test set
        ["build", str(tmp_path / "src"), "--out", str(tmp_path / "src" / "ds")],  # inside the crawl
        [*DEGRADE, "--input", str(run / "lq"), "--out", str(run / "again")],  # inside a restore run
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        _one_error_line(capsys.readouterr().err)
    assert {p: _snapshot(p) for p in (ds, test_set, run)} == before
    assert not (tmp_path / "src" / "ds").exists() and not (test_set / "restored").exists()
    # the same command resumes its own folder
    assert main(["restore", "--methods", "lq", "--input", str(test_set), "--out", str(run)]) == 0


# --- 22.12: --overwrite with fewer inputs ------------------------------------------------------------------

def test_overwrite_with_fewer_inputs_removes_only_what_degrade_made_and_leaves_nothing_stale(tmp_path):
    src = _grouped(tmp_path / "src", {"anna": 3, "ben": 3, "cara": 3})
    out = tmp_path / "T"
    assert main([*DEGRADE, "--input", str(src), "--out", str(out)]) == 0
    assert len(list((out / "lq").rglob("*.png"))) == 9
    (out / "notes.txt").write_text("mine\n")
    (out / "lq" / "mine.txt").write_text("mine too\n")
    for p in (src / "hq" / "cara").iterdir():
        p.unlink()
    (src / "hq" / "cara").rmdir()
    (src / "hq" / "ben" / "2.png").unlink()
    assert main(["degrade", "--preset", "fixed", "--blur", "2", "--seed", "0", "--input", str(src), "--out", str(out),
                 "--overwrite"]) == 0
    df = pd.read_csv(out / "manifest.csv")
    ids = sorted(df["id"])
    assert ids == ["anna/0", "anna/1", "anna/2", "ben/0", "ben/1"]
    lq = sorted(p.relative_to(out / "lq").with_suffix("").as_posix() for p in (out / "lq").rglob("*.png"))
    assert lq == ids
    refs = sorted(p.relative_to(out / "refs").as_posix() for p in (out / "refs").glob("*/*") if p.is_dir())
    assert refs == ["anna/0", "anna/1", "anna/2"]  # ben's images have 1 reference each now: DMDNet needs 2
    assert sorted(df.loc[df["ref_dir"].notna(), "id"]) == refs
    assert (out / "SpecificLists.txt").read_text().count("\n") == 3
    assert not (out / "lq" / "cara").exists() and not (out / "refs" / "cara").exists()
    assert (out / "notes.txt").read_text() == "mine\n" and (out / "lq" / "mine.txt").is_file()
    # resuming with --refs none keeps every LQ file and removes the reference folders degrade made
    assert main(["degrade", "--preset", "fixed", "--blur", "2", "--seed", "0", "--input", str(src), "--out", str(out),
                 "--refs", "none"]) == 0
    assert not any((out / "refs").iterdir()) and not (out / "SpecificLists.txt").exists()
    assert len(list((out / "lq").rglob("*.png"))) == 5


# --- 22.5: --out a file; a lock that is a folder ----------------------------------------------------------

def test_out_an_existing_file_or_a_lock_folder_is_one_line_exit_2(test_set, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x\n")
    blocked = tmp_path / "blocked"
    (blocked / LOCK_NAME).mkdir(parents=True)
    for out in (f, blocked):
        for argv in ([*DEGRADE, "--input", str(tmp_path / "src"), "--out", str(out)],
                     ["restore", "--methods", "lq", "--input", str(test_set), "--out", str(out)],
                     ["evaluate", "--methods", "lq", "--metrics", "psnr", "--data", str(test_set), "--out", str(out)]):
            assert main(argv) == 2, argv
            line = _one_error_line(capsys.readouterr().err)
            assert str(out) in line
    assert f.read_text() == "x\n" and (blocked / LOCK_NAME).is_dir()


# --- 22.13: nested output folders -------------------------------------------------------------------------

def _holder(folder: Path) -> subprocess.Popen:
    script = textwrap.dedent(f"""
        import sys
        from celebref.lock import lock_folder
        with lock_folder({str(folder)!r}, command="celebref evaluate --out x"):
            print("locked", flush=True)
            sys.stdin.read()
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "locked"
    return p


@pytest.mark.parametrize("held, wanted", [("E", "E/restored"), ("E/restored", "E"), ("E/restored/lq", "E")])
def test_nested_output_folders_lock_each_other_out(tmp_path, held, wanted):
    p = _holder(tmp_path / held)
    try:
        with pytest.raises(ConfigError, match="another celebref run uses"):
            with lock_folder(tmp_path / wanted):
                pass
        with lock_folder(tmp_path / "elsewhere"):  # unrelated folders are not affected
            pass
    finally:
        p.stdin.close()
        p.wait(timeout=30)
    with lock_folder(tmp_path / wanted):  # free once the other run ended
        with lock_folder(tmp_path / held):  # and this process's own locks nest
            pass


def test_restore_into_the_restored_folder_of_a_running_evaluate_is_refused(test_set, tmp_path, capsys):
    e = tmp_path / "E"
    p = _holder(e)
    try:
        assert main(["restore", "--methods", "lq", "--input", str(test_set), "--out", str(e / "restored")]) == 2
        assert "another celebref run uses" in _one_error_line(capsys.readouterr().err)
    finally:
        p.stdin.close()
        p.wait(timeout=30)
    assert not (e / "restored" / "lq").exists()


# --- 21.2 / 21.3: one folder rule; a list that resolves nothing -------------------------------------------

def test_a_folder_with_a_foreign_manifest_is_read_alike_by_degrade_and_restore(tmp_path):
    f = tmp_path / "faces"
    for j in range(3):
        write_image(f / "lq" / f"{j}.png", _face(j))
    (f / "manifest.csv").write_text("path,identity\nlq/0.png,anna\n")  # not a degrade manifest (no id, lq_path)
    assert main(["restore", "--methods", "lq", "--input", str(f), "--out", str(tmp_path / "r")]) == 0
    assert sorted(p.name for p in (tmp_path / "r" / "lq" / "lq").glob("*.png")) == ["0.png", "1.png", "2.png"]
    assert main([*DEGRADE, "--input", str(f), "--out", str(tmp_path / "t")]) == 0
    broken = tmp_path / "broken"  # a degrade output (degrade.json) whose manifest lacks the columns stays an error
    write_image(broken / "lq" / "0.png", _face(0))
    (broken / "manifest.csv").write_text("path\nlq/0.png\n")
    (broken / "degrade.json").write_text("{}\n")
    assert main(["restore", "--methods", "lq", "--input", str(broken), "--out", str(tmp_path / "r2")]) == 2


def test_a_list_none_of_whose_lines_resolve_is_a_usage_error_naming_both_paths(tmp_path, monkeypatch, capsys):
    d = tmp_path / "data"
    for j in range(7):
        write_image(d / "TestExamples" / f"{j}.png", _face(j))
    (d / "lists").mkdir()
    (d / "lists" / "GenericLists.txt").write_text("".join(f"./TestExamples/{j}.png\n" for j in range(7)))
    monkeypatch.chdir(tmp_path)  # the wrong folder: neither the cwd nor the list's folder resolves the paths
    assert main(["restore", "--methods", "lq", "--input", str(d / "lists" / "GenericLists.txt"), "--out", "r"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "0 of 7 inputs found" in line
    assert str(tmp_path / "TestExamples" / "0.png") in line and str(d / "lists" / "TestExamples" / "0.png") in line
    monkeypatch.chdir(d)  # the right folder
    assert main(["restore", "--methods", "lq", "--input", str(d / "lists" / "GenericLists.txt"), "--out",
                 str(tmp_path / "r")]) == 0


# --- 22.7: redraws --------------------------------------------------------------------------------------

def test_redraws_are_bounded_and_refused_for_a_preset_that_never_draws(tmp_path, capsys):
    src = tmp_path / "src"
    write_image(src / "a.png", _face(1))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "celebref", "degrade", "--preset", "fixed", "--redraw-untouched",
                          "100000000", "--input", str(src), "--out", str(tmp_path / "o1")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 2 and "0..1000" in res.stderr and "Traceback" not in res.stderr
    assert main(["degrade", "--preset", "fixed", "--redraw-untouched", "5", "--input", str(src), "--out",
                 str(tmp_path / "o2")]) == 2
    assert "none of its steps is applied at random" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o2" / "lq").exists()
    # a recipe with random steps still redraws
    assert main(["degrade", "--preset", "dfdnet", "--redraw-untouched", "3", "--input", str(src), "--out",
                 str(tmp_path / "o3")]) == 0
