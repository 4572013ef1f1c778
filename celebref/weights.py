"""Model-weight store: every external file the toolkit uses, declared once, with where it comes from,
its size/sha256 when known, its licence and who uses it.

Where files live
----------------
* Cache root: ``$CELEBREF_HOME`` (default: ``platformdirs.user_cache_dir("celebref")``); files go to
  ``<root>/weights/<name>/<filename>``; folder-kind entries (a zip pack after extraction, a folder of
  arrays) are the folder ``<root>/weights/<name>/`` itself.
* Local override of any entry, highest priority first:

  1. environment variable ``CELEBREF_WEIGHT_<NAME>`` (name upper-cased, every non-alphanumeric
     character replaced by ``_``; e.g. ``CELEBREF_WEIGHT_GFPGAN_V1_4=/data/GFPGANv1.4.pth``);
  2. ``<root>/paths.json`` (``{"name": "/abs/path"}``), written by
     ``celebref weights path NAME --set PATH`` (``--unset`` removes it).

  An override is the user's explicit choice: if its sha256 differs from the declared one it is still
  used (with a warning), and ``celebref weights list/verify`` report it as ``bad hash``. Files in the
  cache are strict: a wrong hash is an error.
* ``package`` entries (dlib's models) are found inside the installed ``face_recognition_models`` package
  without importing it (it imports the removed ``pkg_resources``).

Network
-------
Nothing here touches the network except :func:`fetch` (``celebref weights fetch``). With
``CELEBREF_OFFLINE=1``, or when every URL fails, it raises :class:`~celebref.errors.WeightError` whose
message says exactly which file to put where (URL, expected file name, destination, sha256).
Entries whose upstream only offers Google Drive / Baidu folders are ``manual``: ``fetch`` prints the
instructions. :func:`weight_path` never downloads; it raises with the same instructions.

Hashes
------
``sha256`` values were taken from public sources and cross-checked (file names that embed a prefix,
e.g. ``alexnet-owt-7be5be79.pth``, agree with the full hash; files in git repositories were hashed from
the repository blob). ``None`` means not verifiable from public sources: such files are reported as
``unverified`` rather than guessed. Hashes are cached by ``(path, size, mtime)`` in
``<root>/sha256-cache.json`` and verified once per process.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import UnknownNameError, WeightError
from .fsutil import atomic_write_json, sha256_file

__all__ = [
    "WeightFile", "WeightStatus", "REGISTRY", "home", "weights_dir", "env_var", "default_path",
    "resolve", "weight_path", "is_available", "file_sha256", "status", "fetch", "instructions",
    "set_override", "read_overrides", "load_torch_checkpoint", "unwrap_state_dict", "is_offline",
]

KINDS = ("file", "zip", "folder", "package")
PRESENT, MISSING, BAD_HASH, UNVERIFIED = "present", "missing", "bad hash", "unverified"


@dataclass(frozen=True)
class WeightFile:
    """One external file (or folder) the toolkit uses.

    ``kind``: ``file`` (one file), ``zip`` (an archive at ``urls`` that is extracted into a folder;
    ``sha256``/``size`` describe the archive), ``folder`` (a folder of ``members`` obtained manually),
    ``package`` (a file inside an installed Python package, ``package``/``filename``).
    ``manual``: the URLs are web pages (Google Drive, Baidu) rather than direct downloads.
    ``member_sha256``: known hashes of files inside a folder/zip entry.
    """

    name: str
    filename: str
    urls: tuple[str, ...]
    licence: str
    used_by: tuple[str, ...]
    kind: str = "file"
    size: int | None = None
    sha256: str | None = None
    noncommercial: bool = False
    manual: bool = False
    members: tuple[str, ...] = ()
    member_sha256: Mapping[str, str] = field(default_factory=dict)
    package: str | None = None
    homepage: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits")

    @property
    def is_folder(self) -> bool:
        return self.kind in ("zip", "folder")


_DLIB_HOME = "https://github.com/davisking/dlib-models"
_LPIPS_COMMIT = "082bb24f84c091ea94de2867d34c4544f68e0963"
_BASICSR_COMMIT = "8d56e3a045f9fb3e1d8872f92ee4a4f07f886b0a"
_DFDNET_DRIVE = "https://drive.google.com/drive/folders/1ks_IbobH6WVQ_Jy4oWTTGjSbMZVUSbl4?usp=sharing"
_DFDNET_BAIDU = "https://pan.baidu.com/s/1K4fzjPiezVSMl5NjHoJCGQ (extraction code s9ht)"
_DFDNET_PARTS = ("left_eye", "right_eye", "nose", "mouth")
_DFDNET_SIZES = (256, 128, 64, 32)

_ENTRIES: tuple[WeightFile, ...] = (
    WeightFile(
        name="dmdnet", filename="DMDNet.pth",
        urls=("https://github.com/csxmli2016/DMDNet/releases/download/v1/DMDNet.pth",),
        licence="CC BY-NC-SA 4.0", noncommercial=True, used_by=("method:dmdnet", "method:dmdnet-specific"),
        homepage="https://github.com/csxmli2016/DMDNet",
    ),
    WeightFile(
        name="dfdnet-generator", filename="latest_net_G.pth",
        urls=(_DFDNET_DRIVE, _DFDNET_BAIDU), manual=True,
        licence="CC BY-NC-SA 4.0", noncommercial=True, used_by=("method:dfdnet",),
        homepage="https://github.com/csxmli2016/DFDNet",
        notes="it is checkpoints/facefh_dictionary/latest_net_G.pth inside the shared folder; "
              "the folder's weights/vgg19.pth only initialises the official code before this checkpoint is loaded",
    ),
    WeightFile(
        name="dfdnet-dictionary", filename="DictionaryCenter512", kind="folder",
        urls=(_DFDNET_DRIVE, _DFDNET_BAIDU), manual=True,
        members=tuple(f"{p}_{s}_center.npy" for p in _DFDNET_PARTS for s in _DFDNET_SIZES),
        licence="CC BY-NC-SA 4.0", noncommercial=True, used_by=("method:dfdnet",),
        homepage="https://github.com/csxmli2016/DFDNet",
        notes="it is the DictionaryCenter512 folder of the shared folder, 16 .npy files",
    ),
    WeightFile(
        name="gfpgan-v1.4", filename="GFPGANv1.4.pth",
        urls=("https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth",
              "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.4/GFPGANv1.4.pth"),
        sha256="e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        licence="Apache-2.0", used_by=("method:gfpgan",), homepage="https://github.com/TencentARC/GFPGAN",
    ),
    WeightFile(
        name="codeformer", filename="codeformer.pth",
        urls=("https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth",),
        size=376_637_898, sha256="1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7",
        licence="NTU S-Lab License 1.0", noncommercial=True, used_by=("method:codeformer",),
        homepage="https://github.com/sczhou/CodeFormer",
    ),
    WeightFile(
        name="insightface-buffalo_l", filename="buffalo_l.zip", kind="zip",
        urls=("https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip",),
        size=288_621_354, sha256="80ffe37d8a5940d59a7384c201a2a38d4741f2f3c51eef46ebb28218a7b0ca2f",
        members=("1k3d68.onnx", "2d106det.onnx", "det_10g.onnx", "genderage.onnx", "w600k_r50.onnx"),
        member_sha256={
            "det_10g.onnx": "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
            "w600k_r50.onnx": "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
        },
        licence="InsightFace models: non-commercial research purposes only", noncommercial=True,
        used_by=("face:insightface", "metric:identity"),
        homepage="https://github.com/deepinsight/insightface/tree/master/model_zoo",
    ),
    WeightFile(
        name="fid-inception", filename="pt_inception-2015-12-05-6726825d.pth",
        urls=("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",),
        size=95_628_359, sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        licence="Apache-2.0", used_by=("metric:fid",), homepage="https://github.com/mseitzer/pytorch-fid",
    ),
    WeightFile(
        name="alexnet", filename="alexnet-owt-7be5be79.pth",
        urls=("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",),
        size=244_408_911, sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        licence="BSD-3-Clause (torchvision); trained on ImageNet", used_by=("metric:lpips-alex",),
        homepage="https://github.com/pytorch/vision",
    ),
    WeightFile(
        name="vgg16", filename="vgg16-397923af.pth",
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
        size=553_433_881, sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        licence="BSD-3-Clause (torchvision); trained on ImageNet", used_by=("metric:lpips-vgg",),
        homepage="https://github.com/pytorch/vision",
    ),
    WeightFile(
        name="lpips-alex-v0.1", filename="alex.pth",
        urls=(f"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/{_LPIPS_COMMIT}/lpips/weights/v0.1/alex.pth",
              "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/alex.pth"),
        size=6_009, sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        licence="BSD-2-Clause", used_by=("metric:lpips-alex",),
        homepage="https://github.com/richzhang/PerceptualSimilarity",
    ),
    WeightFile(
        name="lpips-vgg-v0.1", filename="vgg.pth",
        urls=(f"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/{_LPIPS_COMMIT}/lpips/weights/v0.1/vgg.pth",
              "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/vgg.pth"),
        size=7_289, sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        licence="BSD-2-Clause", used_by=("metric:lpips-vgg",),
        homepage="https://github.com/richzhang/PerceptualSimilarity",
    ),
    WeightFile(
        name="niqe-params", filename="niqe_pris_params.npz",
        urls=(f"https://raw.githubusercontent.com/XPixelGroup/BasicSR/{_BASICSR_COMMIT}/basicsr/metrics/niqe_pris_params.npz",
              "https://raw.githubusercontent.com/XPixelGroup/BasicSR/master/basicsr/metrics/niqe_pris_params.npz"),
        size=11_850, sha256="2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
        licence="Apache-2.0 (BasicSR); parameters of the NIQE MATLAB release", used_by=("metric:niqe",),
        homepage="https://github.com/XPixelGroup/BasicSR",
    ),
    WeightFile(
        name="dlib-face-detector-cnn", filename="mmod_human_face_detector.dat", kind="package",
        package="face_recognition_models", urls=(_DLIB_HOME,), licence="CC0-1.0 (dlib-models)",
        used_by=("face:dlib",), homepage=_DLIB_HOME,
    ),
    WeightFile(
        name="dlib-shape-predictor-5", filename="shape_predictor_5_face_landmarks.dat", kind="package",
        package="face_recognition_models", urls=(_DLIB_HOME,), licence="CC0-1.0 (dlib-models)",
        used_by=("face:dlib",), homepage=_DLIB_HOME,
    ),
    WeightFile(
        name="dlib-shape-predictor-68", filename="shape_predictor_68_face_landmarks.dat", kind="package",
        package="face_recognition_models", urls=(_DLIB_HOME,),
        licence="trained on iBUG 300-W, whose licence excludes commercial use (dlib-models README)",
        noncommercial=True, used_by=("face:dlib",), homepage=_DLIB_HOME,
    ),
    WeightFile(
        name="dlib-face-recognition-resnet", filename="dlib_face_recognition_resnet_model_v1.dat",
        kind="package", package="face_recognition_models", urls=(_DLIB_HOME,),
        licence="CC0-1.0 (dlib-models)", used_by=("face:dlib", "metric:identity"), homepage=_DLIB_HOME,
    ),
)

#: name -> declaration. Tests add temporary entries with ``monkeypatch.setitem(REGISTRY, ...)``.
REGISTRY: dict[str, WeightFile] = {w.name: w for w in _ENTRIES}


# --- locations ---------------------------------------------------------------------------------

def home() -> Path:
    """The cache root: ``$CELEBREF_HOME`` or the platform's user cache dir + ``celebref``."""
    value = os.environ.get("CELEBREF_HOME")
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("celebref", appauthor=False))


