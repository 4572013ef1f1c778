"""What produced an output: library versions, the command line, timestamps.

:func:`versions` is the one package-versions record, written into every run/output record
(``build.json``, ``verify.json``, ``degrade.json``, ``restore.json``, ``run.json``): the same set of
packages everywhere, keyed by distribution name, plus ``python``. Packages that are not installed are
left out (so the record of one machine is stable from run to run; no timestamps in it).
"""

from __future__ import annotations

import datetime as _dt
import platform
import shlex
import sys
from importlib import metadata

#: distributions whose behaviour can change our numbers or files (alternatives that provide the same
#: import, e.g. ``opencv-python`` / ``opencv-python-headless``, are all listed; whichever is installed is
#: recorded)
PACKAGES = ("celebref", "torch", "numpy", "scipy", "opencv-python-headless", "opencv-python", "pillow",
            "pandas", "pyarrow", "scikit-image", "dlib-bin", "dlib", "onnxruntime", "onnxruntime-gpu",
            "insightface", "pyiqa")


def versions() -> dict[str, str]:
    """``{"python": "3.x.y", <distribution>: <version>, ...}`` for every installed one of :data:`PACKAGES`."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def command_line(argv: list[str] | None = None) -> str:
    """The command as the user could retype it (``celebref`` + shell-quoted arguments)."""
    args = sys.argv[1:] if argv is None else argv
    return "celebref " + " ".join(shlex.quote(a) for a in args)


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
