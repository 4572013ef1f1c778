"""DMDNet's list files, read as the official ``main_test.py`` reads them, but never silently.

* ``GenericLists.txt``: one LQ image path per line.
* ``SpecificLists.txt``: ``LQ<TAB>RefDir<TAB>RefLandmarkDir`` per line (references: the images of ``RefDir``
  whose landmark file ``RefLandmarkDir/<image name>.txt`` exists).
* csxmli2016/ASFFNet512's ``TestLists.txt`` has the same line format (``LQ<TAB>HQReferences/<id><TAB>
  HQReferences_Landmarks/<id>``, landmark files ``<image name>.txt`` of ``x y`` lines, e.g. ``o1.png.txt``) and is read
  by the same rules, so it works as shipped from the ASFFNet root (``main_test.py`` strips each line and splits on
  tabs exactly like this).

Reading rules:

* UTF-8 (a leading byte-order mark is ignored); a line that is not UTF-8 is an error naming the line.
* Each line is stripped of surrounding white space (tabs, spaces, CR) like the official script, then split on
  tabs; blank lines and ``#`` comments are ignored.
* ``list_format``: ``generic`` (1 field per line; a 3-field line contributes its LQ path only, its references
  counted as ignored), ``specific`` (3 fields on every line) or ``auto`` (every line must agree: mixed files,
  lines with another field count, and a tab-less line with three space-separated fields that does not name an
  existing file are refused with their line number).
* Relative paths are resolved against the **current directory first** (the official script is run from the
  DMDNet root, and its lists hold ``./TestExamples/...``), then against the list's folder; how each path was
  resolved is counted in :attr:`ParsedList.resolution` (recorded in run files), and a path found in neither
  place gets a reason naming both candidates. ``relative_to="list"`` uses the list's folder only (files
  written by ``celebref degrade``).
"""

from __future__ import annotations

import codecs
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..imageio import IMAGE_EXTENSIONS, is_image_name
from .records import NOT_A_TEST_SET, absolute

LIST_FORMATS = ("auto", "generic", "specific")
RELATIVE_RULES = ("cwd-then-list", "list")
SPECIFIC_LINE = "LQ<TAB>RefDir<TAB>RefLandmarkDir"


@dataclass(frozen=True)
class ListEntry:
    line: int
    lq: Path
    ref_dir: Path | None = None
    ref_landmark_dir: Path | None = None
    reason: str = ""  # "" or why the LQ file cannot be used (names every path tried)


@dataclass
class ParsedList:
    path: Path
    format: str  # generic | specific
    entries: list[ListEntry]
    resolution: dict[str, int] = field(default_factory=dict)  # rule -> number of paths resolved by it
    references_ignored: int = 0

    def describe(self) -> dict:
        rule = "current directory first, then the list's folder" if "cwd" in self.resolution or \
            "list_folder" in self.resolution or "not_found" in self.resolution else "absolute paths only"
        return {"list": str(self.path), "list_format": self.format, "relative_paths": rule,
                "paths_resolved": dict(sorted(self.resolution.items())), "references_ignored": self.references_ignored}


