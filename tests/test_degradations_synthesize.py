"""The test-set writer and ``celebref degrade``: determinism across workers, independence between
images, resume, bad inputs, DMDNet lists, grids. Synthetic images (small) so this runs anywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from celebref.app.cli import main as cli_main
from celebref.errors import ConfigError
from celebref.imageio import read_image, write_image
from celebref.testset import read_hq_set
from degradations.presets import get_preset
from degradations.synthesize import JOURNAL, Job, parse_grid, synthesize, synthesize_grid

sys.path.insert(0, str(Path(__file__).parent))
import _engine_probe as probe  # noqa: E402

SIZE = 96
ROOT = Path(__file__).resolve().parents[1]


def _face_like(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (SIZE // 8, SIZE // 8, 3), dtype=np.uint8)
    return cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)


def _landmarks(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pts = np.stack([np.linspace(10, 80, 68), np.linspace(20, 70, 68)], 1)
    path.write_text("".join(f"{x:.3f} {y:.3f}\n" for x, y in pts))


def make_dataset(root: Path, counts: dict[str, int], bad: dict[str, bytes] | None = None) -> Path:
    """A celebref-build-like layout: images/<identity>/<n>.png + landmarks/<identity>/<n>.png.txt."""
    k = 0
    for ident, n in counts.items():
        for i in range(n):
            write_image(root / "images" / ident / f"{i}.png", _face_like(k))
            _landmarks(root / "landmarks" / ident / f"{i}.png.txt")
            k += 1
    for rel, data in (bad or {}).items():
        p = root / "images" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        _landmarks(root / "landmarks" / f"{rel}.txt")
    return root


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != "degrade.json"}


def job(preset: str = "dfdnet", seed: int = 0, **opts) -> Job:
    pipe, overrides = get_preset(preset, **opts)
    return Job(pipe, preset, seed, overrides)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    good = cv2.imencode(".png", _face_like(99))[1].tobytes()
    return make_dataset(tmp_path_factory.mktemp("ds"), {"00000": 5, "00001": 4, "00002": 2},
                        bad={"00001/truncated.png": good[: len(good) // 2], "00001/text.png": b"<html>not an image</html>", "00002/empty.png": b""})


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name, workers in (("w1", 1), ("w2", 2)):
        synthesize(dataset, base / name, job("dfdnet"), workers=workers)
        out[name] = base / name
    return out


def test_one_and_n_workers_give_byte_identical_outputs(runs):
    a, b = files(runs["w1"]), files(runs["w2"])
    assert a.keys() == b.keys()
    assert any(k.startswith("lq/") for k in a) and "manifest.parquet" in a and "manifest.csv" in a
    for k in a:
        assert a[k] == b[k], f"{k} differs between 1 and 2 workers"


def test_manifest_rows_names_and_bad_files(runs, dataset):
    df = pd.read_parquet(runs["w1"] / "manifest.parquet")
    assert list(df["id"]) == sorted(df["id"])
    assert len(df) == 5 + 4 + 2 + 3
    bad = df[df["status"] == "rejected"].set_index("id")
    assert set(bad.index) == {"00001/truncated", "00001/text", "00002/empty"}
    assert all(r.startswith("unreadable") for r in bad["reason"])
    assert "empty" in bad.loc["00002/empty", "reason"] and "HTML" in bad.loc["00001/text", "reason"]
    ok = df[df["status"] == "ok"]
    for col in ("blur_kernel", "blur_sigma", "blur_sigma_x", "blur_sigma_y", "blur_angle", "blur_ksize", "scale", "noise_sigma", "jpeg_quality",
                "blur_applied", "scale_applied", "noise_applied", "jpeg_applied", "gt_sha256", "lq_sha256", "gt_path_abs", "lq_size", "seed", "preset"):
        assert col in df.columns
    csv = pd.read_csv(runs["w1"] / "manifest.csv", dtype={"id": str, "identity": str})
    assert list(csv["id"]) == list(df["id"])
    out = runs["w1"]
    for _, r in ok.iterrows():
        from celebref.fsutil import sha256_file

        assert sha256_file(out / r["lq_path"]) == r["lq_sha256"]
        assert r["lq_path"] == f"lq/{r['id']}.png"
        assert sha256_file(Path(r["gt_path_abs"])) == r["gt_sha256"]
        assert (out / r["gt_path"]).resolve() == Path(r["gt_path_abs"])
        lq = read_image(out / r["lq_path"])
        assert lq.shape == (SIZE, SIZE, 3) and r["lq_size"] == f"{SIZE}x{SIZE}"
        # the stored parameters replay the image exactly
        pipe, _ = get_preset("dfdnet")
        params = {k: r[k] for k in pipe.sample(0, "x")}
        np.testing.assert_array_equal(pipe.apply(read_image(r["gt_path_abs"]), params), lq)
        if not r["noise_applied"]:
            assert np.isnan(r["noise_sigma"])


def test_dmdnet_lists_leave_the_lq_own_image_out(runs):
    out = runs["w1"]
    df = pd.read_parquet(out / "manifest.parquet").set_index("id")
    generic = (out / "GenericLists.txt").read_text().splitlines()
    assert generic == sorted(df.loc[df["status"] == "ok", "lq_path"])
    lines = [line.split("\t") for line in (out / "SpecificLists.txt").read_text().splitlines()]
    listed = {lq for lq, _, _ in lines}
    # identity 00002 has 2 images of which one is empty: its LQ has 1 reference (DMDNet needs >= 2)
    assert "lq/00002/0.png" not in listed and df.loc["00002/0", "n_refs"] == 1
    assert len(lines) == 5 + 4
    for lq, ref_dir, lm_dir in lines:
        image_id = lq[len("lq/"):-len(".png")]
        ident, stem = image_id.split("/")
        refs = sorted(os.listdir(out / ref_dir))
        others = sorted(f"{i}.png" for i in range({"00000": 5, "00001": 4}[ident]) if str(i) != stem)
        assert refs == others, f"{image_id}: {refs}"
        assert sorted(os.listdir(out / lm_dir)) == [f"{r}.txt" for r in others]
        assert (out / ref_dir / others[0]).read_bytes() == (Path(df.loc[image_id, "gt_path_abs"]).parent / others[0]).read_bytes()


def test_changing_adding_removing_one_input_leaves_the_others_unchanged(dataset, runs, tmp_path):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    write_image(copy / "images" / "00000" / "2.png", _face_like(1234))   # changed
    (copy / "images" / "00001" / "3.png").unlink()                         # removed
    write_image(copy / "images" / "00001" / "9.png", _face_like(4321))   # added
    synthesize(copy, tmp_path / "out", job("dfdnet"), workers=1, refs="none")
    before, after = files(runs["w1"]), files(tmp_path / "out")
    lq_before = {k: v for k, v in before.items() if k.startswith("lq/")}
    lq_after = {k: v for k, v in after.items() if k.startswith("lq/")}
    assert lq_before["lq/00000/2.png"] != lq_after["lq/00000/2.png"]
    assert "lq/00001/3.png" not in lq_after and "lq/00001/9.png" in lq_after
    for k, v in lq_before.items():
        if k not in ("lq/00000/2.png", "lq/00001/3.png"):
            assert lq_after[k] == v, f"{k} changed although its input did not"


def test_resume_skips_verified_images_and_redoes_damaged_ones(dataset, runs, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(runs["w1"], out)
    inode = {p: (out / p).stat().st_ino for p in ("lq/00000/0.png", "lq/00000/1.png", "lq/00000/3.png")}
    (out / "lq/00000/1.png").write_bytes(b"garbage")        # damaged: recomputed
    (out / "lq/00000/3.png").unlink()                       # missing: recomputed
    synthesize(dataset, out, job("dfdnet"), workers=2)
    assert (out / "lq/00000/0.png").stat().st_ino == inode["lq/00000/0.png"]  # verified and skipped
    assert (out / "lq/00000/1.png").stat().st_ino != inode["lq/00000/1.png"]
    assert files(out) == files(runs["w1"])


def test_rerun_after_removing_an_input_drops_its_outputs(dataset, runs, tmp_path):
    import shutil

    copy, out = tmp_path / "ds", tmp_path / "out"
    shutil.copytree(dataset, copy)
    shutil.copytree(runs["w1"], out)
    for p in ("images", "landmarks"):
        for f in (copy / p / "00000").glob("4.png*"):
            f.unlink()
    df = synthesize(copy, out, job("dfdnet"), workers=1)
    assert "00000/4" not in set(df["id"])
    assert not (out / "lq" / "00000" / "4.png").exists() and not (out / "refs" / "00000" / "4").exists()
    assert not (out / "refs" / "00000" / "0" / "images" / "4.png").exists()
    assert (out / "lq" / "00000" / "3.png").read_bytes() == (runs["w1"] / "lq" / "00000" / "3.png").read_bytes()


def test_resume_after_interruption_uses_the_journal(dataset, runs, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(runs["w1"], out)
    df = pd.read_parquet(out / "manifest.parquet")
    rows = df.head(6).to_dict("records")
    lines = [json.dumps(r, default=float) for r in rows]
    (out / JOURNAL).write_text("\n".join(lines) + '\n{"id": "00001/0", "stat')  # cut mid-line
    for name in ("manifest.parquet", "manifest.csv", "GenericLists.txt"):
        (out / name).unlink()
    done = [r["lq_path"] for r in rows if r["status"] == "ok"]
    inode = {p: (out / p).stat().st_ino for p in done}
    synthesize(dataset, out, job("dfdnet"), workers=1)
    assert all((out / p).stat().st_ino == inode[p] for p in done)
    assert not (out / JOURNAL).exists()
    assert files(out) == files(runs["w1"])


def test_another_configuration_in_the_same_folder_is_refused(dataset, runs, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(runs["w1"], out)
    with pytest.raises(ConfigError, match="another configuration"):
        synthesize(dataset, out, job("dfdnet", seed=1))
    synthesize(dataset, out, job("dfdnet", seed=1), overwrite=True, refs="none")
    assert files(out)["lq/00000/0.png"] != files(runs["w1"])["lq/00000/0.png"]
    assert not (out / "SpecificLists.txt").exists()


def test_native_size_output(dataset, tmp_path):
    pipe, overrides = get_preset("fixed", scale=4, noise=3)
    j = Job(pipe, "fixed", 0, overrides, lq_size="native")
    df = synthesize(dataset, tmp_path / "n", j, refs="none")
    ok = df[df["status"] == "ok"]
    assert (ok["lq_width"] == SIZE // 4).all() and (ok["lq_native_width"] == SIZE // 4).all()
    assert read_image(tmp_path / "n" / ok["lq_path"].iloc[0]).shape == (SIZE // 4, SIZE // 4, 3)


def test_grid_gives_one_set_per_combination_with_shared_draws(dataset, tmp_path):
    grid = parse_grid(["scale=2,4", "jpeg=none,50"])
    table = synthesize_grid(read_hq_set(dataset), tmp_path / "g", job("dfdnet"), grid, refs="none")
    assert list(table["cell"]) == ["scale-2_jpeg-none", "scale-2_jpeg-50", "scale-4_jpeg-none", "scale-4_jpeg-50"]
    assert (tmp_path / "g" / "grid.csv").is_file() and (tmp_path / "g" / "grid.parquet").is_file()
    frames = {c: pd.read_parquet(tmp_path / "g" / c / "manifest.parquet").query("status == 'ok'").set_index("id") for c in table["cell"]}
    a, b = frames["scale-2_jpeg-none"], frames["scale-4_jpeg-50"]
    assert (a["scale"] == 2).all() and (b["scale"] == 4).all() and (~a["jpeg_applied"]).all() and (b["jpeg_quality"] == 50).all()
    pd.testing.assert_series_equal(a["blur_sigma"], b["blur_sigma"])
    pd.testing.assert_series_equal(a["noise_seed"], b["noise_seed"])
    with pytest.raises(ConfigError):
        parse_grid(["contrast=1,2"])
    with pytest.raises(ConfigError):
        parse_grid(["scale=a,b"])


def test_fixed_preset_grid_over_blur_uses_a_kernel_that_fits_each_sigma(dataset, tmp_path):
    pipe, overrides = get_preset("fixed", scale=2)
    table = synthesize_grid(read_hq_set(dataset), tmp_path / "g", Job(pipe, "fixed", 0, overrides), parse_grid(["blur=0,1,2.5"]), refs="none")
    sets = {c: pd.read_parquet(tmp_path / "g" / c / "manifest.parquet").query("status == 'ok'").set_index("id") for c in table["cell"]}
    assert list(sets) == ["blur-0", "blur-1", "blur-2.5"]
    assert (~sets["blur-0"]["blur_applied"]).all() and (sets["blur-0"]["blur_sigma"] == 0).all()
    assert (sets["blur-1"]["blur_ksize"] == 7).all() and (sets["blur-2.5"]["blur_ksize"] == 17).all()
    gt = read_image(sets["blur-0"]["gt_path_abs"].iloc[0])
    lqs = [read_image(tmp_path / "g" / c / sets[c]["lq_path"].iloc[0]).astype(float) for c in sets]
    errors = [np.mean((lq - gt) ** 2) for lq in lqs]
    assert errors[0] < errors[1] < errors[2]  # more blur, further from the GT


def test_cli_runs_fixed_and_reports_errors(dataset, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli_main(["degrade", "--preset", "fixed", "--blur", "1.5", "--scale", "4", "--noise", "5", "--jpeg", "60", "--seed", "3",
                   "--input", str(dataset), "--out", str(out), "--workers", "2"])
    assert rc == 3  # finished, but 3 inputs got no LQ image (exit status says so; issue 15 item 2)
    cap = capsys.readouterr()
    assert "3 inputs rejected" in cap.out and "3 of 14 item(s) failed" in cap.err and "unreadable: 3 input(s)" in cap.err
    df = pd.read_parquet(out / "manifest.parquet")
    ok = df[df["status"] == "ok"]
    assert (ok["blur_sigma"] == 1.5).all() and (ok["scale"] == 4).all() and (ok["noise_sigma"] == 5).all() and (ok["jpeg_quality"] == 60).all()
    assert json.loads((out / "degrade.json").read_text())["config"]["seed"] == 3
    # the recipe stored in degrade.json replays the same images through --pipeline
    rc = cli_main(["degrade", "--pipeline", str(out / "degrade.json"), "--seed", "3", "--input", str(dataset), "--out", str(tmp_path / "replay")])
    assert rc == 3  # the same 3 unreadable inputs
    assert (tmp_path / "replay" / "lq" / "00000" / "1.png").read_bytes() == (out / "lq" / "00000" / "1.png").read_bytes()
    assert cli_main(["degrade", "--preset", "dfdnet", "--blur", "2", "--input", str(dataset), "--out", str(tmp_path / "x")]) == 2
    assert "belong to --preset fixed" in capsys.readouterr().err
    assert cli_main(["degrade", "--preset", "nope", "--input", str(dataset), "--out", str(tmp_path / "y")]) == 2
    assert cli_main(["degrade", "--input", str(tmp_path / "missing"), "--out", str(tmp_path / "z")]) == 2


def test_inputs_from_a_manifest_and_a_plain_folder(dataset, tmp_path):
    rows = [{"path": f"images/00000/{i}.png", "identity": "00000", "kind": "hq", "landmarks": f"landmarks/00000/{i}.png.txt"} for i in range(3)]
    rows.append({"path": "images/00000/404.png", "identity": "00000", "kind": "hq", "landmarks": ""})
    pd.DataFrame(rows).to_csv(dataset / "list.csv", index=False)
    try:
        s = read_hq_set(dataset / "list.csv")
    finally:
        (dataset / "list.csv").unlink()
    assert s.grouped and [i.id for i in s.items] == ["00000/0", "00000/1", "00000/2", "00000/404"]
    assert s.items[-1].reason == "missing_file" and s.items[0].landmarks_path.endswith("0.png.txt")
    plain = read_hq_set(dataset / "images")
    assert not plain.grouped and plain.items[0].id == "00000/0" and plain.items[0].identity == ""


# --- untouched images (issue 12 item 7), locks (issue 13 items 2, 5, 8) -----------------------------------

UNTOUCHED_ID = "u/3340"  # with seed 0, dfdnet draws no degradation at all for this id (checked below)


def test_untouched_images_are_reported_and_can_be_redrawn(tmp_path, capsys):
    from degradations.factors import is_untouched

    pipe, _ = get_preset("dfdnet")
    assert is_untouched(pipe.sample(0, UNTOUCHED_ID)) and not is_untouched(pipe.sample(0, "u/0"))
    src = tmp_path / "in"
    write_image(src / "u" / "3340.png", _face_like(5))
    write_image(src / "u" / "0.png", _face_like(6))
    gt = read_image(src / "u" / "3340.png")

    assert cli_main(["degrade", "--preset", "dfdnet", "--input", str(src), "--out", str(tmp_path / "plain")]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 LQ image drew no degradation" in err and UNTOUCHED_ID in err and "--redraw-untouched" in err
    meta = json.loads((tmp_path / "plain" / "degrade.json").read_text())
    assert meta["untouched"] == {"count": 1, "ids": [UNTOUCHED_ID], "redrawn": 0}
    df = pd.read_parquet(tmp_path / "plain" / "manifest.parquet").set_index("id")
    assert df.loc[UNTOUCHED_ID, "untouched"] and df.loc[UNTOUCHED_ID, "redraws"] == 0 and not df.loc["u/0", "untouched"]
    np.testing.assert_array_equal(read_image(tmp_path / "plain" / "lq" / "u" / "3340.png"), gt)  # LQ == GT

    outs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"redraw{workers}"
        assert cli_main(["degrade", "--preset", "dfdnet", "--input", str(src), "--out", str(out), "--redraw-untouched",
                         "--workers", workers]) == 0
        assert "warning" not in capsys.readouterr().err
        outs[workers] = files(out)
    assert outs["1"] == outs["2"]  # the redraw is deterministic: same seed, same bytes
    out = tmp_path / "redraw1"
    meta = json.loads((out / "degrade.json").read_text())
    assert meta["config"]["redraw_untouched"] == 8 and meta["untouched"]["count"] == 0 and meta["untouched"]["redrawn"] == 1
    row = pd.read_parquet(out / "manifest.parquet").set_index("id").loc[UNTOUCHED_ID]
    k = int(row["redraws"])
    assert k >= 1 and not row["untouched"]
    params = pipe.sample(0, UNTOUCHED_ID, redraw=k)  # the recorded sub-stream replays the parameters and the image
    assert all(row[c] == v or (isinstance(v, float) and np.isnan(v) and np.isnan(row[c])) for c, v in params.items())
    lq = read_image(out / "lq" / "u" / "3340.png")
    np.testing.assert_array_equal(lq, pipe.apply(gt, params))
    assert not np.array_equal(lq, gt)
    assert outs["1"]["lq/u/0.png"] == files(tmp_path / "plain")["lq/u/0.png"]  # touched images keep their own draw


def _big_dataset(root: Path, n: int = 60, size: int = 192) -> Path:
    rng = np.random.default_rng(1)
    for i in range(n):
        small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        write_image(root / "images" / f"{i % 3:05d}" / f"{i}.png", cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC))
    return root


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    return _big_dataset(tmp_path_factory.mktemp("big"))


def _degrade_proc(inp: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "CELEBREF_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-m", "celebref", "degrade", "--preset", "dfdnet", "--refs", "none",
                             "--input", str(inp), "--out", str(out), *extra], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def test_a_second_degrade_into_a_busy_folder_fails_clearly(big, tmp_path, capsys):
    from celebref.lock import LOCK_NAME, read_owner

    out = tmp_path / "out"
    first = _degrade_proc(big, out, "--seed", "1")
    try:
        _wait_for(lambda: (out / LOCK_NAME).exists() or first.poll() is not None)
        first.send_signal(signal.SIGSTOP)  # hold it mid-run, so the test never races it
        owner = read_owner(out)
        assert owner is not None and owner.pid == first.pid, "the first run finished before it could be paused"
        rc = cli_main(["degrade", "--preset", "dfdnet", "--seed", "2", "--refs", "none", "--input", str(big), "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and "in use by another celebref run" in err and f"pid {first.pid}" in err and "--seed 1" in err
    finally:
        first.send_signal(signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert json.loads((out / "degrade.json").read_text())["config"]["seed"] == 1
    df = pd.read_parquet(out / "manifest.parquet")
    assert (df["status"] == "ok").all() and (df["seed"] == 1).all() and len(list((out / "lq").rglob("*.png"))) == len(df)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_degrade_stops_its_workers_and_the_rerun_is_identical(big, tmp_path):
    out, ref = tmp_path / "out", tmp_path / "ref"
    run = _degrade_proc(big, out, "--workers", "2")
    try:
        _wait_for(lambda: len(list((out / "lq").rglob("*.png"))) >= 6 if (out / "lq").exists() else run.poll() is not None)
        workers = probe.children(run.pid, b"spawn_main")
    finally:
        run.send_signal(signal.SIGKILL)
        run.communicate()
    assert len(workers) == 2 and run.returncode == -signal.SIGKILL
    assert len(list((out / "lq").rglob("*.png"))) < 60, "the run finished before it was killed"
    deadline = time.monotonic() + 5  # PR_SET_PDEATHSIG acts at once; the parent watch within 0.5 s
    while any(probe.alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(probe.alive(w) for w in workers), "degrade workers outlived the killed run"
    snapshot = {str(p.relative_to(out)): p.stat().st_size for p in out.rglob("*") if p.is_file()}
    time.sleep(0.5)
    assert {str(p.relative_to(out)): p.stat().st_size for p in out.rglob("*") if p.is_file()} == snapshot

    rerun = _degrade_proc(big, out, "--workers", "2")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert "taking over the stale lock" in err and f"pid {run.pid}" in err
    assert cli_main(["degrade", "--preset", "dfdnet", "--refs", "none", "--input", str(big), "--out", str(ref)]) == 0
    got, want = files(out), files(ref)
    assert got.keys() == want.keys() and all(got[k] == want[k] for k in want)
    assert not [p for p in out.rglob(".*") if p.is_file() and p.name != JOURNAL]  # no lock, journal or temp file left


def test_cli_preset_parameters_as_a_spec_equal_the_flags(dataset, tmp_path, capsys):
    args = ["degrade", "--input", str(dataset), "--refs", "none", "--seed", "4"]
    # exit 3: the dataset's 3 unreadable inputs get no LQ image
    assert cli_main([*args, "--preset", "fixed:blur=1.5,scale=4,jpeg=60", "--out", str(tmp_path / "spec")]) == 3
    assert cli_main([*args, "--preset", "fixed", "--blur", "1.5", "--scale", "4", "--jpeg", "60", "--out", str(tmp_path / "flags")]) == 3
    assert files(tmp_path / "spec") == files(tmp_path / "flags")
    capsys.readouterr()
    assert cli_main([*args, "--preset", "dfdnet:gray=true", "--out", str(tmp_path / "bad")]) == 2
    assert "unknown parameter 'gray'" in capsys.readouterr().err
    assert cli_main([*args, "--preset", "fixed:blur=2", "--blur", "3", "--out", str(tmp_path / "twice")]) == 2
    assert "given both" in capsys.readouterr().err
