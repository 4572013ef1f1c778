"""Progress bars for long work (tqdm on stderr; silent when not a terminal unless forced)."""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, unit: str = "img") -> Iterable[T]:
    """Wrap ``iterable`` in a progress bar. ``CELEBREF_PROGRESS=0`` disables it, ``=1`` forces it."""
    flag = os.environ.get("CELEBREF_PROGRESS")
    disable = (flag == "0") or (flag != "1" and not sys.stderr.isatty())
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, dynamic_ncols=True, file=sys.stderr)
