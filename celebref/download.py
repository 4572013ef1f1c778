"""HTTP(S) downloads that resume, show progress, land atomically and are checked against sha256,
plus safe zip extraction.

* :func:`download` writes to ``<dest>.part`` next to the destination. An existing ``.part`` is resumed
  with an HTTP ``Range`` request (a server that ignores it makes us start over). The finished file is
  checked (size when known, sha256 when known) and only then renamed onto ``dest`` (``os.replace``),
  so ``dest`` is either absent or complete. A checksum mismatch deletes the downloaded bytes and raises
  :class:`ChecksumError`; network failures raise :class:`DownloadError` (the ``.part`` is kept so a
  rerun resumes). Nothing here retries forever: every socket operation has a timeout.
* :func:`safe_extract_zip` refuses entries with absolute paths, drive letters, ``..`` components,
  symbolic links or special files, and archives whose declared total size is over a limit; it checks
  every entry before writing anything and extracts into a temporary folder that is renamed into place.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .errors import WeightError
from .fsutil import sha256_file
from .progress import progress

CHUNK = 1 << 20  # 1 MiB: one progress-bar step
DEFAULT_TIMEOUT = 30.0  # seconds per socket operation (connect, each read)
MAX_UNZIPPED_BYTES = 8 << 30  # zip-bomb guard for safe_extract_zip


class DownloadError(WeightError):
    """The network request failed (unreachable host, HTTP error, timeout, short read)."""


class ChecksumError(WeightError):
    """The downloaded bytes do not match the declared sha256 or size (the file was deleted)."""


def part_path(dest: str | os.PathLike) -> Path:
    """Where :func:`download` keeps the partial file for ``dest``."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def _open(url: str, start: int, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": "celebref-weights/1"})
    if start > 0:
        req.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - http(s) only, checked by caller


def _range_start(resp) -> int | None:
    """First byte of a 206 response (``Content-Range: bytes a-b/n``), None if absent/unparsable."""
    value = resp.headers.get("Content-Range", "")
    try:
        unit, rest = value.split(" ", 1)
        return int(rest.split("-", 1)[0]) if unit.strip() == "bytes" else None
    except ValueError:
        return None


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    desc: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify it, and move it into place.

    ``sha256`` (lowercase hex) and ``size`` (bytes) are checked when given. Returns ``dest``.
    Raises :class:`DownloadError` for network problems (partial data kept for resuming) and
    :class:`ChecksumError` when the finished bytes are wrong (partial data deleted).
    """
    if not url.lower().startswith(("http://", "https://")):
        raise DownloadError(f"refusing to download {url!r}: only http(s) URLs are supported")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        if dest.is_file() and (size is None or dest.stat().st_size == size) and sha256 \
                and sha256_file(dest) == sha256.lower():
            return dest  # another process finished it while we waited for the lock
        return _download_locked(url, dest, sha256, size, timeout, desc)


@contextlib.contextmanager
def _locked(dest: Path):
    """Exclusive advisory lock on ``.<dest name>.lock`` (POSIX flock; released when the process dies)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, the checksum still catches a mangled file
        yield
        return
    with open(dest.with_name(f".{dest.name}.lock"), "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _download_locked(url: str, dest: Path, sha256: str | None, size: int | None, timeout: float,
                     desc: str | None) -> Path:
    part = part_path(dest)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # cannot be a prefix of the right file
        part.unlink()
        have = 0
    if not (size is not None and have == size):
        _fetch_into(url, part, have, timeout, desc or dest.name)
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise ChecksumError(
            f"download of {url} has {got} bytes, expected {size}; the partial file was deleted, rerun to retry"
        )
    if sha256:
        actual = sha256_file(part)
        if actual != sha256.lower():
            part.unlink()
            raise ChecksumError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}; "
                f"the downloaded file was deleted (not kept at {dest})"
            )
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, dest)
    return dest


