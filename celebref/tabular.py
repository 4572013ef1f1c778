"""Tables on disk: the one writer and reader of the toolkit's tables.

Every table is written as Parquet (typed, the primary copy) and, unless asked otherwise, as CSV
(UTF-8, ``\\n`` line ends, no index column), each file atomically (:mod:`celebref.fsutil`), so an
interrupted run never leaves half a table. The same frame always gives the same bytes.

API (stable; used by build/verify, degrade, restore and evaluate):

* ``write_table(df, stem, csv=True)`` writes ``<stem>.parquet`` and ``<stem>.csv``; ``stem`` is the
  path without suffix (``out / "manifest"``); parent folders are created.
* ``read_table(path)`` reads a ``.parquet`` or ``.csv`` written by it (id-like columns as strings).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from .fsutil import atomic_write_bytes, atomic_write_text

#: columns read as strings from CSV (ids such as ``0001`` must keep their leading zeros)
STRING_COLUMNS = ("id", "identity", "identity_id")


def write_table(df: pd.DataFrame, stem: str | os.PathLike, csv: bool = True) -> None:
    """Write ``df`` to ``<stem>.parquet`` and (if ``csv``) ``<stem>.csv``, atomically.

    ``stem`` is the output path without suffix; a suffix already present is replaced. The index is
    not written; CSV uses ``\\n`` line ends and UTF-8.
    """
    stem = Path(stem)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(stem.with_suffix(".parquet"), buf.getvalue())
    if csv:
        atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False, lineterminator="\n"))


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``.parquet`` or ``.csv`` table written by :func:`write_table` (ids kept as strings)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={c: str for c in STRING_COLUMNS})