def weights_dir() -> Path:
    return home() / "weights"


def is_offline() -> bool:
    return os.environ.get("CELEBREF_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def env_var(name: str) -> str:
    """Environment variable that overrides the location of ``name``."""
    return "CELEBREF_WEIGHT_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def get(name: str) -> WeightFile:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownNameError("weight", name, list(REGISTRY)) from None


def _paths_json() -> Path:
    return home() / "paths.json"


def read_overrides() -> dict[str, str]:
    """The ``paths.json`` overrides (empty when the file is absent)."""
    p = _paths_json()
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightError(f"cannot read weight overrides {str(p)!r}: {e}") from None
    if not isinstance(data, dict):
        raise WeightError(f"{str(p)!r} must hold a JSON object name -> path")
    return {str(k): str(v) for k, v in data.items()}


def set_override(name: str, path: str | os.PathLike | None) -> Path:
    """Record (or with ``None`` remove) a local path for ``name`` in ``paths.json``; returns that file."""
    get(name)
    data = read_overrides()
    if path is None:
        data.pop(name, None)
    else:
        p = Path(path).expanduser().resolve()
        if not p.exists():
            raise WeightError(f"cannot point {name!r} at {str(p)!r}: no such file or folder")
        data[name] = str(p)
    atomic_write_json(_paths_json(), data)
    return _paths_json()


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent if spec.origin else None


def default_path(name: str) -> Path:
    """Where ``name`` lives when no override is set (cache, or inside its package)."""
    w = get(name)
    if w.kind == "package":
        pkg = _package_dir(w.package or "")
        base = pkg if pkg is not None else Path(f"<{w.package} not installed>")
        return base / "models" / w.filename
    if w.is_folder:
        return weights_dir() / w.name
    return weights_dir() / w.name / w.filename


def resolve(name: str) -> tuple[Path, str]:
    """``(path, source)`` with source ``env``, ``paths.json``, ``package`` or ``cache``."""
    w = get(name)
    value = os.environ.get(env_var(name))
    if value:
        return Path(value).expanduser(), "env"
    value = read_overrides().get(name)
    if value:
        return Path(value), "paths.json"
    return default_path(name), ("package" if w.kind == "package" else "cache")


# --- hashing -----------------------------------------------------------------------------------

_lock = threading.Lock()
_hash_memo: dict[tuple[str, int, int], str] = {}
_verified: dict[tuple[str, str, int, int], str] = {}  # (name, path, size, mtime) -> status


def _hash_cache_file() -> Path:
    return home() / "sha256-cache.json"


def _sha256_cached(path: Path) -> str:
    """sha256 of ``path``, cached by (resolved path, size, mtime_ns) in memory and on disk."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _hash_memo:
            return _hash_memo[key]
    cache_file = _hash_cache_file()
    disk: dict[str, Any] = {}
    try:
        disk = json.loads(cache_file.read_text(encoding="utf-8")) if cache_file.is_file() else {}
    except (OSError, ValueError):
        disk = {}
    rec = disk.get(key[0])
    if isinstance(rec, list) and len(rec) == 3 and rec[0] == key[1] and rec[1] == key[2]:
        digest = str(rec[2])
    else:
        digest = sha256_file(path)
        disk[key[0]] = [key[1], key[2], digest]
        try:
            atomic_write_json(cache_file, disk)
        except OSError:  # a read-only cache dir only costs re-hashing
            pass
    with _lock:
        _hash_memo[key] = digest
    return digest


def _folder_digest(folder: Path) -> str:
    """sha256 over ``"relpath\\0sha256\\n"`` lines of every file under ``folder`` (sorted)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file() and not q.name.startswith(".")):
        h.update(f"{p.relative_to(folder).as_posix()}\0{_sha256_cached(p)}\n".encode())
    return h.hexdigest()


