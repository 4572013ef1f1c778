"""What the weight store tells the user: where to get a missing file, one message for everything missing,
and why a file on disk is not a usable checkpoint. Messages name files, URLs, paths and API parameters;
the application layer adds the command-line wording (e.g. its ``--skip-unavailable`` flag)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightError
from .catalogue import WeightFile, get
from .locations import default_path, env_var, resolve


def instructions(name: str, reason: str = "") -> str:
    """A message telling the user exactly which file to put where (no network needed)."""
    w = get(name)
    path, source = resolve(name)
    dest = default_path(name)
    lines = [f"weight {name!r} is not available" + (f": {reason}" if reason else "") + "."]
    if w.kind == "package":
        lines.append(f"  It ships with the Python package {w.package!r}: pip install 'celebref[dlib]' "
                     f"(expected file {w.filename} at {dest}).")
        return "\n".join(lines)
    if source != "cache":
        lines.append(f"  Override from {source} points at {path}, which does not exist.")
    what = f"the folder {w.filename}" if w.kind == "folder" else f"the file {w.filename}"
    if w.manual:
        lines.append(f"  Download {what} by hand from:")
        lines += [f"    {u}" for u in w.urls]
        if w.notes:
            lines.append(f"  ({w.notes})")
    else:
        lines.append(f"  Run `celebref weights fetch {name}` when online, or download {what} from:")
        lines += [f"    {u}" for u in w.urls]
    if w.kind == "zip":
        lines.append(f"  and unpack it so that {', '.join(w.members)} lie directly in:")
    elif w.kind == "folder":
        lines.append(f"  and put its files ({', '.join(w.members[:3])}, ...; {len(w.members)} in all) in:")
    else:
        lines.append("  and put it at:")
    lines.append(f"    {dest}")
    if w.sha256:
        lines.append(f"  expected sha256 {w.sha256}" + (f", {w.size} bytes" if w.size else "")
                     + (" (of the archive)" if w.kind == "zip" else ""))
    elif w.sha256_prefix:
        lines.append(f"  expected sha256 starting with {w.sha256_prefix} (the full hash is not published)")
    lines.append(f"  Or point to an existing copy: export {env_var(name)}=/path/to/"
                 f"{w.filename if w.kind == 'file' else 'folder'}  (or `celebref weights path {name} --set PATH`).")
    if w.noncommercial:
        lines.append(f"  Licence: {w.licence} (NON-COMMERCIAL).")
    return "\n".join(lines)


@dataclass(frozen=True)
class MissingWeight:
    """A weight that a requested method/metric needs and that is not usable: ``name`` (store name),
    ``users`` (e.g. ``("method dmdnet", "method dmdnet-specific")``), ``state`` (``missing`` or ``bad hash``),
    ``detail`` (why) and ``instructions`` (where to get it)."""

    name: str
    users: tuple[str, ...]
    state: str
    detail: str
    instructions: str


class WeightsUnavailableError(WeightError):
    """Several requested weights are missing: one message lists every file, who needs it and where to get
    it. :attr:`missing` holds the :class:`MissingWeight` records, :attr:`users` every method/metric that
    cannot run."""

    def __init__(self, missing: list[MissingWeight], hint: str = ""):
        self.missing = list(missing)
        self.users = sorted({u for m in self.missing for u in m.users})
        self.hint = hint
        super().__init__(unavailable_message(self.missing, hint))


def unavailable_message(missing: list[MissingWeight], hint: str = "") -> str:
    n = len(missing)
    users = sorted({u for m in missing for u in m.users})
    lines = [f"{n} weight file{'s are' if n != 1 else ' is'} not available for {', '.join(users)}:"]
    for i, m in enumerate(missing, 1):
        lines.append(f"[{i}/{n}] {m.name} (needed by {', '.join(m.users)})")
        lines += ["  " + ln for ln in m.instructions.splitlines()]
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def invalid_checkpoint_message(path: Path, reason: str, entry: WeightFile | None, actual_sha256: str | None) -> str:
    """``<path> is not a valid checkpoint (truncated download?)`` with its size, sha256 and the expected ones."""
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    parts = [f"{str(path)!r} is not a valid checkpoint (truncated download?): {reason}.",
             f"  It has {size} bytes" + (f" (expected {entry.size})" if entry is not None and entry.size else "")
             + (f", sha256 {actual_sha256}" if actual_sha256 else "") + "."]
    if entry is not None:
        parts.append(f"  Expected sha256: {entry.sha256 or 'not published (compare with the upstream file)'}.")
        parts.append(f"  Delete it and get {entry.filename} again from: {entry.urls[0]}"
                     + ("" if entry.manual else f" (or `celebref weights fetch {entry.name}`)") + ".")
    return "\n".join(parts)
