"""Identity preservation: cosine similarity and angle between the restored face's and the ground truth's
identity embeddings (:mod:`celebref.face`: insightface ArcFace ``w600k_r50`` when its files are present,
dlib's 128-d ResNet descriptor offline).

Conventions: embeddings are unit-norm; ``identity_cos = <e_pred, e_gt>`` in ``[-1, 1]`` (higher is better);
``identity_angle = degrees(arccos(cos))`` in ``[0, 180]`` (lower is better). Backends differ in scale: compare
numbers only with the same backend and model, which :meth:`Identity.describe` records. Display labels name
the backend (:meth:`FaceMetric.column_labels`): ``IDS(ArcFace)``/``Deg(ArcFace)`` for insightface's ArcFace, as
in the papers, and ``ID(dlib)``/``Deg(dlib)`` for the dlib descriptor, which is a different number. When
``backend="auto"`` falls back to dlib, :meth:`FaceMetric.load` prints one line saying so on stderr.

``mode="aligned"`` (default) treats both images as aligned face crops (:meth:`FaceBackend.embed_aligned`:
the detector's largest face, else the backend's aligned-face prior box); ``mode="detect"`` requires a
detected face in both images and scores NaN (a recorded failure, with its reason in ``last_failures``)
when there is none.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict

import numpy as np
import torch

from celebref.errors import CelebrefError, ConfigError, WeightError
from celebref.face.base import largest

from .base import Metric

_GT_CACHE_SIZE = 4096


def to_arrays(images: torch.Tensor) -> list[np.ndarray]:
    """uint8 ``(N, 3, H, W)`` -> list of RGB uint8 ``(H, W, 3)`` arrays (the face backends' input)."""
    return list(images.detach().to("cpu").permute(0, 2, 3, 1).contiguous().numpy())


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(f"{arr.shape}|".encode() + arr.tobytes()).hexdigest()


class FaceMetric(Metric):
    """Shared backend handling for metrics built on :mod:`celebref.face`."""

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        self.backend = None
        self._gt_cache: OrderedDict[str, object] = OrderedDict()

    def _load(self) -> None:
        try:
            from celebref.face import get_backend
        except ImportError as e:  # pragma: no cover - the face package is part of celebref
            raise WeightError(f"{self.name}: face analysis is unavailable ({e})") from None
        name = self.options["backend"]
        try:
            from celebref.face import FACE_BACKENDS

            accepted = None if name in (None, "auto") else getattr(FACE_BACKENDS.get(name), "option_names", None)
            # the embedding runs on the metric's device where the backend can (insightface: torch on CUDA)
            opts = {"device": str(self.device)} if accepted is None or "device" in accepted else {}
            self.backend = get_backend(None if name in (None, "auto") else name, **opts)
        except ConfigError:
            raise
        except CelebrefError as e:
            raise WeightError(f"{self.name}: no face-analysis backend can run: {e}") from None
        if name in (None, "auto") and self.backend.name == "dlib":
            why = (getattr(self.backend, "selection", "") or "").partition("(")[2].rstrip(")")
            why = why.splitlines()[0][:120] + ("..." if len(why) > 120 else "") if why else "insightface unavailable"
            labels = ", ".join(self.column_labels().values())
            print(f"{self.name}: fell back to the dlib face backend, columns labelled {labels}{self.fallback_note} "
                  f"({why})", file=sys.stderr)

    #: column -> display stem; the label is ``stem(backend tag)`` (default stem: the column name upper-cased)
    label_stems: dict[str, str] = {}
    #: said after the labels when ``backend="auto"`` falls back to dlib
    fallback_note: str = ""

    def backend_tag(self) -> str:
        """Short name of the embedding/landmark model behind the numbers (``dlib``, ``insightface``, or the
        requested backend option before :meth:`load`)."""
        return self.backend.name if self.backend is not None else str(self.options["backend"] or "auto")

    def column_labels(self) -> dict[str, str]:
        """Display label of each column, naming the backend, e.g. ``{"lmd": "LMD(dlib)"}``."""
        tag = self.backend_tag()
        return {c: f"{self.label_stems.get(c, c.upper())}({tag})" for c in self.columns}

    def _backend_info(self) -> dict:
        if self.backend is None:
            return {"backend": self.options["backend"], "models": "resolved at load()"}
        info = self.backend.describe()
        sel = getattr(self.backend, "selection", None)
        if sel:
            info["selection"] = sel
        return info

    def _cached_gt(self, arr: np.ndarray, fn):
        key = _digest(arr)
        if key in self._gt_cache:
            self._gt_cache.move_to_end(key)
            return self._gt_cache[key]
        value = fn(arr)
        self._gt_cache[key] = value
        if len(self._gt_cache) > _GT_CACHE_SIZE:
            self._gt_cache.popitem(last=False)
        return value


def identity_labels(tag: str) -> dict[str, str]:
    """Display labels of the identity columns for face backend ``tag``: ``IDS(ArcFace)``/``Deg(ArcFace)`` with
    insightface (the papers' ArcFace identity score and angle), ``ID(<tag>)``/``Deg(<tag>)`` otherwise (e.g. dlib's
    descriptor: not the papers' IDS, a different model and scale)."""
    if tag == "insightface":
        return {"identity_cos": "IDS(ArcFace)", "identity_angle": "Deg(ArcFace)"}
    return {"identity_cos": f"ID({tag})", "identity_angle": f"Deg({tag})"}


class Identity(FaceMetric):
    """Options: ``backend`` (``"auto"``, ``"dlib"``, ``"insightface"``), ``mode`` (``"aligned"`` or ``"detect"``)."""

    name = "identity"
    columns = ("identity_cos", "identity_angle")
    higher_is_better = {"identity_cos": True, "identity_angle": False}
    weights = ()
    defaults = {"backend": "auto", "mode": "aligned"}
    label_stems = {"identity_cos": "ID", "identity_angle": "Deg"}
    fallback_note = ", not the papers' ArcFace IDS/Deg"

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        if self.options["mode"] not in ("aligned", "detect"):
            raise ConfigError(f"identity mode must be 'aligned' or 'detect', got {self.options['mode']!r}")
        self.loaded = False

    def column_labels(self) -> dict[str, str]:
        """The columns' labels for this metric's backend (:func:`identity_labels`)."""
        return identity_labels(self.backend_tag())

    def _describe(self) -> dict:
        return {"face": self._backend_info(), "mode": self.options["mode"], "labels": self.column_labels(),
                "columns_meaning": {"identity_cos": "cosine of unit embeddings", "identity_angle": "arccos in degrees"}}

    def _embed(self, arr: np.ndarray) -> np.ndarray | None:
        assert self.backend is not None
        if self.options["mode"] == "aligned":
            return np.asarray(self.backend.embed_aligned(arr), np.float64)
        det = largest(self.backend.detect(arr))
        return None if det is None else np.asarray(self.backend.embed(arr, det), np.float64)

    def _compute(self, pred, target):
        preds, gts = to_arrays(pred), to_arrays(target)
        cos = np.full(len(preds), np.nan)
        for i, (p, g) in enumerate(zip(preds, gts)):
            try:
                eg = self._cached_gt(g, self._embed)
                ep = self._embed(p)
            except CelebrefError as e:
                self.last_failures[i] = f"face analysis failed: {e}"
                continue
            if eg is None or ep is None:
                self.last_failures[i] = "no face detected in the " + ("ground truth" if eg is None else "restored image")
                continue
            cos[i] = float(np.clip(np.dot(ep / np.linalg.norm(ep), eg / np.linalg.norm(eg)), -1.0, 1.0))
        angle = np.degrees(np.arccos(cos))
        return {"identity_cos": torch.from_numpy(cos), "identity_angle": torch.from_numpy(angle)}


# --- identity to the input (no ground truth) --------------------------------------------------------------------

#: NTIRE 2025 Real-World Face Restoration: the identity threshold of each test set (an output whose AdaFace cosine
#: to its LQ input is below it counts as a "low ID_Sim" face) and the number of images per set, as ``eval.py``
#: states them (zhengchen1999/NTIRE2025_RealWorld_Face_Restoration ``eval.py`` @ 3b1903d3d57245268a14c5c36f0b0d78
#: 9add55fe, ``thresholds`` and ``dataset_counts``). Its ``face_alignment/inference.py`` has a different, unused
#: table (``filter_images_by_threshold``: 0.7 for CelebA/LFW/CelebChild), not these.
NTIRE2025_ID_THRESHOLDS: dict[str, float] = {"CelebA": 0.5, "LFW-Test": 0.6, "CelebChild-Test": 0.6,
                                             "Wider-Test": 0.3, "WebPhoto-Test": 0.3}
NTIRE2025_SET_SIZES: dict[str, int] = {"CelebA": 100, "LFW-Test": 100, "CelebChild-Test": 50, "WebPhoto-Test": 100,
                                       "Wider-Test": 100}
NTIRE2025_SOURCE = "zhengchen1999/NTIRE2025_RealWorld_Face_Restoration eval.py@3b1903d3d57245268a14c5c36f0b0d789add55fe"


def identity_threshold(set_name: str, thresholds: dict[str, float] | None = None) -> float:
    """The identity threshold of test set ``set_name`` (default table: :data:`NTIRE2025_ID_THRESHOLDS`)."""
    table = NTIRE2025_ID_THRESHOLDS if thresholds is None else thresholds
    if set_name not in table:
        raise ConfigError(f"no identity threshold for test set {set_name!r} (known: {', '.join(sorted(table))})")
    return float(table[set_name])


def low_identity_counts(values_by_set: dict[str, list[float]], thresholds: dict[str, float] | None = None
                        ) -> dict[str, int]:
    """``{set: number of values below the set's threshold}`` plus ``"All"`` (their sum), as ``eval.py`` counts
    ``low_ID_Sim`` (strictly below; NaN, a face that could not be scored, is not counted, as a failed comparison
    is never below a threshold there either; report failures separately)."""
    out = {}
    for name, values in values_by_set.items():
        t = identity_threshold(name, thresholds)
        out[name] = int(sum(1 for v in values if float(v) < t))
    out["All"] = sum(out.values())
    return out


#: identity-input backends: option value -> display tag
_INPUT_TAGS = {"adaface": "AdaFace", "arcface": "ArcFace", "dlib": "dlib"}


class IdentityInput(FaceMetric):
    """Identity to the input: cosine between the AdaFace (default, as NTIRE 2025), ArcFace (insightface) or dlib
    embeddings of the restored face and of the **LQ input** it was restored from; no ground truth.

    Call ``compute(pred, lq)``: both uint8 RGB ``(N, 3, H, W)`` aligned face crops (``lq`` may be smaller; it is
    never resized: alignment points scale with each image). :attr:`needs_input` tells the runner to pass the LQ
    input as the second argument. Column ``identity_input_cos`` in ``[-1, 1]``, higher is better, labelled
    ``ID-LQ(AdaFace)`` / ``ID-LQ(ArcFace)`` / ``ID-LQ(dlib)``; compare numbers only within one backend.

    ``backend="adaface"``: NTIRE's procedure (:mod:`evaluation.adaface`): both images aligned by
    :func:`~evaluation.adaface.ntire_align` with the same five points, here the mean FFHQ-aligned positions
    (:data:`celebref.face.insightface_backend.ALIGNED_POINTS5`) times each image's size, since aligned crops carry
    no per-image points (NTIRE reads per-image points from its own CSV); the score is the dot product of the unit
    features (NTIRE's ``ID_Sim``). ``"arcface"``/``"dlib"``: the face backend's ``embed_aligned`` of each image
    (its detector's largest face, else the aligned-face prior), as the ``identity`` metric's aligned mode.
    Per-set thresholds and the below-threshold count: :func:`low_identity_counts`.
    """

    name = "identity-input"
    columns = ("identity_input_cos",)
    higher_is_better = {"identity_input_cos": True}
    needs_reference = False
    needs_input = True
    #: the default backend's checkpoint; an instance with backend arcface/dlib needs none (``self.weights = ()``)
    weights = ("adaface-ir50-ms1mv2",)
    defaults = {"backend": "adaface"}

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        if self.options["backend"] not in _INPUT_TAGS:
            raise ConfigError(f"identity-input backend must be one of {', '.join(_INPUT_TAGS)}, "
                              f"got {self.options['backend']!r}")
        self.weights = ("adaface-ir50-ms1mv2",) if self.options["backend"] == "adaface" else ()
        self.loaded = False
        self.embedder = None

    def _load(self) -> None:
        if self.options["backend"] != "adaface":
            super()._load()  # "arcface" is the insightface face backend's alias
            return
        from celebref import weights

        from .adaface import WEIGHT_NAME, AdaFaceEmbedder, load_adaface

        path = weights.weight_path(WEIGHT_NAME)
        self.embedder = AdaFaceEmbedder(load_adaface(path, self.device), self.device)

    def backend_tag(self) -> str:
        return _INPUT_TAGS[self.options["backend"]]

    def column_labels(self) -> dict[str, str]:
        return {"identity_input_cos": f"ID-LQ({self.backend_tag()})"}

    def _describe(self) -> dict:
        face = ({"backend": "adaface", "model": "AdaFace IR-50 (adaface-ir50-ms1mv2)",
                 "alignment": "NTIRE warp_and_crop_face, FFHQ-aligned prior points scaled to each image",
                 "input": "BGR, ((x/255)-0.5)/0.5, 112x112"}
                if self.options["backend"] == "adaface" else self._backend_info())
        return {"face": face, "second_input": "the method's LQ input (not ground truth)",
                "labels": self.column_labels(), "columns_meaning": {"identity_input_cos": "cosine of unit embeddings"},
                "thresholds": {"ntire2025": NTIRE2025_ID_THRESHOLDS, "source": NTIRE2025_SOURCE}}

    def _adaface_embed(self, arrs: list[np.ndarray]) -> np.ndarray:
        from celebref.face.insightface_backend import ALIGNED_POINTS5

        from .adaface import ntire_align

        crops = [ntire_align(a, ALIGNED_POINTS5 * np.array([a.shape[1], a.shape[0]], np.float64)) for a in arrs]
        return self.embedder.embed_crops(crops).astype(np.float64)

    def _compute(self, pred, lq):
        preds, lqs = to_arrays(pred), to_arrays(lq)
        cos = np.full(len(preds), np.nan)
        if self.options["backend"] == "adaface":
            ep, el = self._adaface_embed(preds), self._adaface_embed(lqs)
            cos[:] = np.clip(np.einsum("nd,nd->n", ep, el), -1.0, 1.0)
            return {"identity_input_cos": torch.from_numpy(cos)}
        for i, (p, q) in enumerate(zip(preds, lqs)):
            try:
                ep = np.asarray(self.backend.embed_aligned(p), np.float64)
                el = np.asarray(self.backend.embed_aligned(q), np.float64)
            except CelebrefError as e:
                self.last_failures[i] = f"face analysis failed: {e}"
                continue
            cos[i] = float(np.clip(np.dot(ep / np.linalg.norm(ep), el / np.linalg.norm(el)), -1.0, 1.0))
        return {"identity_input_cos": torch.from_numpy(cos)}