def file_sha256(name_or_path: str | os.PathLike) -> str:
    """sha256 of a declared weight (by name) or of any file; folders get :func:`_folder_digest`."""
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        path, _ = resolve(name_or_path)
        if not path.exists():
            raise WeightError(instructions(name_or_path))
    else:
        path = Path(name_or_path)
    if path.is_dir():
        return _folder_digest(path)
    return _sha256_cached(path)


# --- status ------------------------------------------------------------------------------------

@dataclass
class WeightStatus:
    name: str
    path: Path
    source: str
    state: str  # present | missing | bad hash | unverified
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state in (PRESENT, UNVERIFIED)


def _package_record_sha256(w: WeightFile, path: Path) -> str | None:
    """sha256 (hex) recorded for ``path`` in the installed package's RECORD file, if any."""
    import base64
    import importlib.metadata as md

    try:
        dist = md.distribution(w.package or "")
    except md.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.hash is not None and f.hash.mode == "sha256" and Path(str(dist.locate_file(f))).resolve() == path.resolve():
            raw = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4))
            return raw.hex()
    return None


def _check(w: WeightFile, path: Path, full: bool) -> tuple[str, str]:
    """Verify an existing path. ``full`` hashes folder members too."""
    if w.is_folder:
        if not path.is_dir():
            return BAD_HASH, f"expected a folder, found a file at {path}"
        missing = [m for m in w.members if not (path / m).is_file()]
        if missing:
            return MISSING, f"folder {path} lacks {', '.join(missing)}"
        if full or w.member_sha256:
            for m, digest in w.member_sha256.items():
                actual = _sha256_cached(path / m)
                if actual != digest:
                    return BAD_HASH, f"{path / m}: sha256 {actual}, expected {digest}"
        if w.member_sha256 and set(w.member_sha256) >= set(w.members):
            return PRESENT, ""
        if w.kind == "zip" and (path / ".celebref-source.json").is_file():
            return PRESENT, "extracted from the verified archive"
        return UNVERIFIED, "member files present; no published hashes for all of them"
    if not path.is_file():
        return BAD_HASH, f"expected a file, found a folder at {path}"
    size = path.stat().st_size
    if w.size is not None and size != w.size:
        return BAD_HASH, f"{path} has {size} bytes, expected {w.size}"
    expected, origin = w.sha256, "declared"
    if expected is None and w.kind == "package":
        expected, origin = _package_record_sha256(w, path), f"the RECORD of the installed {w.package} package"
    if expected is None:
        return UNVERIFIED, "no published sha256"
    actual = _sha256_cached(path)
    if actual != expected:
        return BAD_HASH, f"{path}: sha256 {actual}, expected {expected} ({origin})"
    return PRESENT, "" if origin == "declared" else f"matches {origin}"


