"""Resume journals (celebref.journal) survive a kill at any byte: a torn last line is dropped, never merged
with the next row; both users (the restore runner's status journal, evaluate's metric cache) resume to the
right rows after a cut at several byte offsets (mid-line, right after a newline, just before the newline,
inside a UTF-8 sequence)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baselines.base import STATUS_ERROR, STATUS_OK, RestorationMethod, RestoreResult
from celebref.testset import read_inputs
from celebref.app.cli import main
from celebref.app.restore import RestoreRunner
from celebref.imageio import encode_image, read_image, write_image
from celebref.journal import Journal

NO_RESULT = "no result"  # "method returned no result" / "no result was recorded": never for an image that exists


def _cuts(data: bytes) -> dict[str, int]:
    """Byte offsets inside/around the last line of ``data`` (which ends with a newline)."""
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    end = len(data)
    cuts = {"after_newline": start, "one_byte": start + 1, "mid_line": (start + end) // 2, "before_newline": end - 1}
    raw = data[start:end]
    i = next((k for k, b in enumerate(raw) if b >= 0x80), None)
    if i is not None:
        cuts["mid_utf8"] = start + i + 1  # after the first byte of a multi-byte character
    return cuts


# --- the journal itself ---------------------------------------------------------------------------------

def test_journal_append_read_and_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "j.jsonl"
    j = Journal(path)
    assert j.rows() == []
    rows = [{"id": "a", "v": 1.5}, {"id": "b", "v": float("inf")}]
    j.append(rows)
    assert path.read_bytes() == b'{"id": "a", "v": 1.5}\n{"id": "b", "v": Infinity}\n'  # sort_keys, one per line
    assert j.rows() == rows
    # a row written by another writer with raw UTF-8, then cut at every interesting offset
    full = path.read_bytes() + json.dumps({"id": "é€", "v": 2}, ensure_ascii=False).encode("utf-8") + b"\n"
    cuts = _cuts(full)
    assert set(cuts) == {"after_newline", "one_byte", "mid_line", "before_newline", "mid_utf8"}
    for name, cut in cuts.items():
        path.write_bytes(full[:cut])
        mtime = path.stat().st_mtime_ns
        assert Journal(path).rows() == rows, name  # the torn row is not a row ...
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == full[:cut]  # ... and reading changes nothing
        j2 = Journal(path)
        j2.append([{"id": "c", "v": 3}])
        assert j2.torn_bytes == cut - cuts["after_newline"], name  # exactly the torn bytes were dropped
        assert Journal(path).rows() == rows + [{"id": "c", "v": 3}], name  # never merged into one line
        assert path.read_bytes().endswith(b'}\n{"id": "c", "v": 3}\n')
    # a complete line that is not JSON (e.g. NULs after a power loss) does not hide the rows after it
    path.write_bytes(b'{"id": "a"}\n\x00\x00\x00\n[1]\n{"id": "b"}\n')
    j3 = Journal(path)
    assert j3.rows() == [{"id": "a"}, {"id": "b"}] and j3.skipped == 2


def test_journal_without_any_newline_is_emptied_before_append(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"id": "a", "v"')
    j = Journal(path)
    assert j.rows() == [] and j.torn_bytes == len(b'{"id": "a", "v"')
    j.append([{"id": "a", "v": 1}])
    assert path.read_bytes() == b'{"id": "a", "v": 1}\n'


# --- the restore runner's journal ---------------------------------------------------------------------------

class Invert(RestorationMethod):
    """255 - x: a real (trivial) method whose output is known exactly."""

    name = "invert"
    calls = 0

    def _restore(self, items):
        type(self).calls += len(items)
        return [RestoreResult(it.id, 255 - it.image) for it in items]


def test_restore_journal_cut_at_several_offsets_resumes_to_the_right_rows(tmp_path: Path) -> None:
    root = tmp_path / "lq"
    rng = np.random.default_rng(0)
    for i in range(4):
        write_image(root / f"im{i}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    data = encode_image(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    (root / "zz_broken.png").write_bytes(data[: len(data) // 2])
    records = read_inputs(root)
    out = tmp_path / "out"
    runner = RestoreRunner(out, batch_size=2)
    run = runner.prepare(Invert(device="cpu"))
    first = {r["id"]: r for r in runner.run_method(run, records)}
    assert first["zz_broken"]["status"] == STATUS_ERROR and all(first[f"im{i}"]["status"] == STATUS_OK for i in range(4))
    journal = run.folder / ".status.jsonl"
    # make the last row carry raw UTF-8 (a valid row, as another writer could have written it) so a cut can
    # fall inside a multi-byte character
    lines = journal.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    last["note"] = "é€"
    full = b"".join(lines[:-1]) + json.dumps(last, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
    cuts = _cuts(full)
    assert "mid_utf8" in cuts
    for name, cut in cuts.items():
        journal.write_bytes(full[:cut])
        Invert.calls = 0
        r2 = RestoreRunner(out, batch_size=2)
        rows = {r["id"]: r for r in r2.run_method(r2.prepare(Invert(device="cpu")), records)}
        assert set(rows) == {r.id for r in records}, name
        for rid, row in first.items():
            assert (rows[rid]["status"], rows[rid]["output_path"]) == (row["status"], row["output_path"]), (name, rid)
            assert NO_RESULT not in rows[rid]["reason"], (name, rid)
        assert "truncated" in rows["zz_broken"]["reason"]
        for i in range(4):
            np.testing.assert_array_equal(read_image(out / rows[f"im{i}"]["output_path"]), 255 - read_image(root / f"im{i}.png"))
        j = Journal(journal)
        committed = j.rows()
        assert j.skipped == 0 and j.torn_bytes == 0, name  # every line is one row: nothing was merged
        assert not any(NO_RESULT in r["reason"] for r in committed), name
        assert Invert.calls <= 1, name  # only the torn row's image (if it was an image) was redone
        # and a further rerun does nothing at all
        Invert.calls = 0
        r3 = RestoreRunner(out, batch_size=2)
        r3.run_method(r3.prepare(Invert(device="cpu")), records)
        assert Invert.calls == 0, name


# --- evaluate's metric cache journal ----------------------------------------------------------------------------

def test_metric_journal_cut_at_several_offsets_resumes_to_the_right_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for i in range(3):
        gt = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        write_image(tmp_path / "gt" / f"{i}.png", gt)
        write_image(tmp_path / "lq" / f"{i}.png", (gt // 2 + 40).astype(np.uint8))
    run = tmp_path / "run"
    argv = ["evaluate", "--lq", str(tmp_path / "lq"), "--gt", str(tmp_path / "gt"), "--methods", "lq",
            "--metrics", "psnr", "--device", "cpu", "--out", str(run)]
    assert main(argv) == 0
    per = pd.read_parquet(run / "per_image.parquet")
    assert per["psnr"].notna().all() and len(per) == 3
    (jpath,) = (run / "cache" / "metrics").glob("*.jsonl")
    lines = jpath.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3
    last = json.loads(lines[-1])
    last["note"] = "é"
    full = b"".join(lines[:-1]) + json.dumps(last, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
    for name, cut in _cuts(full).items():
        jpath.write_bytes(full[:cut])
        assert main(argv) == 0, name
        pd.testing.assert_frame_equal(pd.read_parquet(run / "per_image.parquet"), per)
        j = Journal(jpath)
        rows = j.rows()
        assert j.skipped == 0 and j.torn_bytes == 0, name
        assert sorted(r["id"] for r in rows) == ["0", "1", "2"], name  # the redone value is a row of its own
        by_id = {r["id"]: r["values"]["psnr"] for r in rows}
        for rid, v in per.set_index("id")["psnr"].items():
            assert by_id[rid] == pytest.approx(v, abs=0), (name, rid)
