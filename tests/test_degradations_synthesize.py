"""The test-set writer and ``celebref degrade``: determinism across workers, independence between
images, resume, bad inputs, DMDNet lists, grids. Synthetic images (small) so this runs anywhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from celebref.app.cli import main as cli_main
from celebref.errors import ConfigError
from celebref.imageio import read_image, write_image
from degradations.inputs import collect_inputs
from degradations.presets import get_preset
from degradations.synthesize import JOURNAL, Job, parse_grid, synthesize, synthesize_grid

SIZE = 96


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
    table = synthesize_grid(collect_inputs(dataset), tmp_path / "g", job("dfdnet"), grid, refs="none")
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
    table = synthesize_grid(collect_inputs(dataset), tmp_path / "g", Job(pipe, "fixed", 0, overrides), parse_grid(["blur=0,1,2.5"]), refs="none")
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
    assert rc == 0
    assert "3 inputs rejected" in capsys.readouterr().out
    df = pd.read_parquet(out / "manifest.parquet")
    ok = df[df["status"] == "ok"]
    assert (ok["blur_sigma"] == 1.5).all() and (ok["scale"] == 4).all() and (ok["noise_sigma"] == 5).all() and (ok["jpeg_quality"] == 60).all()
    assert json.loads((out / "degrade.json").read_text())["config"]["seed"] == 3
    # the recipe stored in degrade.json replays the same images through --pipeline
    rc = cli_main(["degrade", "--pipeline", str(out / "degrade.json"), "--seed", "3", "--input", str(dataset), "--out", str(tmp_path / "replay")])
    assert rc == 0
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
        s = collect_inputs(dataset / "list.csv")
    finally:
        (dataset / "list.csv").unlink()
    assert s.grouped and [i.id for i in s.items] == ["00000/0", "00000/1", "00000/2", "00000/404"]
    assert s.items[-1].reason == "missing_file" and s.items[0].landmarks_path.endswith("0.png.txt")
    plain = collect_inputs(dataset / "images")
    assert not plain.grouped and plain.items[0].id == "00000/0" and plain.items[0].identity == ""