def status(name: str, full: bool = False) -> WeightStatus:
    """Check ``name`` without raising: present / missing / bad hash / unverified."""
    w = get(name)
    path, source = resolve(name)
    if not path.exists():
        detail = (f"install the package: pip install {w.package.replace('_', '-')}"  # type: ignore[union-attr]
                  if w.kind == "package" and source == "package" else f"expected at {path}")
        return WeightStatus(name, path, source, MISSING, detail)
    state, detail = _check(w, path, full)
    return WeightStatus(name, path, source, state, detail)


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
    lines.append(f"  Or point to an existing copy: export {env_var(name)}=/path/to/"
                 f"{w.filename if w.kind == 'file' else 'folder'}  (or `celebref weights path {name} --set PATH`).")
    if w.noncommercial:
        lines.append(f"  Licence: {w.licence} (NON-COMMERCIAL).")
    return "\n".join(lines)


def weight_path(name: str) -> Path:
    """Local path of ``name`` (file or folder), verified once per process.

    Raises :class:`WeightError` with instructions when it is missing, or when a cached file has the
    wrong size/sha256. Never downloads (use :func:`fetch`).
    """
    w = get(name)
    path, source = resolve(name)
    if not path.exists():
        raise WeightError(instructions(name))
    st = path.stat()
    key = (name, str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        known = _verified.get(key)
    if known is None:
        state, detail = _check(w, path, full=False)
        known = state
        with _lock:
            _verified[key] = state
        if state == MISSING:
            raise WeightError(instructions(name, detail))
        if state == BAD_HASH:
            if source in ("env", "paths.json"):
                warnings.warn(f"weight {name!r} from {source} does not match its declaration ({detail}); using it anyway",
                              stacklevel=2)
            else:
                raise WeightError(instructions(name, f"{detail}; delete it and fetch again"))
    elif known == MISSING or (known == BAD_HASH and source not in ("env", "paths.json")):
        raise WeightError(instructions(name, known))
    return path


def is_available(name: str) -> bool:
    """True when ``name`` exists locally with the right size/members (cheap: no hashing of big files)."""
    w = get(name)
    path, _ = resolve(name)
    if not path.exists():
        return False
    if w.is_folder:
        return path.is_dir() and all((path / m).is_file() for m in w.members)
    return path.is_file() and (w.size is None or path.stat().st_size == w.size)


# --- fetching ----------------------------------------------------------------------------------

def fetch(name: str, force: bool = False, timeout: float | None = None) -> Path:
    """Download ``name`` into the cache (zip packs are extracted safely) and return its path.

    Already-present verified files are returned at once. Offline mode, manual entries and network
    failures raise :class:`WeightError` with placement instructions.
    """
    from . import download as dl

    w = get(name)
    path, source = resolve(name)
    if path.exists() and not force:
        st = status(name)
        if st.ok:
            return path
        if source != "cache":
            raise WeightError(f"weight {name!r} from {source} ({path}) is {st.state}: {st.detail}")
    if w.kind == "package":
        raise WeightError(instructions(name))
    if w.manual:
        raise WeightError(instructions(name, "its authors publish it only on Google Drive / Baidu, "
                                            "so it cannot be downloaded automatically"))
    if source != "cache":
        raise WeightError(instructions(name))
    if is_offline():
        raise WeightError(instructions(name, "offline mode (CELEBREF_OFFLINE=1)"))
    dest = default_path(name)
    target = weights_dir() / w.filename if w.kind == "zip" else dest
    errors: list[str] = []
    for url in w.urls:
        try:
            dl.download(url, target, sha256=w.sha256, size=w.size, desc=w.filename,
                        **({"timeout": timeout} if timeout else {}))
            break
        except dl.ChecksumError as e:
            errors.append(str(e))
        except dl.DownloadError as e:
            errors.append(str(e))
    else:
        raise WeightError(instructions(name, "download failed:\n    " + "\n    ".join(errors)))
    if w.kind == "zip":
        names = dl.safe_extract_zip(target, dest)
        missing = [m for m in w.members if m not in names]
        if missing:
            raise WeightError(f"archive {w.urls[0]} lacks {', '.join(missing)} (kept at {target})")
        atomic_write_json(dest / ".celebref-source.json",
                          {"archive": w.filename, "url": w.urls[0], "sha256": w.sha256, "members": names})
        target.unlink()
    st = status(name, full=True)
    if not st.ok:
        raise WeightError(f"weight {name!r} fetched but {st.state}: {st.detail}")
    return dest


# --- loading -----------------------------------------------------------------------------------

def load_torch_checkpoint(name_or_path: str | os.PathLike) -> dict:
    """Load a checkpoint safely: ``torch.load(weights_only=True, map_location="cpu")``, or safetensors
    for ``*.safetensors``. Never unpickles arbitrary objects: a file that needs them raises
    :class:`WeightError`. Returns the loaded mapping as is (see :func:`unwrap_state_dict`)."""
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        path = weight_path(name_or_path)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise WeightError(f"checkpoint {str(path)!r} does not exist")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
            raise WeightError(f"cannot load safetensors file {str(path)!r}: {e}") from None
    import pickle

    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightError(
            f"refusing to load {str(path)!r}: it contains Python objects other than tensors and plain "
            f"containers (weights_only=True). Details: {str(e).splitlines()[0] if str(e) else e!r}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise WeightError(f"cannot load checkpoint {str(path)!r}: {e}") from None
    if not isinstance(obj, dict):
        raise WeightError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}, expected a dict")
    return obj


def unwrap_state_dict(ckpt: Mapping[str, Any], keys: Iterable[str] = ("params_ema", "params", "state_dict"),
                      strip_prefix: str | None = "module.") -> dict:
    """The tensor mapping inside a checkpoint: the first of ``keys`` present (BasicSR's ``params_ema`` /
    ``params``, Lightning's ``state_dict``), else ``ckpt`` itself; ``strip_prefix`` is removed when every
    key starts with it (DataParallel's ``module.``)."""
    sd: Any = ckpt
    for k in keys:
        if isinstance(ckpt, Mapping) and isinstance(ckpt.get(k), Mapping):
            sd = ckpt[k]
            break
    sd = dict(sd)
    if strip_prefix and sd and all(isinstance(k, str) and k.startswith(strip_prefix) for k in sd):
        sd = {k[len(strip_prefix):]: v for k, v in sd.items()}
    return sd


def entries() -> list[WeightFile]:
    """All declarations in registry order."""
    return list(REGISTRY.values())


def as_dict(w: WeightFile) -> dict:
    d = dataclasses.asdict(w)
    d["member_sha256"] = dict(w.member_sha256)
    return d
