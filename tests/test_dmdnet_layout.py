"""DMDNet's own list files work as shipped (issue 12 item 1): a tree in the exact layout of
csxmli2016/DMDNet's TestExamples, with its list lines (``./TestExamples/...``, tab-separated SpecificLists,
no newline after the last line), run from the repository root as the official ``main_test.py`` is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baselines.base import RestorationMethod, RestoreResult
from celebref.app.cli import main
from celebref.app.restore import RestoreRunner
from celebref.imageio import read_image, write_image
from celebref.testset import read_test_set

GEN = "TestExamples/TestGenericRestoration"
SPE = "TestExamples/TestSpecificRestoration"
REFS = {"00005": ["10.png", "11.png", "4.png"], "00022": ["0.png", "1.png"]}  # RefsImg/<identity>/
EXTRA_LANDMARKS = {"00005": ["0.png", "1.png"]}  # RefsLandmark holds more files than RefsImg, as upstream


def _img(seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture()
def dmdnet_root(tmp_path: Path) -> Path:
    root = tmp_path / "DMDNet"
    generic = []
    for i in range(1, 4):
        write_image(root / GEN / "RealLQs" / f"000{i}.png", _img(i))
        generic.append(f"./{GEN}/RealLQs/000{i}.png")
    write_image(root / GEN / "SynLQ" / "00146_17.png", _img(9))
    generic.append(f"./{GEN}/SynLQ/00146_17.png")
    (root / GEN / "GenericLists.txt").write_text("\n".join(generic) + "\n")
    specific = []
    for k, (ident, names) in enumerate(REFS.items()):
        for n, name in enumerate(names + EXTRA_LANDMARKS.get(ident, [])):
            if name in names:
                write_image(root / SPE / "RefsImg" / ident / name, _img(100 + 10 * k + n))
            lm = root / SPE / "RefsLandmark" / ident / f"{name}.txt"
            lm.parent.mkdir(parents=True, exist_ok=True)
            lm.write_text("".join(f"{200 + x:.3f} {250 + x:.3f}\n" for x in range(68)))
        write_image(root / SPE / "SynLQ" / f"{ident}_17.png", _img(50 + k))
        specific.append(f"./{SPE}/SynLQ/{ident}_17.png\t./{SPE}/RefsImg/{ident}\t./{SPE}/RefsLandmark/{ident}")
    (root / SPE / "SpecificLists.txt").write_text("\n".join(specific))  # upstream: no final newline
    return root


def test_generic_list_from_the_dmdnet_root(dmdnet_root: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(dmdnet_root)
    out = tmp_path / "out"
    assert main(["restore", "--methods", "lq", "--input", f"{GEN}/GenericLists.txt", "--out", str(out)]) == 0
    status = pd.read_csv(out / "status.csv", dtype=str, keep_default_na=False)
    assert sorted(status["id"]) == ["0001", "0002", "0003", "00146_17"] and (status["status"] == "ok").all()
    for i in range(1, 4):
        np.testing.assert_array_equal(read_image(out / "lq" / f"000{i}.png"), _img(i))
    record = json.loads((out / "restore.json").read_text())["test_set"]
    assert record["relative_paths"] == "current directory first, then the list's folder"
    assert record["paths_resolved"] == {"cwd": 4} and record["list_format"] == "generic"


def test_specific_list_from_the_dmdnet_root_reads_every_reference(dmdnet_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(dmdnet_root)
    ts = read_test_set(f"{SPE}/SpecificLists.txt")
    assert ts.info["paths_resolved"] == {"cwd": 6} and ts.info["list_format"] == "specific"
    assert [r.ref_dir for r in ts.records] == [dmdnet_root / SPE / "RefsImg" / i for i in REFS]

    class CountRefs(RestorationMethod):
        """Writes the number of references it was given into every pixel."""

        name = "count-refs"
        needs_references = True
        input_size = None

        def _restore(self, items):
            return [RestoreResult(it.id, np.full_like(it.image, len(it.references.images))) for it in items]

    runner = RestoreRunner(tmp_path / "o")
    rows = runner.run_method(runner.prepare(CountRefs(device="cpu")), ts.records)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for rec, ident in zip(ts.records, REFS):
        assert read_image(tmp_path / "o" / "count-refs" / f"{rec.id}.png")[0, 0, 0] == len(REFS[ident])


def test_missing_entry_names_both_paths_and_changes_the_exit_status(dmdnet_root: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(dmdnet_root)
    lst = dmdnet_root / GEN / "GenericLists.txt"
    lst.write_text(lst.read_text() + f"./{GEN}/RealLQs/0099.png\n")
    out = tmp_path / "out"
    assert main(["restore", "--methods", "lq", "--input", str(lst), "--out", str(out)]) == 3
    status = pd.read_csv(out / "status.csv", dtype=str, keep_default_na=False).set_index("id")
    reason = status.loc["0099", "reason"]
    assert status.loc["0099", "status"] == "error"
    assert str(dmdnet_root / GEN / "RealLQs" / "0099.png") in reason  # from the current directory
    assert str(dmdnet_root / GEN / GEN / "RealLQs" / "0099.png") in reason  # from the list's folder
    assert "1 of 5 item(s) failed" in capsys.readouterr().err


def test_list_relative_to_its_own_folder_still_works_from_elsewhere(dmdnet_root: Path, tmp_path: Path, monkeypatch) -> None:
    (dmdnet_root / GEN / "Local.txt").write_text("RealLQs/0001.png\nSynLQ/00146_17.png\n")
    monkeypatch.chdir(tmp_path)
    ts = read_test_set(dmdnet_root / GEN / "Local.txt")
    assert [r.lq_path for r in ts.records] == [dmdnet_root / GEN / "RealLQs" / "0001.png", dmdnet_root / GEN / "SynLQ" / "00146_17.png"]
    assert ts.info["paths_resolved"] == {"list_folder": 2}
