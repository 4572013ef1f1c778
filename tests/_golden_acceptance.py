"""Tolerances of the restoration goldens, read from each golden's README ("Recommended acceptance" / "pass criteria").

The READMEs state their acceptance in prose (``../shared/golden/*/README.md``), and float32 results differ by CPU,
so a golden's owner may loosen or tighten a bound after measuring another machine (the CodeFormer README did:
5e-4 -> 1e-3 for w > 0). Tests therefore name *which* bound they check, by the phrase the README uses, and take the
number from the README at run time. A phrase that no longer matches fails the test loudly (never a silent default).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

#: a number as the READMEs write them: 1e-4, 5e-5, 0.1, 1
NUM = r"([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)"


def readme_text(readme: Path) -> str:
    """The README with its line breaks and runs of spaces folded to single spaces (bounds span lines)."""
    return " ".join(Path(readme).read_text(encoding="utf-8").split())


def readme_bound(readme: Path, pattern: str) -> float:
    """The number captured by ``pattern`` (a regex in which ``{NUM}`` stands for the number) in ``readme``."""
    m = re.search(pattern.replace("{NUM}", NUM), readme_text(readme))
    if m is None:
        pytest.fail(f"{readme}: no acceptance bound matching {pattern!r}; did the README's wording change?")
    return float(m.group(1))


LE = r"(?:≤|<=)"  # both spellings occur


def gfpgan_acceptance(golden: Path) -> dict[str, float]:
    """GFPGAN v1.4: output max/mean |diff|, style code, fraction of uint8 values off by one (README, "Recommended
    acceptance"); also the uint8 rule the CodeFormer test borrows (its README defers to the same convention)."""
    r = golden / "gfpgan" / "README.md"
    return {
        "output_max": readme_bound(r, rf"`output` max \|diff\| {LE} {{NUM}}"),
        "output_mean": readme_bound(r, rf"`output` max \|diff\| {LE} \S+ and mean \|diff\| {LE} {{NUM}}"),
        "style_code": readme_bound(r, rf"`style_code` {LE} {{NUM}}"),
        "uint8_frac_off_by_one": readme_bound(r, rf"uint8 image: {LE} {{NUM}} ?% of values off by 1") / 100.0,
    }


def codeformer_acceptance(golden: Path) -> dict[str, float]:
    """CodeFormer: logits / lq_feat, output at w = 0 and w > 0 (max), mean for all w (README, "Recommended acceptance")."""
    r = golden / "codeformer" / "README.md"
    return {
        "logits": readme_bound(r, rf"`logits` and `lq_feat` max \|diff\| {LE} {{NUM}}"),
        "lq_feat": readme_bound(r, rf"`logits` and `lq_feat` max \|diff\| {LE} {{NUM}}"),
        "w0_max": readme_bound(r, rf"`output_w0_0` max \|diff\| {LE} {{NUM}}"),
        "w_pos_max": readme_bound(r, rf"`output_w0_5`, `output_w1_0` max \|diff\| {LE} {{NUM}}"),
        "mean": readme_bound(r, rf"mean \|diff\| {LE} {{NUM}} for all w"),
    }


def dmdnet_acceptance(golden: Path) -> dict[str, float]:
    """DMDNet: outputs (generic, specific and their difference) and the debug specific dictionary (README,
    "Suggested pass criteria for a float32 re-implementation")."""
    r = golden / "dmdnet" / "README.md"
    return {
        "out": readme_bound(r, rf"max\|out - golden\| {LE} {{NUM}}` for `generic_out` and `specific_out`"),
        "out_diff": readme_bound(r, rf"max\|\(specific-generic\) - \(specific_golden-generic_golden\)\| {LE} {{NUM}}"),
        "dict": readme_bound(r, r"On debug intermediates use `atol {NUM}` \(q, spdict\)"),
    }


def dfdnet_acceptance(golden: Path) -> dict[str, float]:
    """DFDNet: float32 output max-abs and the uint8 output bound (README, "How to use the fixture")."""
    r = golden / "dfdnet" / "README.md"
    return {
        "output": readme_bound(r, r"float32: `output` within max-abs {NUM}"),
        "uint8": readme_bound(r, r"`output_uint8` within ±{NUM}"),
    }
