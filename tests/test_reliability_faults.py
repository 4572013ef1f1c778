"""Issue 22 (reliability round 2), crashes and mishandled results, and issue 21 item 8: a weight path that is a FIFO or
a device (22.4), broken plugins (22.8), disk full (22.10), non-finite checkpoints and outputs (22.11), exit codes,
CLI wording and plain-text help (21.8)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from celebref.app.cli import build_parser, main
from celebref.errors import WeightError
from celebref.imageio import write_image

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _celebref(args: list[str], env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "celebref", *args], capture_output=True, text=True, timeout=timeout,
                          env={**ENV, **(env or {})}, cwd=ROOT)


# --- 22.4: a weight path that is not a regular file ---------------------------------------------------------

def test_weights_path_set_refuses_a_fifo_and_a_device(tmp_path, capsys):
    fifo = tmp_path / "gfpgan.pth"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/zero")):
        assert main(["weights", "path", "gfpgan-v1.4", "--set", str(target)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "expected a regular file" in line and str(target) in line
    assert main(["weights", "path", "dmdnet", "--set", str(tmp_path)]) == 2  # a folder for a file entry
    assert "found a folder" in capsys.readouterr().err


def test_a_fifo_or_device_set_by_environment_is_refused_at_use_without_hanging(tmp_path):
    fifo = tmp_path / "codeformer.pth"
    os.mkfifo(fifo)
    faces = tmp_path / "faces"
    write_image(faces / "a.png", np.zeros((512, 512, 3), np.uint8))
    for target in (fifo, "/dev/zero"):
        env = {"CELEBREF_WEIGHT_CODEFORMER": str(target), "CELEBREF_HOME": str(tmp_path / "home")}
        res = _celebref(["restore", "--methods", "codeformer", "--input", str(faces), "--out", str(tmp_path / "o"),
                         "--allow-unverified-weights"], env, timeout=90)  # the old code hung here
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert "expected a regular file" in res.stderr
        res = _celebref(["weights", "list"], env)
        row = next(ln for ln in res.stdout.splitlines() if ln.startswith("codeformer "))
        assert "not a file" in row
        assert ("FIFO" if target == fifo else "character device") in res.stdout
        assert _celebref(["weights", "verify", "codeformer"], env).returncode == 3


# --- 21.8: documented exit codes, CLI wording, plain-text help ----------------------------------------------

def test_weights_commands_use_the_documented_exit_codes(tmp_path, capsys):
    assert main(["weights", "path", "codeformer"]) == 3  # not present: finished, not everything there
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not the published file")
    os.environ["CELEBREF_WEIGHT_GFPGAN_V1_4"] = str(bad)
    try:
        assert main(["weights", "verify", "gfpgan-v1.4"]) == 3
    finally:
        del os.environ["CELEBREF_WEIGHT_GFPGAN_V1_4"]
    assert main(["weights"]) == 2  # no action: usage


def test_cli_messages_name_flags_and_help_is_plain_text(tmp_path, capsys):
    src = tmp_path / "src"
    write_image(src / "a.png", np.full((32, 32, 3), 128, np.uint8))
    out = tmp_path / "T"
    assert main(["degrade", "--preset", "fixed", "--blur", "1", "--input", str(src), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["degrade", "--preset", "fixed", "--blur", "2", "--input", str(src), "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--overwrite" in line and "overwrite=True" not in line and "(API:" not in line
    assert main(["evaluate", "--methods", "gfpgan", "--metrics", "psnr", "--data", str(out), "--out", str(tmp_path / "E")]) == 2
    err = capsys.readouterr().err  # no weights in the test's home: the message says how to skip them
    assert "--skip-unavailable" in err and "skip_unavailable=True" not in err and "(API:" not in err
    markup = re.compile(r"``|:(mod|func|class|meth|data|attr):`|\((?:see )?(celebref|degradations|baselines|evaluation|"
                        r"reports)(\.[a-z_]+)+\)")

    def parsers(p: argparse.ArgumentParser):
        yield p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    yield from parsers(sp)

    texts = {sp.prog: sp.format_help() for sp in parsers(build_parser())}
    assert len(texts) >= 12
    bad = {prog: m.group(0) for prog, text in texts.items() for m in [markup.search(text)] if m}
    assert not bad


# --- 22.8: broken plugins --------------------------------------------------------------------------------

PLUGINS = {
    "bad_aliases_plugin": '''
        class Method:
            """a method whose metadata has the wrong type"""
            aliases = 5
    ''',
    "argparse_plugin": '''
        import argparse
        argparse.ArgumentParser(prog="someplugin").parse_args(["--not-an-option"])
    ''',
    "exit0_plugin": '''
        raise SystemExit(0)
    ''',
}


@pytest.fixture
def broken_plugins(tmp_path, monkeypatch):
    """Three broken entry points in ``celebref.methods`` (real modules on sys.path, found through a patched
    ``entry_points`` so that no distribution has to be installed); the method registry reads plugins afresh."""
    from baselines.registry import METHODS

    for name, code in PLUGINS.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [importlib_metadata.EntryPoint(name=n.replace("_plugin", "").replace("_", "-"), value=f"{n}:Method",
                                         group="celebref.methods") for n in PLUGINS]
    real = importlib_metadata.entry_points

    def entry_points(**kw):
        return eps if kw.get("group") == "celebref.methods" else real(**kw)

    monkeypatch.setattr("celebref.registry.importlib_metadata.entry_points", entry_points)
    monkeypatch.setattr(METHODS, "_plugins_loaded", False)
    monkeypatch.setattr(METHODS, "_plugin_errors", {})
    for n in PLUGINS:
        sys.modules.pop(n, None)
    return METHODS


def test_broken_plugins_are_named_and_skipped(broken_plugins, tmp_path, capsys, caplog):
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr()
    assert "dmdnet" in out.out and "gfpgan" in out.out
    assert not [ln for ln in (out.out + out.err).splitlines() if ln.lstrip().startswith(("usage:", "someplugin:"))]
    errors = broken_plugins.plugin_errors
    assert set(errors) == {"bad-aliases", "argparse", "exit0"}
    assert "'aliases' must be a string or a list of strings, got 5" in errors["bad-aliases"]
    assert "SystemExit(2)" in errors["argparse"] and "usage: someplugin" in errors["argparse"]
    assert "SystemExit(0)" in errors["exit0"]
    assert main(["weights", "list"]) == 0
    write_image(tmp_path / "in" / "a.png", np.zeros((8, 8, 3), np.uint8))
    capsys.readouterr()
    assert main(["restore", "--methods", "gfpgn", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o")]) == 2
    assert "did you mean 'gfpgan'" in _one_error_line(capsys.readouterr().err)
    assert main(["restore", "--methods", "exit0", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o")]) == 2
    assert "failed to load" in _one_error_line(capsys.readouterr().err)


# --- 22.11: non-finite checkpoints and outputs ------------------------------------------------------------

def test_a_checkpoint_with_non_finite_tensors_is_refused_at_load(tmp_path, capsys):
    from celebref.weights import load_torch_checkpoint

    good = {"params_ema": {"conv.weight": torch.ones(2, 2), "conv.bias": torch.zeros(2), "step": torch.tensor(3)}}
    torch.save(good, tmp_path / "good.pth")
    assert load_torch_checkpoint(tmp_path / "good.pth")["params_ema"]["conv.weight"].sum() == 4
    for value in (float("nan"), float("inf")):
        bad = {"params_ema": {"conv.weight": torch.ones(2, 2), "conv.bias": torch.tensor([0.0, value])}}
        torch.save(bad, tmp_path / "bad.pth")
        with pytest.raises(WeightError, match=r"non-finite values .* 'params_ema.conv.bias' \(1 of 2\)"):
            load_torch_checkpoint(tmp_path / "bad.pth")
    nan = {"params_ema": {"conv.weight": torch.full((2, 2), float("nan"))}}
    torch.save(nan, tmp_path / "nan.pth")
    write_image(tmp_path / "in" / "a.png", np.zeros((512, 512, 3), np.uint8))
    os.environ["CELEBREF_WEIGHT_GFPGAN_V1_4"] = str(tmp_path / "nan.pth")
    try:
        assert main(["restore", "--methods", "gfpgan", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                     "--allow-unverified-weights"]) == 2
    finally:
        del os.environ["CELEBREF_WEIGHT_GFPGAN_V1_4"]
    assert "non-finite values" in capsys.readouterr().err


def test_non_finite_network_output_is_a_per_image_error(golden_dir, synth_weights):
    """GFPGAN built from the golden's synthetic weights with one output-layer bias set to NaN: the image gets
    ``error`` with the reason, never a black "ok" image; a batch where only one image is non-finite fails only it."""
    import json

    from _restoration_golden import golden_weights

    from baselines.base import STATUS_ERROR, STATUS_OK, RestoreItem
    from baselines.gfpgan.faces import restore_faces, tensor_to_faces
    from baselines.gfpgan.method import GFPGANMethod

    root = golden_dir / "gfpgan"
    report = json.loads(sorted(root.glob("case_*.report.json"))[0].read_text())
    sd = golden_weights(synth_weights, root, report)
    last_rgb = sorted((k for k in sd if re.search(r"to_rgbs?\.\d+\.bias$|final.*bias$", k)),
                      key=lambda k: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", k)])[-1]
    sd[last_rgb] = torch.full_like(sd[last_rgb], float("nan"))
    method = GFPGANMethod.from_state_dict(sd)
    face = np.full((512, 512, 3), 127, np.uint8)
    [res] = method.restore([RestoreItem("a", face)])
    assert res.status == STATUS_ERROR and res.image is None and "non-finite" in res.reason

    def run(items):  # the second image's network output is NaN
        t = torch.zeros(len(items), 3, 512, 512)
        for i, it in enumerate(items):
            if it.id == "nan":
                t[i] = float("nan")
        return tensor_to_faces(t)

    results = restore_faces([RestoreItem("ok", face), RestoreItem("nan", face)], run)
    assert [r.status for r in results] == [STATUS_OK, STATUS_ERROR] and "NaN" in results[1].reason


# --- 22.10: disk full --------------------------------------------------------------------------------------

def _namespace_prefix() -> list[str] | None:
    """How to mount a small tmpfs in a private mount namespace: as root directly (``unshare -m``), else in a user
    namespace (``unshare -rm``); ``None`` when neither works here."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        probe = subprocess.run([*prefix, "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d"],
                               capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