def _fetch_into(url: str, part: Path, have: int, timeout: float, desc: str) -> None:
    try:
        resp = _open(url, have, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have > 0:  # our partial file is already complete (or junk): verify decides
            return
        raise DownloadError(f"HTTP {e.code} {e.reason} for {url}") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot reach {url}: {reason}") from None
    with resp:
        status = getattr(resp, "status", 200)
        if have > 0 and status == 206 and _range_start(resp) == have:
            mode = "ab"
        else:  # no resume support (200) or an unexpected range: start over
            mode, have = "wb", 0
        length = resp.headers.get("Content-Length")
        total = math.ceil(int(length) / CHUNK) if length and length.isdigit() else None

        def chunks():
            while True:
                block = resp.read(CHUNK)
                if not block:
                    return
                yield block

        written = 0
        try:
            with open(part, mode) as f:
                for block in progress(chunks(), desc=desc, total=total, unit="MiB"):
                    f.write(block)
                    written += len(block)
        except (socket.timeout, TimeoutError, ConnectionError, OSError, urllib.error.URLError) as e:
            raise DownloadError(
                f"download of {url} interrupted after {have + written} bytes ({e}); rerun to resume"
            ) from None
        if length and length.isdigit() and written != int(length):
            raise DownloadError(
                f"download of {url} ended early ({written} of {length} bytes); rerun to resume"
            )


# --- zip extraction ----------------------------------------------------------------------------

def _check_member(info: zipfile.ZipInfo, archive: str) -> PurePosixPath | None:
    """Validated relative path of a zip entry; None for directory entries. Raises WeightError."""
    name = info.filename
    bad = f"refusing to extract {archive!r}: entry {name!r}"
    if "\x00" in name:
        raise WeightError(f"{bad} contains a NUL byte")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise WeightError(f"{bad} is an absolute path")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise WeightError(f"{bad} escapes the destination ('..')")
    mode = (info.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        raise WeightError(f"{bad} is a symbolic link")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # type bits set: device, fifo...
        raise WeightError(f"{bad} is not a regular file")
    if info.is_dir() or not parts:
        return None
    return PurePosixPath(*parts)


def safe_extract_zip(
    archive: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    strip_single_top_dir: bool = True,
    max_bytes: int = MAX_UNZIPPED_BYTES,
) -> list[str]:
    """Extract ``archive`` into ``dest_dir`` safely and atomically; return the extracted relative paths.

    When every entry lies under one top-level folder (``pack/a.onnx``, ``pack/b.onnx``) and
    ``strip_single_top_dir`` is true, that folder level is removed. ``dest_dir`` is replaced as a whole
    (extraction goes to a temporary sibling that is renamed into place).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise WeightError(f"cannot open zip archive {str(archive)!r}: {e}") from None
    with zf:
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        total = 0
        for info in zf.infolist():
            rel = _check_member(info, str(archive))
            if rel is None:
                continue
            total += info.file_size
            plan.append((info, rel))
        if total > max_bytes:
            raise WeightError(f"refusing to extract {str(archive)!r}: {total} bytes unpacked exceeds {max_bytes}")
        if strip_single_top_dir and plan:
            tops = {rel.parts[0] for _, rel in plan}
            if len(tops) == 1 and all(len(rel.parts) > 1 for _, rel in plan):
                plan = [(info, PurePosixPath(*rel.parts[1:])) for info, rel in plan]
        names = [str(rel) for _, rel in plan]
        if len(set(names)) != len(names):
            raise WeightError(f"refusing to extract {str(archive)!r}: duplicate entry names")
        dest_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".tmp", dir=dest_dir.parent))
        try:
            root = tmp.resolve()
            for info, rel in plan:
                target = (tmp / rel).resolve()
                if root not in target.parents:  # belt and braces after _check_member
                    raise WeightError(f"refusing to extract {str(archive)!r}: entry {info.filename!r} escapes")
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(info) as src, open(target, "wb") as out:
                    while block := src.read(CHUNK):
                        written += len(block)
                        if written > info.file_size:
                            raise WeightError(f"zip entry {info.filename!r} is larger than declared")
                        out.write(block)
            if dest_dir.exists():
                old = dest_dir.with_name(f".{dest_dir.name}.old")
                with contextlib.suppress(FileNotFoundError):
                    shutil.rmtree(old)
                os.replace(dest_dir, old)
                os.replace(tmp, dest_dir)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, dest_dir)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise WeightError(f"corrupt zip archive {str(archive)!r}: {e}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return sorted(names)
