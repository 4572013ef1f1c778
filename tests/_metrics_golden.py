"""Helpers shared by the metric golden tests (not a test module): reading ``../shared/golden/metrics``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from celebref.imageio import read_image
from conftest import skip_without_shared


def metrics_dir(golden_dir: Path) -> Path:
    d = golden_dir / "metrics"
    if not (d / "tolerances.json").is_file():
        skip_without_shared(f"metric goldens not found in {d}")
    return d


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())


def tolerance(mdir: Path, key: str) -> tuple[float, float]:
    t = load_json(mdir / "tolerances.json")[key]
    return float(t.get("atol", 0.0)), float(t.get("rtol", 0.0))


def within(value, golden, atol: float, rtol: float) -> np.ndarray:
    value, golden = np.asarray(value, np.float64), np.asarray(golden, np.float64)
    return np.abs(value - golden) <= atol + rtol * np.abs(golden)


def read_checked(mdir: Path, rel: str, sha256: str | None = None) -> torch.Tensor:
    """A fixture image as uint8 ``(3, H, W)`` RGB; verifies the sha256 of the file when given."""
    path = mdir / rel
    if sha256 is not None:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256, f"{rel} does not match images.json"
    return torch.from_numpy(read_image(path).copy()).permute(2, 0, 1).contiguous()


def image_sha(mdir: Path) -> dict[str, str]:
    out = {}
    for p in load_json(mdir / "images.json")["pairs"]:
        out[p["gt"]] = p["sha256"]["gt"]
        out[p["dist"]] = p["sha256"]["dist"]
    return out


def load_synth(synth_weights, spec_path: Path, salt: str, digest: str) -> dict[str, torch.Tensor]:
    sd = synth_weights.synth_state_dict(synth_weights.load_spec(spec_path), salt)
    assert synth_weights.digest(sd) == digest, f"synthetic weights for {spec_path.name} do not match the golden digest"
    return sd