def _on_small_disk(tmp_path: Path, first: list[str], kib: int, then: list[str] | None = None) -> list[tuple[int, str]]:
    """Run ``celebref first`` with ``MNT`` (in arguments) a fresh tmpfs of ``kib`` KiB, then (same mount) grow it
    to 256 MiB and run ``celebref then``; returns ``[(exit status, stderr), ...]``. A real ENOSPC, not a mock."""
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("cannot mount a small tmpfs here (needs root or unprivileged user namespaces with unshare)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    py = f"{sys.executable} -m celebref"

    def q(args):
        return " ".join("'" + a.replace("MNT", str(mnt)).replace("'", "'\\''") + "'" for a in args)

    script = f"mount -t tmpfs -o size={kib}k tmpfs '{mnt}' || exit 99\n"
    script += f"{py} {q(first)} 2>'{logs}/1.err'; echo $? > '{logs}/1.rc'\n"
    if then is not None:
        script += f"mount -o remount,size=256m '{mnt}' || exit 98\n"
        script += f"{py} {q(then)} 2>'{logs}/2.err'; echo $? > '{logs}/2.rc'\n"
        script += f"cp -r '{mnt}' '{tmp_path}/kept'\n"
    res = subprocess.run([*prefix, "sh", "-c", script], capture_output=True, text=True, env=ENV, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    runs = []
    for k in ("1", "2") if then is not None else ("1",):
        runs.append((int((logs / f"{k}.rc").read_text()), (logs / f"{k}.err").read_text()))
    return runs


def test_disk_full_in_degrade_is_recorded_per_image_and_redone_by_a_rerun(tmp_path):
    src = tmp_path / "src"
    rng = np.random.default_rng(0)
    for j in range(10):
        write_image(src / f"{j}.png", rng.integers(0, 256, (192, 192, 3), dtype=np.uint8))
    argv = ["degrade", "--preset", "fixed", "--noise", "20", "--input", str(src), "--out", "MNT/T"]
    (rc1, err1), (rc2, err2) = _on_small_disk(tmp_path, argv, 400, argv)
    assert rc1 in (2, 3) and "Traceback" not in err1 and "No space left on device" in err1, err1
    assert rc2 == 0 and "Traceback" not in err2, err2
    df = pd.read_csv(tmp_path / "kept" / "T" / "manifest.csv")
    assert len(df) == 10 and (df["status"] == "ok").all()
    assert len(list((tmp_path / "kept" / "T" / "lq").glob("*.png"))) == 10


MINI = Path(os.environ.get("CELEBREF_MINI_DIR", ROOT.parent / "shared" / "fixtures" / "celebref-mini"))


def test_disk_full_in_build_and_whole_photo_restore_is_one_line(tmp_path):
    if not (MINI / "hq").is_dir():
        pytest.skip(f"celebref-mini fixture not found at {MINI}")
    from celebref.dataset.synthetic import make_crawl

    crawl = tmp_path / "crawl"
    make_crawl(MINI / "hq", crawl, per_identity=3)
    photos = tmp_path / "photos"
    faces = sorted((MINI / "hq").rglob("*.png"))[:3]
    for j, f in enumerate(faces):  # a face on a larger canvas: one whole photo each
        from celebref.imageio import read_image

        canvas = np.full((900, 900, 3), 90, np.uint8)
        canvas[200:712, 200:712] = read_image(f)
        write_image(photos / f"p{j}.png", canvas)
    [(rc, err)] = _on_small_disk(tmp_path, ["build", str(crawl), "--out", "MNT/DS", "--backend", "dlib", "--workers", "1"], 64)
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert rc == 2 and "Traceback" not in err and last.startswith("celebref build: error: No space left on device"), err
    shutil.rmtree(tmp_path / "logs")
    shutil.rmtree(tmp_path / "mnt")
    [(rc, err)] = _on_small_disk(tmp_path, ["restore", "--whole-photo", "--methods", "lq", "--input", str(photos),
                                            "--out", "MNT/R", "--device", "cpu"], 256)
    assert rc in (2, 3) and "Traceback" not in err and "No space left on device" in err, err
