"""Tables on disk: every table is written as Parquet (typed) and CSV (UTF-8), atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from .fsutil import atomic_write, atomic_write_text


def write_table(df: pd.DataFrame, stem: str | os.PathLike, csv: bool = True) -> None:
    """Write ``<stem>.parquet`` and ``<stem>.csv`` (``stem`` without suffix)."""
    stem = Path(stem)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    with atomic_write(stem.with_suffix(".parquet"), "wb") as f:
        f.write(buf.getvalue())
    if csv:
        atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False, lineterminator="\n"))


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``.parquet`` or ``.csv`` table (ids kept as strings)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"id": str, "identity": str, "identity_id": str})
