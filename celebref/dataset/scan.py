"""Scan a crawl folder: ``<root>/<person folder>/**/<files>``, every entry accounted for, in a stable order.

Every file under the crawl ends up either as an input (:class:`ScanItem`, decided later) or as a skipped entry
(:class:`ScanSkip`) with one of these reasons (recorded in the manifest with decision ``skipped``):

* ``outside_person_folder``: a file directly in the crawl root (no person folder to assign it to);
* ``hidden``: a file whose name, or a folder above it, starts with ``.`` (hidden folders are listed, not read);
* ``not_an_image``: no image extension and the content is not an image either (text, JSON, archives, ...);
  a file *without* an image extension whose content is an image (e.g. a JPEG saved without extension) is an input;
* ``unsupported_format``: an image the build does not use (GIF: palette colours, often animated);
* ``not_a_regular_file``: a FIFO, socket or device (never opened: reading a FIFO would block);
* ``dangling_symlink``: a symbolic link whose target does not exist;
* ``symlink_loop``: a link that points to itself or to a folder above it (``ELOOP`` or an ancestor);
* ``symlink_outside_crawl``: **policy**: a link (to a file or a folder) whose target lies outside the crawl root
  is not followed, so a build never reads outside the folder it was given; the link is recorded instead.
  Links whose target is inside the crawl are followed (a linked file is an input under the link's path);
* ``unlistable_folder``: a folder that cannot be listed (permissions); one row for the folder itself.

Folders in ``exclude`` (the build's output and cache when they lie inside the crawl) are not listed at all.

File names: ``source_path`` is the POSIX path relative to the root. A name whose bytes are not valid UTF-8 is
recorded losslessly as text with each undecodable byte written ``\\xNN`` (Python's ``backslashreplace``) plus
``source_path_hex``, the hex of the path's raw bytes (empty for valid UTF-8 names); the file itself is read
through its real name.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..imageio import is_image_name

SKIP_REASONS = ("outside_person_folder", "hidden", "not_an_image", "unsupported_format", "not_a_regular_file",
                "dangling_symlink", "symlink_loop", "symlink_outside_crawl", "unlistable_folder")

# leading bytes of the formats the shared reader decodes, and of GIF (not used)
_SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"BM", "BMP"), (b"II*\x00", "TIFF"),
               (b"MM\x00*", "TIFF"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"))


def display_path(rel: str) -> tuple[str, str]:
    """``(text, hex)`` of a relative path as returned by the OS (``str`` with surrogate escapes): ``text`` is the
    path with undecodable bytes written ``\\xNN``; ``hex`` the raw bytes in hex when they are not valid UTF-8."""
    raw = os.fsencode(rel)
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), raw.hex()


@dataclass(frozen=True)
class ScanItem:
    """One input file. ``source_path``: POSIX path relative to the crawl root (the record's key, see the module
    docstring for undecodable names); ``abs_path``: the real path to read; ``identity_folder``: the first path
    component (the queried person's folder, free text)."""

    source_path: str
    abs_path: Path
    identity_folder: str
    size: int
    source_path_hex: str = ""


@dataclass(frozen=True)
class ScanSkip:
    """A file (or an unlisted folder/link) that is not an input, with its reason (see :data:`SKIP_REASONS`)."""

    source_path: str
    reason: str
    detail: str = ""
    identity_folder: str = ""
    source_path_hex: str = ""


@dataclass
class ScanResult:
    items: list[ScanItem] = field(default_factory=list)
    skipped: list[ScanSkip] = field(default_factory=list)


def _sniff(path: str) -> str | None:
    """The image format named by the file's first bytes, or ``None``; ``"?"`` when it cannot be opened."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return "?"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for sig, name in _SIGNATURES:
        if head.startswith(sig):
            return name
    return None


def _gif_detail(path: str) -> str:
    try:
        from PIL import Image

        with Image.open(path) as im:
            n = int(getattr(im, "n_frames", 1))
    except Exception:  # noqa: BLE001 - only for the message
        return "GIF image (palette colours): not used"
    return f"GIF image ({'animated, ' + str(n) + ' frames' if n > 1 else 'one frame'}; palette colours): not used"


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


class _Scanner:
    def __init__(self, root: Path, exclude: set[str]):
        self.root = str(root)
        self.real_root = os.path.realpath(root)
        self.exclude = exclude
        self.out = ScanResult()

    def skip(self, rel: str, reason: str, detail: str = "") -> None:
        text, hx = display_path(rel)
        folder = display_path(rel.split("/")[0])[0] if "/" in rel else ""
        self.out.skipped.append(ScanSkip(text, reason, detail, folder, hx))

    def file(self, rel: str, path: str, hidden: bool, size: int) -> None:
        name = rel.rsplit("/", 1)[-1]
        if hidden:
            self.skip(rel, "hidden")
            return
        if "/" not in rel:
            self.skip(rel, "outside_person_folder", "a file directly in the crawl root has no person folder")
            return
        fmt = _sniff(path)
        if fmt == "GIF":
            self.skip(rel, "unsupported_format", _gif_detail(path))
            return
        if fmt is None and not is_image_name(name):
            self.skip(rel, "not_an_image", "no image extension and the content is not a recognised image format")
            return
        text, hx = display_path(rel)
        self.out.items.append(ScanItem(text, Path(path), text.split("/")[0], size, hx))

    def walk(self, path: str, rel: str, ancestors: frozenset[str], hidden: bool) -> None:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError as e:
            self.skip(rel or ".", "unlistable_folder", f"cannot list folder ({e.strerror or e})")
            return
        for e in entries:
            r = f"{rel}/{e.name}" if rel else e.name
            h = hidden or e.name.startswith(".")
            try:
                is_link = e.is_symlink()
                if is_link:
                    self.link(e.path, r, ancestors, h)
                elif e.is_dir(follow_symlinks=False):
                    if os.path.realpath(e.path) in self.exclude:
                        continue
                    self.walk(e.path, r, ancestors | {os.path.realpath(e.path)}, h)
                elif e.is_file(follow_symlinks=False):
                    self.file(r, e.path, h, e.stat(follow_symlinks=False).st_size)
                else:
                    self.skip(r, "hidden" if h else "not_a_regular_file", "FIFO, socket or device: not opened")
            except OSError as exc:  # vanished or unreadable metadata: still accounted for
                self.skip(r, "not_a_regular_file", f"cannot stat ({exc.strerror or exc})")

    def link(self, path: str, rel: str, ancestors: frozenset[str], hidden: bool) -> None:
        target = os.path.realpath(path)
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.skip(rel, "symlink_loop", "the link resolves to itself")
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.skip(rel, "dangling_symlink", f"target {os.readlink(path)!r} does not exist")
            else:
                self.skip(rel, "not_a_regular_file", f"cannot stat the link's target ({exc.strerror or exc})")
            return
        if not _inside(target, self.real_root):
            self.skip(rel, "symlink_outside_crawl", "the link leaves the crawl folder: not followed")
            return
        if hidden:
            self.skip(rel, "hidden")
        elif stat.S_ISDIR(st.st_mode):
            if target in ancestors:
                self.skip(rel, "symlink_loop", "the link points to a folder above it")
            elif target not in self.exclude:
                self.walk(path, rel, ancestors | {target}, hidden)
        elif stat.S_ISREG(st.st_mode):
            self.file(rel, path, hidden, st.st_size)
        else:
            self.skip(rel, "not_a_regular_file", "the link points to a FIFO, socket or device: not opened")


def scan_crawl(root: str | os.PathLike, exclude: list[Path] | None = None) -> ScanResult:
    """Every file under ``root`` as an input or a skipped entry (see the module docstring), each list sorted by
    ``source_path`` (code-point order). ``exclude``: folders not to list (e.g. the output inside the crawl)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"crawl folder {str(root)!r} does not exist or is not a folder")
    sc = _Scanner(root, {os.path.realpath(p) for p in (exclude or [])})
    sc.walk(str(root), "", frozenset({sc.real_root}), False)
    sc.out.items.sort(key=lambda it: it.source_path)
    sc.out.skipped.sort(key=lambda s: s.source_path)
    return sc.out
