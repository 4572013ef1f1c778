"""Named real-world test sets (``celebref list datasets``, ``celebref data fetch|path|status NAME``): where each comes
from, its licence, size and sha256 where published, and where it lives locally.

These are the low-quality photos without ground truth that face-restoration papers report on (GFPGAN's
CelebChild-Test and WebPhoto-Test, LFW-Test, CodeFormer's WIDER-Test, DMDNet's RealLQs). None may be redistributed
with celebref; most are published only on Google Drive, so ``fetch`` can download just the ones with direct links
(DMDNet's RealLQs, file by file with their sha256 from the repository) and otherwise says exactly what to put where.

Locations: ``$CELEBREF_DATASET_<NAME>`` (the name upper-cased, non-alphanumerics as ``_``), else
``<CELEBREF_HOME>/datasets/<name>/`` (the weight store's root, :func:`celebref.weights.home`). A set is *present*
when that folder holds at least one image; files with a published sha256 are checked. Downloads use
:mod:`celebref.download` (resumable, checksummed, atomic; zip archives extracted safely). :data:`DATASETS` is a
:class:`~celebref.registry.Registry` (entry-point group ``celebref.datasets``: the target is a
:class:`DatasetSource`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .errors import ConfigError, WeightError
from .fsutil import atomic_write_json, sha256_file
from .imageio import IMAGE_EXTENSIONS
from .registry import Registry
from .weights.locations import home, is_offline

__all__ = ["DATASETS", "DatasetSource", "DatasetStatus", "dataset_path", "env_var", "fetch", "instructions", "status"]

KINDS = ("manual", "files", "zip")


@dataclass(frozen=True)
class DatasetSource:
    """One named test set. ``kind``: ``manual`` (only web pages, e.g. Google Drive: ``urls`` are those pages),
    ``files`` (``files`` maps a relative path to ``(url, sha256)``; downloaded one by one), ``zip`` (``urls`` are
    mirrors of one archive with ``sha256``/``size``, extracted into the folder). ``n_images``: as published."""

    name: str
    title: str
    description: str
    licence: str
    kind: str = "manual"
    urls: tuple[str, ...] = ()
    files: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    sha256: str | None = None
    size: int | None = None
    n_images: int | None = None
    noncommercial: bool = True
    homepage: str = ""
    paper: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"dataset {self.name}: kind must be one of {KINDS}")
        if self.kind == "files" and not self.files:
            raise ValueError(f"dataset {self.name}: kind 'files' needs files")


DATASETS = Registry("dataset", group="celebref.datasets")

_VQFR_TEST = "https://drive.google.com/drive/folders/1CPdaCijkhl8ojg9ZDCPXntQrnw-8tUeD?usp=sharing"
_DMDNET_COMMIT = "37f2e0e54dff0cbc013b24c96574abe4dab9bfbc"
_DMDNET_RAW = f"https://raw.githubusercontent.com/csxmli2016/DMDNet/{_DMDNET_COMMIT}/TestExamples/TestGenericRestoration/RealLQs/"
_REALLQ_SHA256 = {
    "0001.png": "0a3e84cad8ee1be6a6fe7e416453ecdf978d632bb49dda8e439754786f1e7f9c",
    "0002.png": "21a1c2de29b0ddb53d0074322d996a8916589fb19472d0515a25270c7d33faaa",
    "0003.png": "c302763736e78d94e594c7ecb3a4846e509c25c70c8b95621153af1d9fa7c44d",
    "0004.png": "4a7a98fc405923d5f6843bd50991aca83da151c1630fcb1e9d04c7dd153517b4",
    "0005.png": "2e6db0984538fb0452af58f3c189e058996fbfd2fae78dec6cd2e6a4059edcc6",
    "0006.png": "5e878ecb126086199ed765fb92f00b6d3bc777496230cdbeaafadb04872a1e0d",
    "0007.png": "60d4b8805c75e319357815cbb0e8c7bbd4853ac4447c5cb36633c3ed9f88984a",
}
_GFPGAN_PAPER = "Wang et al., Towards Real-World Blind Face Restoration with Generative Facial Prior (GFPGAN), CVPR 2021"
_SOURCES = (
    DatasetSource(
        "lfw-test", "LFW-Test", "1711 low-quality LFW faces, the first image of each identity (GFPGAN protocol)",
        licence="LFW: research use; redistribution of the test split by the VQFR/GFPGAN authors (no licence stated)",
        urls=(_VQFR_TEST,), n_images=1711, homepage="https://github.com/TencentARC/VQFR#straight_ruler-evaluation",
        paper=_GFPGAN_PAPER, notes="VQFR's 'Testing Datasets' Google Drive folder, LFW-Test(LQ)"),
    DatasetSource(
        "celebchild-test", "CelebChild-Test", "180 real child faces of celebrities from the Internet (GFPGAN)",
        licence="collected from the Internet by the GFPGAN authors: research use only (no licence stated)",
        urls=(_VQFR_TEST,), n_images=180, homepage="https://github.com/TencentARC/VQFR#straight_ruler-evaluation",
        paper=_GFPGAN_PAPER, notes="VQFR's 'Testing Datasets' Google Drive folder, CelebChild(LQ)"),
    DatasetSource(
        "webphoto-test", "WebPhoto-Test", "469 faces cropped from 188 old photos on the Internet (GFPGAN)",
        licence="collected from the Internet by the GFPGAN authors: research use only (no licence stated)",
        urls=(_VQFR_TEST,), n_images=469, homepage="https://github.com/TencentARC/VQFR#straight_ruler-evaluation",
        paper=_GFPGAN_PAPER, notes="VQFR's 'Testing Datasets' Google Drive folder, Webphoto-Test(LQ)"),
    DatasetSource(
        "wider-test", "WIDER-Test", "970 severely degraded faces from the WIDER Face dataset (CodeFormer)",
        licence="WIDER FACE images: research use (non-commercial); selection by the CodeFormer authors",
        urls=("https://shangchenzhou.com/projects/CodeFormer/",), n_images=970,
        homepage="https://shangchenzhou.com/projects/CodeFormer/",
        paper="Zhou et al., Towards Robust Blind Face Restoration with Codebook Lookup Transformer, NeurIPS 2022",
        notes="linked from the CodeFormer project page (no direct download link is published in the repository)"),
    DatasetSource(
        "dmdnet-reallqs", "DMDNet RealLQs", "DMDNet's 7 real low-quality example faces (TestGenericRestoration)",
        licence="CC BY-NC-SA 4.0 (DMDNet repository)", kind="files",
        files={name: (_DMDNET_RAW + name, digest) for name, digest in _REALLQ_SHA256.items()},
        size=1_827_588, n_images=7, homepage="https://github.com/csxmli2016/DMDNet",
        paper="Li et al., Learning Dual Memory Dictionaries for Blind Face Restoration, TPAMI 2022",
        notes=f"files of TestExamples/TestGenericRestoration/RealLQs at commit {_DMDNET_COMMIT[:12]}; "
              "sha256 computed from the repository's blobs"),
)
_ALIASES = {"lfw-test": ("lfw",), "celebchild-test": ("celebchild",), "webphoto-test": ("webphoto",),
            "wider-test": ("wider",), "dmdnet-reallqs": ("reallqs",)}
for _s in _SOURCES:
    DATASETS.register(_s.name, _s, description=f"{_s.title}: {_s.description}", tags=("real-world",),
                      aliases=_ALIASES.get(_s.name, ()))


def get(name: str) -> DatasetSource:
    """The declaration of ``name`` (aliases and case accepted; unknown names get "did you mean")."""
    src = DATASETS.get(name)
    if not isinstance(src, DatasetSource):
        raise ConfigError(f"dataset {name!r} is a {type(src).__name__}, not a celebref.datasets.DatasetSource")
    return src


def env_var(name: str) -> str:
    """Environment variable that points ``name`` at a local folder."""
    return "CELEBREF_DATASET_" + re.sub(r"[^A-Z0-9]", "_", DATASETS.resolve(name).upper())


def dataset_path(name: str) -> tuple[Path, str]:
    """``(folder, source)``: ``$CELEBREF_DATASET_<NAME>`` (source ``env``) or ``<home>/datasets/<name>`` (``cache``)."""
    value = os.environ.get(env_var(name))
    if value:
        return Path(value).expanduser(), "env"
    return home() / "datasets" / get(name).name, "cache"


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


@dataclass
class DatasetStatus:
    name: str
    path: Path
    source: str
    state: str  # present | missing | incomplete | bad hash
    n_images: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "present"


def status(name: str, verify: bool = True) -> DatasetStatus:
    """Whether ``name`` is usable locally: ``present`` (images found; files with a published sha256 checked when
    ``verify``), ``missing``, ``incomplete`` (declared files absent) or ``bad hash``."""
    src = get(name)
    path, source = dataset_path(name)
    if not path.is_dir():
        return DatasetStatus(src.name, path, source, "missing", 0, f"expected a folder at {path}")
    n = len(_images(path))
    if src.kind == "files":
        absent = [f for f in src.files if not (path / f).is_file()]
        if absent:
            return DatasetStatus(src.name, path, source, "incomplete", n, f"lacks {', '.join(absent)}")
        if verify:
            for f, (_, digest) in src.files.items():
                actual = sha256_file(path / f)
                if actual != digest:
                    return DatasetStatus(src.name, path, source, "bad hash", n, f"{path / f}: sha256 {actual}, "
                                                                                 f"expected {digest}")
    if n == 0:
        return DatasetStatus(src.name, path, source, "missing", 0, f"no images in {path}")
    detail = "" if src.n_images in (None, n) else f"{n} image(s), {src.n_images} published"
    return DatasetStatus(src.name, path, source, "present", n, detail)


def instructions(name: str, reason: str = "") -> str:
    """What to put where, without the network."""
    src = get(name)
    path, source = dataset_path(name)
    lines = [f"dataset {src.name!r} ({src.title}) is not available" + (f": {reason}" if reason else "") + "."]
    if src.kind == "manual":
        lines.append("  Its authors publish it only on web pages (no direct download); get it by hand from:")
        lines += [f"    {u}" for u in src.urls]
        if src.notes:
            lines.append(f"  ({src.notes})")
    else:
        lines.append(f"  Run `celebref data fetch {src.name}` when online, or download from:")
        lines += [f"    {u}" for u in (src.urls or [u for u, _ in src.files.values()])]
    what = f"its {src.n_images} images" if src.n_images else "its images"
    lines.append(f"  and put {what} (any sub-folders kept) in:")
    lines.append(f"    {path}")
    if src.kind == "files":
        lines.append(f"  as {', '.join(src.files)} (sha256 checked)")
    elif src.sha256:
        lines.append(f"  archive sha256 {src.sha256}" + (f", {src.size} bytes" if src.size else ""))
    if source == "cache":
        lines.append(f"  Or point to an existing copy: export {env_var(src.name)}=/path/to/folder")
    lines.append(f"  Licence: {src.licence}" + (" (NON-COMMERCIAL)." if src.noncommercial else "."))
    return "\n".join(lines)


def fetch(name: str, force: bool = False, timeout: float | None = None) -> Path:
    """Download ``name`` into ``<home>/datasets/<name>`` (``files``: each file, sha256-checked; ``zip``: the archive,
    checked and extracted safely) and return the folder. A present set is returned at once. Manual sets, offline
    mode (``CELEBREF_OFFLINE=1``) and network failures raise :class:`~celebref.errors.WeightError` with
    instructions."""
    from . import download as dl

    src = get(name)
    st = status(name)
    if st.ok and not force:
        return st.path
    if st.source != "cache":
        raise WeightError(f"dataset {src.name!r} from {env_var(src.name)} ({st.path}) is {st.state}: {st.detail}")
    if src.kind == "manual":
        raise WeightError(instructions(name, "it cannot be downloaded automatically"))
    if is_offline():
        raise WeightError(instructions(name, "offline mode (CELEBREF_OFFLINE=1)"))
    kw = {"timeout": timeout} if timeout else {}
    try:
        if src.kind == "files":
            for rel, (url, digest) in src.files.items():
                target = st.path / rel
                if force or not (target.is_file() and sha256_file(target) == digest):
                    dl.download(url, target, sha256=digest, desc=f"{src.name}/{rel}", **kw)
        else:
            archive = st.path.parent / f"{src.name}.zip"
            errors: list[str] = []
            for url in src.urls:
                try:
                    dl.download(url, archive, sha256=src.sha256, size=src.size, desc=archive.name, **kw)
                    break
                except dl.DownloadError as e:
                    errors.append(str(e))
            else:
                raise dl.DownloadError("; ".join(errors))
            names = dl.safe_extract_zip(archive, st.path)
            atomic_write_json(st.path / ".celebref-source.json",
                              {"archive": archive.name, "sha256": src.sha256, "members": len(names)})
            archive.unlink()
    except WeightError as e:
        raise WeightError(instructions(name, f"download failed: {e}")) from None
    after = status(name)
    if not after.ok:
        raise WeightError(f"dataset {src.name!r} fetched but {after.state}: {after.detail}")
    return after.path
