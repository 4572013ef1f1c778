"""``external:LABEL=<folder>``: results produced elsewhere (any method run with its own code), paired
with the test set by image id.

The result for id ``ID`` (ids may contain ``/``, e.g. ``00005/3``) is ``<folder>/ID.png`` (or ``.jpg``,
``.jpeg``, ``.webp``; the extension is matched case-insensitively). Files are read with
:func:`celebref.imageio.read_image` (RGB uint8) and must have the input's size. :meth:`ExternalMethod.check_ids`
refuses a folder whose ids differ from the test set's, listing the missing and the extra ids; per image,
an absent file gets status ``missing``, an unreadable or wrongly sized one ``error``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Iterable

import numpy as np

from baselines.base import STATUS_ERROR, STATUS_MISSING, RestorationMethod, RestoreItem, RestoreResult
from celebref.errors import ConfigError, ImageReadError
from celebref.imageio import decode_image

RESULT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
_SHOWN = 20  # ids listed per category in error messages


def _listing(title: str, ids: list[str]) -> str:
    shown = ", ".join(ids[:_SHOWN]) + (f", ... ({len(ids) - _SHOWN} more)" if len(ids) > _SHOWN else "")
    return f"{len(ids)} {title}: {shown}"


class ExternalMethod(RestorationMethod):
    name: ClassVar[str] = "external"
    description: ClassVar[str] = "results produced elsewhere, read from a folder and paired by image id"
    input_size: ClassVar[int | None] = None

    def __init__(self, label: str, folder: str | Path, device: str = "cpu", precision: str = "fp32",
                 landmark_policy: str = "skip", **params: Any):
        super().__init__(device=device, precision=precision, landmark_policy=landmark_policy, **params)
        label = str(label).strip()
        if not label or any(c in label for c in "/\\:") or label.startswith("."):
            raise ConfigError(f"external method label {label!r} must be a non-empty name without '/', '\\', ':' or a leading '.'")
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise ConfigError(f"external:{label}: results folder {str(self.folder)!r} does not exist or is not a folder")
        self._label = label
        self.params = {"folder": str(self.folder.resolve())}
        self._index: dict[str, Path] | None = None
        self._ambiguous: dict[str, list[Path]] = {}

    @property
    def label(self) -> str:  # the user's name for these results, e.g. "gfpgan-official"
        return self._label

    # -- index -----------------------------------------------------------------------------------
    def _scan(self) -> dict[str, Path]:
        found: dict[str, list[Path]] = {}
        for p in sorted(self.folder.rglob("*")):
            if p.is_file() and p.suffix.lower() in RESULT_EXTENSIONS:
                rel = p.relative_to(self.folder)
                found.setdefault(rel.with_suffix("").as_posix(), []).append(p)
        self._ambiguous = {k: v for k, v in found.items() if len(v) > 1}
        return {k: v[0] for k, v in found.items() if len(v) == 1}

    def load(self) -> None:
        self._index = self._scan()
        self.loaded = True

    def available_ids(self) -> set[str]:
        """Ids that have exactly one result file."""
        if self._index is None:
            self.load()
        assert self._index is not None
        return set(self._index)

    def check_ids(self, ids: Iterable[str]) -> None:
        """Raise :class:`ConfigError` unless the folder holds exactly one result per id of ``ids`` and nothing else."""
        wanted = {str(i) for i in ids}
        have = self.available_ids()
        missing = sorted(wanted - have - set(self._ambiguous))
        extra = sorted((have | set(self._ambiguous)) - wanted)
        ambiguous = sorted(set(self._ambiguous) & wanted)
        if missing or extra or ambiguous:
            parts = []
            if missing:
                parts.append(_listing("missing ids (no <id>.png/.jpg/.jpeg/.webp)", missing))
            if extra:
                parts.append(_listing("extra ids (files for ids not in the test set)", extra))
            if ambiguous:
                parts.append(_listing("ambiguous ids (several files with different extensions)", ambiguous))
            raise ConfigError(f"external:{self.label}: results in {str(self.folder)!r} do not match the test set ({len(wanted)} ids): " + "; ".join(parts))

    # -- running ---------------------------------------------------------------------------------
    def _one(self, it: RestoreItem) -> RestoreResult:
        assert self._index is not None
        rel = PurePosixPath(it.id)
        if rel.is_absolute() or ".." in rel.parts or "\\" in it.id:
            return RestoreResult(it.id, None, STATUS_ERROR, f"image id {it.id!r} is not a safe relative path")
        if it.id in self._ambiguous:
            names = ", ".join(p.name for p in self._ambiguous[it.id])
            return RestoreResult(it.id, None, STATUS_ERROR, f"several result files for this id: {names}")
        path = self._index.get(it.id)
        if path is None:
            return RestoreResult(it.id, None, STATUS_MISSING, self._missing_reason(it.id))
        try:
            data = path.read_bytes()  # read once: decoded here, and written as is when it is a PNG
            img = decode_image(data, str(path))
        except OSError as e:
            return RestoreResult(it.id, None, STATUS_ERROR, f"{path}: cannot open file ({e.strerror or e})")
        except ImageReadError as e:
            return RestoreResult(it.id, None, STATUS_ERROR, str(e))  # names the file
        want = np.asarray(it.image).shape[:2]
        if img.shape[:2] != want:
            return RestoreResult(it.id, None, STATUS_ERROR, f"{path.name} is {img.shape[1]}x{img.shape[0]}, the input is {want[1]}x{want[0]}")
        return RestoreResult(it.id, img, encoded=data if path.suffix.lower() == ".png" else None)

    def _missing_reason(self, item_id: str) -> str:
        """Why there is no result for ``item_id``: the path tried, and the ids the folder does hold (a wrong layout,
        e.g. results one folder deeper or named differently, shows up here)."""
        tried = f"no result file {self.folder / item_id}.png (or .jpg/.jpeg/.webp)"
        others = sorted(self._index or {})
        if not others:
            return f"{tried}: the folder holds no result images"
        return f"{tried}; the folder holds {len(others)} result(s) for other ids, e.g. {others[0]!r} (expected <folder>/<id>.png)"

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        if self._index is None:
            self.load()
        return [self._one(it) for it in items]
