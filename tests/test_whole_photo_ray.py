"""``restore --whole-photo`` and ``evaluate --whole-photo`` with ``--engine ray`` (issue 22.15): the faces are
restored on Ray actors (which build the method themselves), the outputs equal the local engine's byte for byte, and
the engine is recorded in ``whole_photo.json`` / ``run.json``. Uses the session's local Ray (conftest)."""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs the optional extra: pip install 'celebref[ray]'")

from celebref.imageio import write_image  # noqa: E402
from celebref.tabular import read_table  # noqa: E402

from test_whole_photo import compose, needs_dlib, needs_mini  # noqa: E402
from test_whole_photo_runs import _refs  # noqa: E402


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@needs_mini
@needs_dlib
def test_whole_photo_runs_on_ray(tmp_path, ray_session):
    from celebref.app.cli import main

    src = tmp_path / "photos"
    write_image(src / "two.png", compose(2))
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"restore_{engine}"
        assert main(["restore", "--whole-photo", "--methods", "lq", "--input", str(src), "--out", str(out),
                     "--engine", engine]) == 0
        assert json.loads((out / "whole_photo.json").read_text())["engine"]["engine"] == engine
        outs[engine] = out
    assert _files(outs["local"]) == _files(outs["ray"])
    cols = ["photo", "method", "face", "status", "matrix", "input_path", "restored_path", "output_path"]
    assert read_table(outs["local"] / "faces.csv")[cols].equals(read_table(outs["ray"] / "faces.csv")[cols])

    refs = _refs(tmp_path / "refs")
    runs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"eval_{engine}"
        assert main(["evaluate", "--whole-photo", "--data", str(src), "--methods", "lq", "--metrics", "identity",
                     "--identity-refs", str(refs), "--out", str(out), "--engine", engine]) == 0
        assert json.loads((out / "run.json").read_text())["engine"]["engine"] == engine
        runs[engine] = read_table(out / "per_image.csv")
    assert runs["local"][["id", "status", "identity_ref_cos"]].equals(runs["ray"][["id", "status", "identity_ref_cos"]])
