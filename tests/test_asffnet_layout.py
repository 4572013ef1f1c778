"""ASFFNet through the CLI on real faces (slow: full 512x512 forwards on CPU).

* ASFFNet's own TestExamples layout as shipped by csxmli2016/ASFFNet512 (``TestLists.txt`` with
  ``./TestExamples/LQCrop/...<TAB>./TestExamples/HQReferences/<id><TAB>./TestExamples/HQReferences_Landmarks/<id>``
  lines, no newline after the last, landmark files ``<image>.png.txt``), regenerated from ``../shared`` faces and
  run from the list's root like the official ``main_test.py``.
* ``celebref evaluate --methods dmdnet-specific,asffnet`` on a degrade output with references: both methods get the
  same references, recorded per image in ``per_image``.

Synthetic weights (``../shared/golden/synth_weights.py``) through ``CELEBREF_WEIGHT_<NAME>`` and
``--allow-unverified-weights``; the LQ landmarks come from our face backend.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from celebref.app.cli import main
from celebref.imageio import read_image

GOLDEN = Path(__file__).parent / "golden" / "asffnet"
LQS = {"00075": ("00075_14.png", ["0.png", "1.png", "13.png"]), "00086": ("00086_1.png", ["0.png", "2.png", "3.png"])}

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


def _synth_checkpoint(synth_weights, spec: Path, salt: str, dest: Path, wrap: str | None) -> Path:
    sd = synth_weights.synth_state_dict(synth_weights.load_spec(str(spec)), salt)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save({wrap: sd} if wrap else sd, dest)
    return dest


@pytest.fixture()
def asffnet_root(tmp_path: Path, mini_dir: Path, synth_weights, monkeypatch) -> Path:
    root = tmp_path / "ASFFNet512"
    lines = []
    for ident, (lq, refs) in LQS.items():
        (root / "TestExamples" / "LQCrop").mkdir(parents=True, exist_ok=True)
        shutil.copy(mini_dir / "lq" / lq, root / "TestExamples" / "LQCrop" / lq)
        for d in ("HQReferences", "HQReferences_Landmarks"):
            (root / "TestExamples" / d / ident).mkdir(parents=True, exist_ok=True)
        for r in refs:
            shutil.copy(mini_dir / "hq" / ident / r, root / "TestExamples" / "HQReferences" / ident / r)
            shutil.copy(mini_dir / "landmarks" / ident / f"{r}.txt", root / "TestExamples" / "HQReferences_Landmarks" / ident / f"{r}.txt")
        lines.append(f"./TestExamples/LQCrop/{lq}\t./TestExamples/HQReferences/{ident}\t./TestExamples/HQReferences_Landmarks/{ident}")
    (root / "TestExamples" / "TestLists.txt").write_text("\n".join(lines))  # as upstream: no final newline
    meta = json.loads((GOLDEN / "meta.json").read_text())
    ckpt = _synth_checkpoint(synth_weights, GOLDEN / "spec.json", meta["synth_salt"], root / "checkpoints" / "ASFFNet512.pth", "params")
    monkeypatch.setenv("CELEBREF_WEIGHT_ASFFNET", str(ckpt))
    return root


def test_testlists_as_shipped_from_the_asffnet_root(asffnet_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(asffnet_root)
    out = tmp_path / "out"
    assert main(["restore", "--methods", "asffnet", "--input", "TestExamples/TestLists.txt", "--out", str(out),
                 "--device", "cpu", "--allow-unverified-weights"]) == 0
    status = pd.read_csv(out / "status.csv", dtype=str, keep_default_na=False).set_index("id")
    assert sorted(status.index) == ["00075_14", "00086_1"] and (status["status"] == "ok").all()
    for ident, (lq, refs) in LQS.items():
        row = status.loc[lq[:-4]]
        assert row["reason"].split()[1].endswith(f"/{len(refs)}") and "LQ landmarks: " in row["reason"]
        assert "LQ landmarks: given" not in row["reason"]  # found by our face backend, named in the row
        img = read_image(out / "asffnet" / lq)
        assert img.shape == (512, 512, 3) and img.dtype == np.uint8
        assert not np.array_equal(img, read_image(asffnet_root / "TestExamples" / "LQCrop" / lq))
    record = json.loads((out / "restore.json").read_text())["test_set"]
    assert record["paths_resolved"] == {"cwd": 6} and record["list_format"] == "specific"


def test_evaluate_gives_dmdnet_specific_and_asffnet_the_same_references(asffnet_root: Path, tmp_path: Path, mini_dir: Path,
                                                                        golden_dir: Path, synth_weights, monkeypatch) -> None:
    dmd_spec = golden_dir / "dmdnet" / "spec.json"
    if not dmd_spec.is_file():
        pytest.skip(f"no DMDNet spec at {dmd_spec}")
    salt = json.loads(dmd_spec.read_text())["synth_salt"]
    monkeypatch.setenv("CELEBREF_WEIGHT_DMDNET", str(_synth_checkpoint(synth_weights, dmd_spec, salt, tmp_path / "w" / "DMDNet.pth", None)))
    data = tmp_path / "mini"  # one identity, 3 faces: each LQ gets the 2 others as references
    for n in ("0.png", "1.png", "2.png"):
        (data / "hq" / "00075").mkdir(parents=True, exist_ok=True)
        (data / "landmarks" / "00075").mkdir(parents=True, exist_ok=True)
        shutil.copy(mini_dir / "hq" / "00075" / n, data / "hq" / "00075" / n)
        shutil.copy(mini_dir / "landmarks" / "00075" / f"{n}.txt", data / "landmarks" / "00075" / f"{n}.txt")
    deg = tmp_path / "deg"
    assert main(["degrade", "--input", str(data), "--out", str(deg), "--preset", "dfdnet", "--seed", "0"]) == 0
    ev = tmp_path / "ev"
    assert main(["evaluate", "--data", str(deg), "--methods", "dmdnet-specific,asffnet", "--metrics", "psnr",
                 "--device", "cpu", "--out", str(ev), "--allow-unverified-weights"]) == 0
    df = pd.read_csv(ev / "per_image.csv", dtype={"id": str, "references": str}, keep_default_na=False)
    df = df[df["method"] != "lq"]  # evaluate always adds the LQ as a reference row
    assert set(df["method"]) == {"dmdnet-specific", "asffnet"} and (df["status"] == "ok").all()
    by = df.pivot(index="id", columns="method", values="references")
    assert len(by) == 3 and (by["dmdnet-specific"] == by["asffnet"]).all()
    for image_id, refs in by["asffnet"].items():
        names = refs.split(";")
        assert len(names) == 2 and f"{image_id.split('/')[1]}.png" not in names  # the LQ's own image is left out
    assert (df["n_references"].astype(float) == 2).all()  # a float column: the lq rows have none
