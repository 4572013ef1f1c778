"""`celebref demo`, the README's main job: offline, end to end, on the built-in sample."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from celebref.app.cli import main


def test_demo_runs_end_to_end_offline(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    manifest = pd.read_csv(out / "dataset" / "manifest.csv", keep_default_na=False)
    prim = manifest[manifest["is_primary"].astype(str) == "True"]
    assert len(prim) == 7  # every sample file is accounted for
    decided = dict(zip(prim["source_path"], prim["reason"]))
    assert decided["Grace Hopper/coffee.png"] == "no_face" and decided["Grace Hopper/broken.png"] == "unreadable"
    assert decided["Eileen Collins/astronaut_mirror.png"] == "near_duplicate"
    accepted = prim[prim["decision"] == "accepted"]
    assert sorted(accepted["identity_folder"]) == ["Eileen Collins", "Grace Hopper"]
    per = pd.read_parquet(out / "run" / "per_image.parquet")
    assert {"lq", "bicubic"} <= set(per["method"]) and per["id"].nunique() == 2
    assert per[per["method"] == "lq"][["psnr", "ssim", "identity_cos"]].notna().all().all()
    skipped = json.loads((out / "run" / "run.json").read_text())["skipped"]
    assert {s["name"] for s in skipped} >= {"fid"}  # no Inception weights offline: skipped and said so
    assert (out / "run" / "report" / "index.html").is_file() and (out / "dataset" / "report" / "index.html").is_file()
    data = (out / "run" / "report" / "assets" / "gallery-data.js").read_text()
    gallery = json.loads(data[data.index("=") + 1 : data.rindex(";")])
    details = [c["detail"] for r in gallery["rows"] for c in r["cells"] if c["detail"]]
    assert details and all((out / "run" / "report" / d).is_file() for d in details)  # eye/mouth crops from landmarks
    assert "evaluation report:" in err and "skipped for missing weights" in err and "celebref weights fetch" in err
