"""Loading checkpoints safely: ``torch.load(weights_only=True)`` or safetensors, never arbitrary pickles,
and a clear message for a file that is not a checkpoint at all (truncated download, an HTML page, ...)."""

from __future__ import annotations

import contextlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import WeightError
from .catalogue import REGISTRY, WeightFile
from .integrity import file_sha256
from .messages import invalid_checkpoint_message
from .store import weight_path

#: the first pickle of PyTorch's legacy (pre-1.6, non-zip) serialization format
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _NoGlobals(pickle.Unpickler):
    """Reads plain values only (used to recognise the legacy magic number): every global is refused."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: ARG002
        raise pickle.UnpicklingError("globals are not allowed here")


class _Inert:
    """Stands in for a class or function a checkpoint names besides its tensors (a Lightning checkpoint's
    hyper-parameter and callback objects): built from its arguments and state, it does nothing."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _inert_globals(path: Path) -> contextlib.AbstractContextManager:
    """``torch.serialization.safe_globals`` with one inert stand-in per non-tensor global the file names (listed
    without unpickling it): the file's own classes are never imported or run."""
    import torch

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - not a zip checkpoint: torch.load below says what it is
        return contextlib.nullcontext()
    return torch.serialization.safe_globals([(type(n.rpartition(".")[2] or "Inert", (_Inert,), {}), n) for n in names])


def _format_problem(path: Path) -> str | None:
    """Why ``path`` is structurally not a PyTorch checkpoint (``None``: it looks like one)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(512)
            if size == 0:
                return "the file is empty"
            if head.startswith(b"PK"):
                f.seek(0)
                try:
                    with zipfile.ZipFile(f) as zf:
                        names = zf.namelist()
                except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
                    return f"a damaged zip archive ({e})"
                if not any(n.endswith("data.pkl") for n in names):
                    return "a zip archive without PyTorch's data.pkl"
                return None
            if head.startswith(b"\x80"):
                f.seek(0)
                try:
                    if _NoGlobals(f).load() == _LEGACY_MAGIC:
                        return None
                except Exception:  # noqa: BLE001 - anything unreadable is not the legacy header
                    pass
                return "not PyTorch's serialization format (a bare pickle or damaged data)"
    except OSError as e:
        return f"cannot read it ({e})"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        return "it is an HTML/XML page, not a checkpoint (a download that returned a web page?)"
    return "neither PyTorch's zip nor its legacy format"


def _invalid(path: Path, reason: str, entry: WeightFile | None) -> WeightError:
    try:
        actual = file_sha256(path)
    except OSError:
        actual = None
    return WeightError(invalid_checkpoint_message(path, reason, entry, actual))


def load_torch_checkpoint(name_or_path: str | os.PathLike, allow_unverified: bool | None = None,
                          inert_globals: bool = False) -> dict:
    """Load a checkpoint safely: ``torch.load(weights_only=True, map_location="cpu")``, or safetensors
    for ``*.safetensors``; by store name (verified by :func:`~celebref.weights.weight_path`, which
    ``allow_unverified`` is passed to) or by path.

    Never unpickles arbitrary objects: a file that needs them raises :class:`WeightError` ("refusing to
    load"), unless ``inert_globals`` (Lightning checkpoints, whose hyper-parameters and callbacks are pickled
    objects beside the tensors): each such class or function is then replaced by an inert stand-in that is never
    imported or run, and only the tensors are meant to be used. A file that is not a checkpoint at all (empty, truncated, an HTML page) raises
    :class:`WeightError` "... is not a valid checkpoint (truncated download?)" with its size, its sha256
    and the expected ones. Returns the loaded mapping as is (see :func:`unwrap_state_dict`)."""
    entry = None
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        entry = REGISTRY[name_or_path]
        path = weight_path(name_or_path, allow_unverified=allow_unverified)
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise WeightError(f"checkpoint {str(path)!r} does not exist")
        if not path.is_file():
            raise WeightError(f"checkpoint {str(path)!r} is not a regular file (a folder, FIFO or device); "
                              "give the checkpoint file itself")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            tensors = dict(load_file(str(path), device="cpu"))
        except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
            raise _invalid(path, f"not a readable safetensors file ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                           entry) from None
        refuse_non_finite(tensors, path)
        return tensors
    import torch

    try:
        with _inert_globals(path) if inert_globals else contextlib.nullcontext():
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        problem = _format_problem(path)
        if problem is not None:
            raise _invalid(path, problem, entry) from None
        raise WeightError(
            f"refusing to load {str(path)!r}: it contains Python objects other than tensors and plain "
            f"containers (weights_only=True). Details: {_first_line(e)}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise _invalid(path, _format_problem(path) or f"unreadable data ({_first_line(e)})", entry) from None
    if not isinstance(obj, dict):
        raise WeightError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}, expected a dict")
    refuse_non_finite(obj, path)
    return obj


def _tensors(obj: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """``(dotted key, tensor)`` of every tensor in nested dicts/lists/tuples."""
    import torch

    if isinstance(obj, torch.Tensor):
        yield prefix or "<root>", obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}[{i}]")


def refuse_non_finite(obj: Any, path: str | os.PathLike) -> None:
    """Raise :class:`WeightError` when a floating-point tensor of the loaded checkpoint ``obj`` holds NaN or
    infinite values: such weights restore black or garbage images "successfully", so they are refused at load."""
    import torch

    bad: list[tuple[str, int, int]] = []
    for key, t in _tensors(obj):
        if t.is_floating_point() or t.is_complex():
            n = int(t.numel() - torch.isfinite(t).sum().item())
            if n:
                bad.append((key, n, t.numel()))
    if bad:
        key, n, total = bad[0]
        raise WeightError(f"checkpoint {str(path)!r} holds non-finite values (NaN or inf) in {len(bad)} tensor(s), "
                          f"e.g. {key!r} ({n} of {total}); the file is damaged or comes from a diverged training: "
                          "get a good copy (`celebref weights fetch NAME --force`, or point the weight at another file)")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


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
