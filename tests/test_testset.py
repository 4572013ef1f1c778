"""The one test-set reader (celebref.testset): list-file encodings and formats that used to be misread
silently (issue 13 items 4 and 7), folders, absolute paths, and "not a test set" (issue 12 item 8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from celebref.errors import ConfigError
from celebref.imageio import write_image
from celebref.testset import NOT_A_TEST_SET, parse_list, read_test_set


def _img(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """lq/{a,b}.png, refs/p/{0,1}.png with landmark files in lms/p/."""
    for i, name in enumerate("ab"):
        write_image(tmp_path / "lq" / f"{name}.png", _img(i))
    for n in range(2):
        write_image(tmp_path / "refs" / "p" / f"{n}.png", _img(10 + n))
        (tmp_path / "lms" / "p").mkdir(parents=True, exist_ok=True)
        (tmp_path / "lms" / "p" / f"{n}.png.txt").write_text("1.000 2.000\n" * 68)
    return tmp_path


def test_non_utf8_list_names_the_line(tree: Path) -> None:
    (tree / "L.txt").write_bytes(b"lq/a.png\nlq/b.png\nlq/caf\xe9.png\n")
    with pytest.raises(ConfigError, match=r"L.txt:3: line 3 is not UTF-8 text \(byte 0xe9 at column 7\)"):
        read_test_set(tree / "L.txt")


def test_bom_and_leading_tab_do_not_change_the_first_path(tree: Path) -> None:
    (tree / "bom.txt").write_bytes(b"\xef\xbb\xbflq/a.png\nlq/b.png\n")
    (tree / "tab.txt").write_text("\tlq/a.png\nlq/b.png\n")
    for name in ("bom.txt", "tab.txt"):
        recs = read_test_set(tree / name).records
        assert [(r.id, r.lq_path, r.reason) for r in recs] == [
            ("a", tree / "lq" / "a.png", ""), ("b", tree / "lq" / "b.png", "")], name


def test_specific_list_with_a_trailing_tab_keeps_its_references(tree: Path) -> None:
    (tree / "S.txt").write_text("lq/a.png\trefs/p\tlms/p\t\nlq/b.png\trefs/p\tlms/p\n")
    ts = read_test_set(tree / "S.txt")
    assert ts.info["list_format"] == "specific"
    assert [r.ref_dir for r in ts.records] == [tree / "refs" / "p"] * 2
    assert [r.ref_landmark_dir for r in ts.records] == [tree / "lms" / "p"] * 2


def test_specific_list_whose_first_line_uses_spaces_is_refused_with_its_line(tree: Path) -> None:
    (tree / "S.txt").write_text("lq/a.png refs/p lms/p\nlq/b.png\trefs/p\tlms/p\n")
    with pytest.raises(ConfigError, match=r"S.txt:1: line 1 has no tab but three space-separated fields"):
        read_test_set(tree / "S.txt")
    with pytest.raises(ConfigError, match=r"S.txt:1: line 1 has no tab"):
        read_test_set(tree / "S.txt", list_format="specific")


def test_mixed_list_is_refused_unless_the_format_is_named(tree: Path) -> None:
    (tree / "M.txt").write_text("lq/a.png\trefs/p\tlms/p\nlq/b.png\n")
    with pytest.raises(ConfigError, match=r"mixed list: line 1 has 3 fields .* but line 2 has 1"):
        read_test_set(tree / "M.txt")
    with pytest.raises(ConfigError, match=r"M.txt:2: line 2 has 1 field but list_format is 'specific'"):
        read_test_set(tree / "M.txt", list_format="specific")
    ts = read_test_set(tree / "M.txt", list_format="generic")  # named: the LQ paths only, said in the record
    assert [r.ref_dir for r in ts.records] == [None, None] and ts.info["references_ignored"] == 1


def test_wrong_field_count_names_the_line(tree: Path) -> None:
    (tree / "W.txt").write_text("lq/a.png\trefs/p\tlms/p\nlq/b.png\trefs/p\n")
    with pytest.raises(ConfigError, match=r"W.txt:2: line 2 has 2 tab-separated fields"):
        read_test_set(tree / "W.txt")


def test_a_text_file_is_not_a_test_set(tree: Path) -> None:
    (tree / "notes.txt").write_text("remember to run dmdnet\nand compare with gfpgan\n")
    with pytest.raises(ConfigError, match="not a test set: expected a manifest, a list file or a folder of images"):
        read_test_set(tree / "notes.txt")
    (tree / "notes.md").write_text("# notes\n")
    with pytest.raises(ConfigError, match="not a test set"):
        read_test_set(tree / "notes.md")


def test_missing_list_entry_is_a_record_whose_reason_names_the_paths_tried(tree: Path, monkeypatch) -> None:
    work = tree / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    (tree / "G.txt").write_text("lq/a.png\nlq/gone.png\n")
    ts = read_test_set(tree / "G.txt")
    gone = ts.records[1]
    assert gone.id == "gone" and str(work / "lq" / "gone.png") in gone.reason and str(tree / "lq" / "gone.png") in gone.reason
    assert ts.records[0].reason == "" and ts.info["paths_resolved"] == {"list_folder": 1, "not_found": 1}


def test_folder_ids_paths_absolute_and_duplicate_ids_rejected(tree: Path, monkeypatch) -> None:
    write_image(tree / "lq" / "a.jpg", _img(5))  # same id as a.png
    monkeypatch.chdir(tree)
    ts = read_test_set("lq")
    assert [r.id for r in ts.records] == ["a", "a", "b"]
    assert all(r.lq_path.is_absolute() for r in ts.records) and ts.records[0].lq_path == tree / "lq" / "a.jpg"
    assert ts.records[0].reason == "" and "duplicate id 'a'" in ts.records[1].reason


def test_parse_list_counts_resolution_rules(tree: Path, monkeypatch) -> None:
    monkeypatch.chdir(tree)
    (tree / "sub").mkdir()
    (tree / "sub" / "G.txt").write_text(f"./lq/a.png\n{tree / 'lq' / 'b.png'}\n")
    parsed = parse_list(tree / "sub" / "G.txt")
    assert [e.lq for e in parsed.entries] == [tree / "lq" / "a.png", tree / "lq" / "b.png"]
    assert parsed.resolution == {"cwd": 1, "absolute": 1} and NOT_A_TEST_SET.startswith("not a test set")
