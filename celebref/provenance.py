"""What produced an output: library versions, the command line, timestamps (recorded in every *.json)."""

from __future__ import annotations

import datetime as _dt
import platform
import shlex
import sys
from importlib import metadata

_PACKAGES = ("celebref", "torch", "numpy", "opencv-python-headless", "pillow", "pandas", "scikit-image",
             "dlib-bin", "onnxruntime", "insightface", "pyiqa")


def versions() -> dict[str, str]:
    """Installed versions of the libraries whose behaviour can change our numbers."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def command_line(argv: list[str] | None = None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return "celebref " + " ".join(shlex.quote(a) for a in args)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
