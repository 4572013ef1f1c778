"""The one table writer (celebref.tabular): Parquet + CSV, atomic, stable bytes, ids kept as strings."""

from __future__ import annotations

import pandas as pd

from celebref.tabular import read_table, write_table


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"id": ["0001", "0002"], "psnr": [21.5, float("nan")], "name": ["a,b", "é"]})


def test_write_table_writes_parquet_and_csv(tmp_path):
    write_table(_frame(), tmp_path / "sub" / "status")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["status.csv", "status.parquet"]
    text = (tmp_path / "sub" / "status.csv").read_bytes().decode("utf-8")
    assert text == 'id,psnr,name\n0001,21.5,"a,b"\n0002,,é\n'
    back = read_table(tmp_path / "sub" / "status.parquet")
    pd.testing.assert_frame_equal(back, _frame())
    back_csv = read_table(tmp_path / "sub" / "status.csv")
    assert list(back_csv["id"]) == ["0001", "0002"]


def test_write_table_csv_false_and_same_bytes(tmp_path):
    write_table(_frame(), tmp_path / "a", csv=False)
    write_table(_frame(), str(tmp_path / "b"), csv=False)
    assert not (tmp_path / "a.csv").exists()
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]