def read_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of the non-blank, non-comment lines of a UTF-8 text file."""
    data = Path(path).read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if b"\0" in data:
        raise ConfigError(f"{NOT_A_TEST_SET}; {str(path)!r} holds binary data, not lines of text")
    out = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}:{n}: line {n} is not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                              "list files must be UTF-8") from None
        text = text.strip()
        if text and not text.startswith("#"):
            out.append((n, text))
    return out


def _resolve(rel: str, list_dir: Path, cwd: Path, want_dir: bool, relative_to: str) -> tuple[Path, str, str]:
    """(path, rule, reason): rule is absolute | cwd | list_folder | not_found."""
    q = Path(rel)
    exists = os.path.isdir if want_dir else os.path.isfile
    kind = "folder" if want_dir else "file"
    if q.is_absolute():
        p = absolute(q)
        return p, "absolute", "" if exists(p) else f"{kind} not found: {p}"
    from_list = absolute(list_dir / q)
    if relative_to == "cwd-then-list":
        from_cwd = absolute(cwd / q)
        if exists(from_cwd):
            return from_cwd, "cwd", ""
        if exists(from_list):
            return from_list, "list_folder", ""
        tried = str(from_list) if from_cwd == from_list else \
            f"{from_cwd} (from the current directory) or {from_list} (from the list's folder)"
        return from_list, "not_found", f"{kind} not found: tried {tried}"
    return from_list, ("list_folder" if exists(from_list) else "not_found"), \
        "" if exists(from_list) else f"{kind} not found: {from_list}"


def _fields(path: Path, n: int, text: str) -> list[str]:
    parts = [p.strip() for p in text.split("\t")]
    if len(parts) not in (1, 3):
        raise ConfigError(f"{path}:{n}: line {n} has {len(parts)} tab-separated fields; a GenericLists line holds 1 "
                          f"(the LQ path), a SpecificLists line 3 ({SPECIFIC_LINE})")
    if any(not p for p in parts):
        raise ConfigError(f"{path}:{n}: line {n} has an empty field ({SPECIFIC_LINE} expected)")
    return parts


def parse_list(path: str | os.PathLike, list_format: str = "auto", relative_to: str = "cwd-then-list",
               cwd: str | os.PathLike | None = None) -> ParsedList:
    """Read a DMDNet list file (rules in the module docstring). Raises ConfigError naming the line for a file that
    is not UTF-8, not a list of image paths, or ambiguous."""
    if list_format not in LIST_FORMATS:
        raise ConfigError(f"list_format must be one of {', '.join(LIST_FORMATS)}, got {list_format!r}")
    if relative_to not in RELATIVE_RULES:
        raise ConfigError(f"relative_to must be one of {', '.join(RELATIVE_RULES)}, got {relative_to!r}")
    path = absolute(path)
    list_dir, here = path.parent, absolute(cwd if cwd is not None else os.getcwd())
    lines = read_lines(path)
    if not lines:
        raise ConfigError(f"{NOT_A_TEST_SET}; the list file {str(path)!r} has no entries")
    rows = [(n, text, _fields(path, n, text)) for n, text in lines]
    if not any(is_image_name(f[0]) or is_image_name(text.split()[0]) for _, text, f in rows):
        n, text, _ = rows[0]
        raise ConfigError(f"{NOT_A_TEST_SET}; {str(path)!r} is a text file whose lines are not image paths "
                          f"(line {n}: {text[:80]!r})")
    if list_format != "generic":
        for n, text, f in rows:  # "a b c" without tabs: a SpecificLists line written with spaces?
            if len(f) == 1 and len(text.split()) == 3 and _resolve(text, list_dir, here, False, relative_to)[1] == "not_found":
                raise ConfigError(f"{path}:{n}: line {n} has no tab but three space-separated fields and names no existing "
                                  f"file: SpecificLists lines are {SPECIFIC_LINE} with tabs (or give list_format 'generic' "
                                  "if the path contains spaces)")
    for n, _, f in rows:
        if not is_image_name(f[0]):
            raise ConfigError(f"{path}:{n}: {f[0]!r} is not an image path (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    three = [n for n, _, f in rows if len(f) == 3]
    one = [n for n, _, f in rows if len(f) == 1]
    if list_format == "specific" and one:
        raise ConfigError(f"{path}:{one[0]}: line {one[0]} has 1 field but list_format is 'specific' ({SPECIFIC_LINE}, tab-separated)")
    if list_format == "auto" and three and one:
        raise ConfigError(f"{path}: mixed list: line {three[0]} has 3 fields ({SPECIFIC_LINE}) but line {one[0]} has 1; "
                          "fix the file, or name the format (list_format 'generic' uses only the LQ paths)")
    fmt = "specific" if (list_format == "specific" or (list_format == "auto" and three)) else "generic"
    counts: Counter[str] = Counter()
    entries = []
    ignored = 0
    for n, _, f in rows:
        lq, rule, reason = _resolve(f[0], list_dir, here, False, relative_to)
        counts[rule] += 1
        ref = lms = None
        if len(f) == 3 and fmt == "specific":
            (ref, r1, _), (lms, r2, _) = (_resolve(x, list_dir, here, True, relative_to) for x in f[1:])
            counts[r1] += 1
            counts[r2] += 1
        elif len(f) == 3:
            ignored += 1
        entries.append(ListEntry(n, lq, ref, lms, reason))
    return ParsedList(path, fmt, entries, dict(counts), ignored)
