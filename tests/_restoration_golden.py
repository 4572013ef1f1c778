"""Shared loading of the GFPGAN/CodeFormer golden cases (``case_*.report.json`` + ``.npz`` + ``spec.json``):
salts, scale adjustments and file names come from the fixture's own metadata."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from conftest import skip_without_shared


def golden_weights(synth_weights, root: Path, report: dict) -> dict[str, torch.Tensor]:
    """Synthetic weights of ``root/spec.json`` with the report's salt and scale adjustments (regex -> factor);
    the digest is checked when the spec records one for this salt."""
    spec = json.loads((root / "spec.json").read_text())
    sd = synth_weights.synth_state_dict(synth_weights.load_spec(root / "spec.json"), report["salt"])
    for pattern, factor in report.get("scale_adjust", {}).items():
        hits = [k for k in sd if re.search(pattern, k)]  # regex (a plain key fragment also matches itself)
        assert hits, f"scale adjustment {pattern!r} matches no key"
        for k in hits:
            sd[k] = sd[k] * factor
    if report["salt"] == spec.get("synth_salt") and spec.get("synth_digest_sha256_after_scale_adjust"):
        assert synth_weights.digest(sd) == spec["synth_digest_sha256_after_scale_adjust"]
    return sd


def first_golden_case(root: Path, method_cls, synth_weights):
    """(report, arrays, method built from the golden weights) of the first ``case_*`` in ``root``."""
    reports = sorted(root.glob("case_*.report.json"))
    if not reports:
        skip_without_shared(f"no golden cases in {root}")
    report_path = reports[0]
    report = json.loads(report_path.read_text())
    arrays = dict(np.load(report_path.with_name(report_path.name.replace(".report.json", ".npz"))))
    return report, arrays, method_cls.from_state_dict(golden_weights(synth_weights, root, report))
