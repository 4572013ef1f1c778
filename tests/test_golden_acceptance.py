"""Golden tolerances come from each golden's README at run time (issue 21 item 9), never from test constants."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from _golden_acceptance import codeformer_acceptance, dfdnet_acceptance, dmdnet_acceptance, gfpgan_acceptance

READERS = {"gfpgan": gfpgan_acceptance, "codeformer": codeformer_acceptance, "dmdnet": dmdnet_acceptance,
           "dfdnet": dfdnet_acceptance}


@pytest.mark.parametrize("name", sorted(READERS))
def test_every_bound_is_found_in_the_shipped_readme(golden_dir: Path, name: str) -> None:
    tol = READERS[name](golden_dir)
    assert tol and all(0 < v <= 1 for v in tol.values()), tol


def test_a_revised_readme_changes_the_bound_the_test_uses(golden_dir: Path, tmp_path: Path) -> None:
    """The CodeFormer README raised the w > 0 bound from 5e-4 to 1e-3 after a cross-CPU measurement: the test
    follows whatever the README says."""
    shutil.copytree(golden_dir / "codeformer", tmp_path / "codeformer", ignore=shutil.ignore_patterns("*.npz"))
    readme = tmp_path / "codeformer" / "README.md"
    text = readme.read_text(encoding="utf-8")
    before = codeformer_acceptance(tmp_path)["w_pos_max"]
    revised, n = re.subn(r"(`output_w1_0` max \|diff\| ≤ )\S+", r"\g<1>2e-3", text)
    assert n == 1
    readme.write_text(revised, encoding="utf-8")
    assert codeformer_acceptance(tmp_path)["w_pos_max"] == 2e-3 != before


def test_a_reworded_readme_fails_loudly(golden_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(golden_dir / "dfdnet", tmp_path / "dfdnet", ignore=shutil.ignore_patterns("*.npz"))
    readme = tmp_path / "dfdnet" / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("within max-abs", "to about"), encoding="utf-8")
    with pytest.raises(pytest.fail.Exception, match="did the README's wording change"):
        dfdnet_acceptance(tmp_path)
