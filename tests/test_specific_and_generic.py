"""The DMDNet paper's comparison end to end (issue 19, acceptance): ``celebref evaluate --methods dmdnet-specific,
asffnet,restoreformer,restoreformer++,gfpgan,codeformer`` on a celebref-mini degrade output with synthetic weights
(``--allow-unverified-weights``) completes with exit 0, both specific methods get the same references, and the paper
tables show both settings (generic and specific, the reference count in the specific caption)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from celebref import weights
from celebref.app.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]
HERE = Path(__file__).parent


@pytest.fixture
def synthetic_checkpoints(golden_dir: Path, synth_weights, tmp_path: Path, monkeypatch) -> None:
    """Every method's checkpoint in its official layout, made from the goldens' synthetic weights."""
    from _restoration_golden import golden_weights
    from test_restoreformer import _install_synthetic_checkpoints

    def save(name: str, obj) -> None:
        path = tmp_path / "w" / f"{name}.pth"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, path)
        monkeypatch.setenv(weights.env_var(name), str(path))

    for name, folder in (("gfpgan-v1.4", "gfpgan"), ("codeformer", "codeformer")):
        report = json.loads(next((golden_dir / folder).glob("case_*.report.json")).read_text())
        save(name, {"params_ema": golden_weights(synth_weights, golden_dir / folder, report)})
    dmd = golden_dir / "dmdnet" / "spec.json"
    save("dmdnet", synth_weights.synth_state_dict(synth_weights.load_spec(str(dmd)), json.loads(dmd.read_text())["synth_salt"]))
    meta = json.loads((HERE / "golden" / "asffnet" / "meta.json").read_text())
    save("asffnet", {"params": synth_weights.synth_state_dict(synth_weights.load_spec(str(HERE / "golden" / "asffnet" / "spec.json")),
                                                              meta["synth_salt"])})
    _install_synthetic_checkpoints()  # restoreformer, restoreformer++ into the test's weight store


def test_generic_and_specific_methods_on_one_test_set(mini_dir: Path, tmp_path: Path, synthetic_checkpoints) -> None:
    data = tmp_path / "mini"  # one identity, 3 faces: each LQ gets the 2 others as references
    for n in ("0.png", "1.png", "2.png"):
        for sub, name in (("hq", n), ("landmarks", f"{n}.txt")):
            (data / sub / "00075").mkdir(parents=True, exist_ok=True)
            shutil.copy(mini_dir / sub / "00075" / name, data / sub / "00075" / name)
    deg, run = tmp_path / "deg", tmp_path / "run"
    assert main(["degrade", "--input", str(data), "--out", str(deg), "--preset", "dfdnet", "--seed", "0"]) == 0
    methods = ["dmdnet-specific", "asffnet", "restoreformer", "restoreformer++", "gfpgan", "codeformer"]
    assert main(["evaluate", "--data", str(deg), "--methods", ",".join(methods), "--metrics", "psnr,ssim",
                 "--landmark-source", "gt", "--device", "cpu", "--out", str(run), "--allow-unverified-weights"]) == 0
    per = pd.read_csv(run / "per_image.csv", dtype={"id": str, "references": str}, keep_default_na=False)
    assert set(per["method"]) == {"lq", *methods} and (per["status"] == "ok").all()
    refs = per[per["method"].isin(["dmdnet-specific", "asffnet"])].pivot(index="id", columns="method", values="references")
    assert len(refs) == 3 and (refs["dmdnet-specific"] == refs["asffnet"]).all()
    rj = json.loads((run / "run.json").read_text())
    assert {m["label"]: m["needs_references"] for m in rj["methods"]} == {
        "lq": False, "dmdnet-specific": True, "asffnet": True, "restoreformer": False, "restoreformer++": False,
        "gfpgan": False, "codeformer": False}
    out = tmp_path / "tables.md"
    assert main(["tables", str(run), "--format", "markdown", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Generic restoration" in text and "Specific restoration" in text, text
    assert "references 2 per image" in text, text  # per_image n_references: what the methods were given
