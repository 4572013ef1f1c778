"""The restoration runner and input formats (no model weights: a tiny real method defined here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baselines.base import STATUS_ERROR, STATUS_OK, RestorationMethod, RestoreResult
from celebref.testset import read_inputs
from baselines.registry import create_method, parse_method_spec
from celebref.params import split_spec_list
from celebref.app.restore import RestoreRunner, safe_id_path
from celebref.errors import CelebrefError, ConfigError, UnknownNameError
from celebref.imageio import read_image, write_image


class Invert(RestorationMethod):
    """255 - x: a real (trivial) method whose output is known exactly."""

    name = "invert"
    param_defaults = {"offset": 0}
    calls = 0

    def _restore(self, items):
        type(self).calls += len(items)
        return [RestoreResult(it.id, (255 - it.image.astype(np.int16) + self.params["offset"]).clip(0, 255).astype(np.uint8)) for it in items]


def _img(seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "lq"
    for i in range(5):
        write_image(root / ("sub" if i % 2 else "") / f"im{i}.png", _img(i))
    from celebref.imageio import encode_image

    data = encode_image(_img(7, 64))
    (root / "broken.png").write_bytes(data[: len(data) // 2])  # a truncated PNG
    return root


def test_runner_outputs_statuses_and_resume(folder: Path, tmp_path: Path) -> None:
    records = read_inputs(folder)
    assert [r.id for r in records] == ["broken", "im0", "im2", "im4", "sub/im1", "sub/im3"]
    out = tmp_path / "out"
    Invert.calls = 0
    runner = RestoreRunner(out, batch_size=2)
    run = runner.prepare(Invert(device="cpu"))
    rows = runner.run_method(run, records)
    assert Invert.calls == 5
    by_id = {r["id"]: r for r in rows}
    assert by_id["broken"]["status"] == STATUS_ERROR and "truncated" in by_id["broken"]["reason"]
    for r in records[1:]:
        assert by_id[r.id]["status"] == STATUS_OK
        np.testing.assert_array_equal(read_image(out / by_id[r.id]["output_path"]), 255 - read_image(r.lq_path))
    df = runner.finish()
    assert len(df) == len(records)  # every input accounted for
    assert pd.read_csv(out / "status.csv").shape[0] == len(records)
    assert set(pd.read_csv(out / "status.csv")["precision"]) == {"fp32"}  # the precision each method ran in

    # resume: nothing is recomputed
    runner2 = RestoreRunner(out, batch_size=2)
    runner2.run_method(runner2.prepare(Invert(device="cpu")), records)
    assert Invert.calls == 5
    # a deleted output is redone, and only that one
    (out / by_id["im2"]["output_path"]).unlink()
    runner3 = RestoreRunner(out, batch_size=2)
    runner3.run_method(runner3.prepare(Invert(device="cpu")), records)
    assert Invert.calls == 6


def test_runner_torn_journal_line_is_redone(folder: Path, tmp_path: Path) -> None:
    records = read_inputs(folder)
    out = tmp_path / "out"
    runner = RestoreRunner(out)
    run = runner.prepare(Invert(device="cpu"))
    runner.run_method(run, records[:2])
    journal = run.folder / ".status.jsonl"
    journal.write_text(journal.read_text() + '{"id": "im2", "sta')  # killed mid-write
    Invert.calls = 0
    rows = RestoreRunner(out).run_method(run, records)
    assert Invert.calls == len(records) - 2 and len(rows) == len(records)


def test_method_params_make_their_own_label_and_folder(folder: Path, tmp_path: Path) -> None:
    m = Invert(device="cpu", offset=3)
    assert m.label == "invert:offset=3"
    with pytest.raises(ConfigError, match="no parameter"):
        Invert(device="cpu", w=1)


def test_safe_id_path_refuses_escape(tmp_path: Path) -> None:
    assert safe_id_path(tmp_path, "a/b") == tmp_path / "a" / "b.png"
    with pytest.raises(CelebrefError):
        safe_id_path(tmp_path, "../evil")


def test_dmdnet_list_formats(tmp_path: Path) -> None:
    for ident in ("00001", "00002"):
        for n in range(3):
            write_image(tmp_path / "refs" / ident / f"{n}.png", _img(n))
            (tmp_path / "lms" / ident).mkdir(parents=True, exist_ok=True)
            if n < 2:  # the third image has no landmark file: not a usable reference
                np.savetxt(tmp_path / "lms" / ident / f"{n}.png.txt", np.zeros((68, 2)), fmt="%.3f")
        write_image(tmp_path / "lq" / f"{ident}_9.png", _img(9))
    lines = [f"lq/{i}_9.png\trefs/{i}\tlms/{i}" for i in ("00001", "00002")]
    (tmp_path / "SpecificLists.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "GenericLists.txt").write_text("lq/00001_9.png\nlq/00002_9.png\n")
    spec = read_inputs(tmp_path / "SpecificLists.txt")
    assert [r.id for r in spec] == ["00001_9", "00002_9"]
    assert spec[0].ref_dir == tmp_path / "refs" / "00001"
    runner = RestoreRunner(tmp_path / "o")
    refs = runner._reference_set(spec[0])
    assert len(refs.images) == 2 and refs.landmarks[0].shape == (68, 2)
    assert runner._reference_set(spec[0]) is refs  # cached per reference folder
    gen = read_inputs(tmp_path / "GenericLists.txt")
    assert [r.lq_path for r in gen] == [tmp_path / "lq" / "00001_9.png", tmp_path / "lq" / "00002_9.png"]


def test_specific_list_with_wrong_field_count(tmp_path: Path) -> None:
    (tmp_path / "S.txt").write_text("a\tb\tc\nx\ty\n")
    with pytest.raises(ConfigError, match=r"S.txt:2"):
        read_inputs(tmp_path / "S.txt")


def test_method_specs_and_did_you_mean() -> None:
    assert parse_method_spec("codeformer:w=0.7") == ("codeformer", {"w": 0.7})
    assert parse_method_spec("external:mine=/tmp/x") == ("external", {"label": "mine", "folder": "/tmp/x"})
    assert split_spec_list("dmdnet,codeformer:w=0.7,x=1,dfdnet") == ["dmdnet", "codeformer:w=0.7,x=1", "dfdnet"]
    with pytest.raises(UnknownNameError, match="did you mean 'dmdnet'"):
        create_method("dmdnte")
    with pytest.raises(ConfigError, match="external:LABEL"):
        parse_method_spec("external:nofolder")


def test_restore_cli_reports_unknown_method_without_traceback(tmp_path: Path, capsys) -> None:
    from celebref.app.cli import main

    write_image(tmp_path / "a.png", _img(1))
    rc = main(["restore", "--methods", "dfdnett", "--input", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "did you mean 'dfdnet'" in err and "Traceback" not in err


def test_restore_json_records_run(tmp_path: Path) -> None:
    """End to end through the CLI with the weight-free `lq` baseline."""
    from celebref.app.cli import main

    for i in range(3):
        write_image(tmp_path / "in" / f"{i}.png", _img(i))
    assert main(["restore", "--methods", "lq", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 0
    meta = json.loads((tmp_path / "o" / "restore.json").read_text())
    assert meta["n_inputs"] == 3 and meta["methods"][0]["name"] == "lq"
    for i in range(3):
        np.testing.assert_array_equal(read_image(tmp_path / "o" / "lq" / f"{i}.png"), read_image(tmp_path / "in" / f"{i}.png"))
