"""The weight catalogue: every external file the toolkit uses, declared once, with where it comes from,
its size/sha256 when known and its licence.

Who uses an entry is not written here: methods, metrics and face backends declare the weight names they
need in their registry entries (``weights=(...)``, :mod:`celebref.registry`), and the application layer
derives "used by" from those.

``sha256`` values were taken from public sources and cross-checked (file names that embed a prefix,
e.g. ``alexnet-owt-7be5be79.pth``, agree with the full hash; files in git repositories were hashed from
the repository blob). ``None`` means not verifiable from public sources: such files are reported as
``unverified`` rather than guessed.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Mapping

from ..errors import UnknownNameError

KINDS = ("file", "zip", "folder", "package")


@dataclass(frozen=True)
class WeightFile:
    """One external file (or folder) the toolkit uses.

    ``kind``: ``file`` (one file), ``zip`` (an archive at ``urls`` that is extracted into a folder;
    ``sha256``/``size`` describe the archive), ``folder`` (a folder of ``members`` obtained manually),
    ``package`` (a file inside an installed Python package, ``package``/``filename``).
    ``manual``: the URLs are web pages (Google Drive, Baidu) rather than direct downloads.
    ``member_sha256``: known hashes of files inside a folder/zip entry.
    ``sha256_prefix``: the leading hex digits of the sha256 that the published file name carries (torch-hub
    convention, e.g. ``musiq_koniq_ckpt-e95806b9.pth``) when the full hash is not published: a file that does
    not match it is refused, one that does is reported ``unverified``.
    """

    name: str
    filename: str
    urls: tuple[str, ...]
    licence: str
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
    sha256_prefix: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits")
        if self.sha256_prefix is not None and not re.fullmatch(r"[0-9a-f]{8,63}", self.sha256_prefix):
            raise ValueError(f"{self.name}: sha256_prefix must be 8 to 63 lowercase hex digits")

    @property
    def is_folder(self) -> bool:
        return self.kind in ("zip", "folder")


_DLIB_HOME = "https://github.com/davisking/dlib-models"
_LPIPS_COMMIT = "082bb24f84c091ea94de2867d34c4544f68e0963"
_BASICSR_COMMIT = "8d56e3a045f9fb3e1d8872f92ee4a4f07f886b0a"
_DFDNET_DRIVE = "https://drive.google.com/drive/folders/1ks_IbobH6WVQ_Jy4oWTTGjSbMZVUSbl4?usp=sharing"
_DFDNET_BAIDU = "https://pan.baidu.com/s/1K4fzjPiezVSMl5NjHoJCGQ (extraction code s9ht)"
_DFDNET_PARTS = ("left_eye", "right_eye", "nose", "mouth")
_PYIQA_HF = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"
_PYIQA_GH = "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/"
_PYIQA_LICENCE = "pyiqa weights: PolyForm Noncommercial 1.0.0 (IQA-PyTorch); trained on KonIQ-10k (research use)"
_FFHQ_LICENCE = "statistics of FFHQ images (FFHQ: CC BY-NC-SA 4.0, NVIDIA)"
_DFDNET_SIZES = (256, 128, 64, 32)

_ENTRIES: tuple[WeightFile, ...] = (
    WeightFile(
        name="dmdnet", filename="DMDNet.pth",
        urls=("https://github.com/csxmli2016/DMDNet/releases/download/v1/DMDNet.pth",),
        licence="CC BY-NC-SA 4.0", noncommercial=True,
        homepage="https://github.com/csxmli2016/DMDNet",
    ),
    WeightFile(
        name="asffnet", filename="ASFFNet512.pth",
        urls=("https://drive.google.com/file/d/13kjKkS6SQjiVYSxD4HfUhIiYv_oNGHsD/view?usp=sharing",
              "https://pan.baidu.com/s/1hGT0FgEwrzFvJUzs4CdLMA?pwd=iufd (extraction code iufd)"), manual=True,
        licence="CC BY-NC-SA 4.0 (the repository's licence; CelebRef-HQ training data: non-commercial research only)",
        noncommercial=True, homepage="https://github.com/csxmli2016/ASFFNet512",
        notes="checkpoints/ASFFNet512.pth, loaded as torch.load(...)['params'] (strict); sha256 and size not published",
    ),
    WeightFile(
        name="dfdnet-generator", filename="latest_net_G.pth",
        urls=(_DFDNET_DRIVE, _DFDNET_BAIDU), manual=True,
        licence="CC BY-NC-SA 4.0", noncommercial=True,
        homepage="https://github.com/csxmli2016/DFDNet",
        notes="it is checkpoints/facefh_dictionary/latest_net_G.pth inside the shared folder; "
              "the folder's weights/vgg19.pth only initialises the official code before this checkpoint is loaded",
    ),
    WeightFile(
        name="dfdnet-dictionary", filename="DictionaryCenter512", kind="folder",
        urls=(_DFDNET_DRIVE, _DFDNET_BAIDU), manual=True,
        members=tuple(f"{p}_{s}_center.npy" for p in _DFDNET_PARTS for s in _DFDNET_SIZES),
        licence="CC BY-NC-SA 4.0", noncommercial=True,
        homepage="https://github.com/csxmli2016/DFDNet",
        notes="it is the DictionaryCenter512 folder of the shared folder, 16 .npy files",
    ),
    WeightFile(
        name="gfpgan-v1.4", filename="GFPGANv1.4.pth",
        urls=("https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth",
              "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.4/GFPGANv1.4.pth"),
        sha256="e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        licence="Apache-2.0", homepage="https://github.com/TencentARC/GFPGAN",
    ),
    WeightFile(
        name="codeformer", filename="codeformer.pth",
        urls=("https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth",),
        size=376_637_898, sha256="1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7",
        licence="NTU S-Lab License 1.0", noncommercial=True,
        homepage="https://github.com/sczhou/CodeFormer",
    ),
    WeightFile(
        name="restoreformer", filename="RestoreFormer.pth",
        urls=("https://github.com/TencentARC/GFPGAN/releases/download/v1.3.4/RestoreFormer.pth",),
        licence="Apache-2.0", homepage="https://github.com/TencentARC/GFPGAN",
        notes="the RestoreFormer (wzhouxiff/RestoreFormer) checkpoint as released with GFPGAN "
              "(inference_gfpgan.py -v RestoreFormer; params_ema/params); sha256 not published",
    ),
    WeightFile(
        name="restoreformer++", filename="RestoreFormer++.ckpt",
        urls=("https://github.com/wzhouxiff/RestoreFormerPlusPlus/releases/download/v1.0.0/RestoreFormer++.ckpt",),
        licence="Apache-2.0", homepage="https://github.com/wzhouxiff/RestoreFormerPlusPlus",
        notes="PyTorch-Lightning checkpoint (network = state_dict entries under 'vqvae.'); sha256 not published",
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
        homepage="https://github.com/deepinsight/insightface/tree/master/model_zoo",
    ),
    WeightFile(
        name="adaface-ir50-ms1mv2", filename="adaface_ir50_ms1mv2.ckpt",
        urls=("https://drive.google.com/file/d/1eUaSHG4pGlIZK7hBkqjyp2fc2epKoBvI/view?usp=sharing",), manual=True,
        licence="code MIT (mk-minchul/AdaFace); weights trained on MS1MV2 (MS-Celeb-1M derived, withdrawn, "
                "research use only): treat as non-commercial", noncommercial=True,
        homepage="https://github.com/mk-minchul/AdaFace",
        notes="AdaFace IR-50 (the NTIRE 2025 real-world face restoration identity check; evaluation.adaface); "
              "a PyTorch Lightning checkpoint, the network is state_dict['model.*']; no size or sha256 is published",
    ),
    WeightFile(
        name="fid-inception", filename="pt_inception-2015-12-05-6726825d.pth",
        urls=("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",),
        size=95_628_359, sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        licence="Apache-2.0", homepage="https://github.com/mseitzer/pytorch-fid",
    ),
    WeightFile(
        name="fid-stats-ffhq-512-basicsr", filename="inception_FFHQ_512-f7b384ab.pth",
        urls=("https://drive.google.com/drive/folders/13cWIQyHX3iNmZRJ5v8v3kdyrT9RBTAi9?usp=sharing",
              "https://pan.baidu.com/s/10mMKXSEgrC5y7m63W5vbMQ",
              "https://drive.google.com/drive/folders/1k3RCSliF6PsujCMIdCD1hNM63EozlDIZ?usp=sharing"),
        manual=True, sha256_prefix="f7b384ab",
        licence=f"BasicSR: Apache-2.0; {_FFHQ_LICENCE}", noncommercial=True,
        homepage="https://github.com/XPixelGroup/BasicSR/blob/master/docs/Metrics.md",
        notes="FFHQ 512x512 Inception statistics, 50,000 images (BasicSR docs/Metrics.md, first two links); "
              "VQFR and the NTIRE 2025 real-world challenge link the third folder, whose file is named "
              "inception_FFHQ_512.pth (not verified to be the same bytes: check its sha256 prefix f7b384ab)",
    ),
    WeightFile(
        name="fid-stats-ffhq-512-clean", filename="ffhq_clean_trainval70k_512.npz",
        urls=(_PYIQA_HF + "ffhq_clean_trainval70k_512.npz", _PYIQA_GH + "ffhq_clean_trainval70k_512.npz",
              "https://www.cs.cmu.edu/~clean-fid/stats/ffhq_clean_trainval70k_512.npz"),
        licence=f"clean-fid statistics, redistributed by pyiqa (PolyForm Noncommercial 1.0.0); {_FFHQ_LICENCE}",
        noncommercial=True, homepage="https://github.com/GaParmar/clean-fid",
        notes="clean-fid FFHQ trainval70k 512 statistics (mu, sigma) as pyiqa's fid metric downloads them; "
              "no sha256 is published",
    ),
    WeightFile(
        name="pyiqa-musiq-koniq", filename="musiq_koniq_ckpt-e95806b9.pth",
        urls=(_PYIQA_HF + "musiq_koniq_ckpt-e95806b9.pth", _PYIQA_GH + "musiq_koniq_ckpt-e95806b9.pth"),
        sha256_prefix="e95806b9", licence=_PYIQA_LICENCE, noncommercial=True,
        homepage="https://github.com/chaofengc/IQA-PyTorch",
        notes="pyiqa 'musiq' (MUSIQ trained on KonIQ-10k; pyiqa/archs/musiq_arch.py default_model_urls['koniq10k'])",
    ),
    WeightFile(
        name="pyiqa-maniqa-koniq", filename="ckpt_koniq10k.pt",
        urls=(_PYIQA_HF + "ckpt_koniq10k.pt", _PYIQA_GH + "ckpt_koniq10k.pt"),
        licence=_PYIQA_LICENCE, noncommercial=True, homepage="https://github.com/chaofengc/IQA-PyTorch",
        notes="pyiqa 'maniqa' (MANIQA trained on KonIQ-10k; pyiqa/archs/maniqa_arch.py default_model_urls['koniq']); "
              "it holds the ViT-B/8 backbone too, so timm's ImageNet weights are not needed",
    ),
    WeightFile(
        name="clip-rn50", filename="RN50.pt",
        urls=("https://openaipublic.azureedge.net/clip/models/"
              "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",),
        sha256="afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
        licence="MIT (OpenAI CLIP)", homepage="https://github.com/openai/CLIP",
        notes="CLIP ResNet-50, the backbone of pyiqa's 'clipiqa' (the sha256 is part of OpenAI's URL and "
              "checked by CLIP's own loader)",
    ),
    WeightFile(
        name="alexnet", filename="alexnet-owt-7be5be79.pth",
        urls=("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",),
        size=244_408_911, sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        licence="BSD-3-Clause (torchvision); trained on ImageNet",
        homepage="https://github.com/pytorch/vision",
    ),
    WeightFile(
        name="vgg16", filename="vgg16-397923af.pth",
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
        size=553_433_881, sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        licence="BSD-3-Clause (torchvision); trained on ImageNet",
        homepage="https://github.com/pytorch/vision",
    ),
    WeightFile(
        name="lpips-alex-v0.1", filename="alex.pth",
        urls=(f"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/{_LPIPS_COMMIT}/lpips/weights/v0.1/alex.pth",
              "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/alex.pth"),
        size=6_009, sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        licence="BSD-2-Clause",
        homepage="https://github.com/richzhang/PerceptualSimilarity",
    ),
    WeightFile(
        name="lpips-vgg-v0.1", filename="vgg.pth",
        urls=(f"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/{_LPIPS_COMMIT}/lpips/weights/v0.1/vgg.pth",
              "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/vgg.pth"),
        size=7_289, sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        licence="BSD-2-Clause",
        homepage="https://github.com/richzhang/PerceptualSimilarity",
    ),
    WeightFile(
        name="niqe-params", filename="niqe_pris_params.npz",
        urls=(f"https://raw.githubusercontent.com/XPixelGroup/BasicSR/{_BASICSR_COMMIT}/basicsr/metrics/niqe_pris_params.npz",
              "https://raw.githubusercontent.com/XPixelGroup/BasicSR/master/basicsr/metrics/niqe_pris_params.npz"),
        size=11_850, sha256="2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
        licence="Apache-2.0 (BasicSR); parameters of the NIQE MATLAB release",
        homepage="https://github.com/XPixelGroup/BasicSR",
    ),
    WeightFile(
        name="dlib-face-detector-cnn", filename="mmod_human_face_detector.dat", kind="package",
        package="face_recognition_models", urls=(_DLIB_HOME,), licence="CC0-1.0 (dlib-models)",
        homepage=_DLIB_HOME,
    ),
    WeightFile(
        name="dlib-shape-predictor-5", filename="shape_predictor_5_face_landmarks.dat", kind="package",
        package="face_recognition_models", urls=(_DLIB_HOME,), licence="CC0-1.0 (dlib-models)",
        homepage=_DLIB_HOME,
    ),
    WeightFile(
        name="dlib-shape-predictor-68", filename="shape_predictor_68_face_landmarks.dat", kind="package",
        package="face_recognition_models", urls=(_DLIB_HOME,),
        licence="trained on iBUG 300-W, whose licence excludes commercial use (dlib-models README)",
        noncommercial=True, homepage=_DLIB_HOME,
    ),
    WeightFile(
        name="dlib-face-recognition-resnet", filename="dlib_face_recognition_resnet_model_v1.dat",
        kind="package", package="face_recognition_models", urls=(_DLIB_HOME,),
        licence="CC0-1.0 (dlib-models)", homepage=_DLIB_HOME,
    ),
)

#: name -> declaration. Tests add temporary entries with ``monkeypatch.setitem(REGISTRY, ...)``.
REGISTRY: dict[str, WeightFile] = {w.name: w for w in _ENTRIES}


def get(name: str) -> WeightFile:
    """The declaration of ``name`` (:class:`~celebref.errors.UnknownNameError` with suggestions if unknown)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownNameError("weight", name, list(REGISTRY)) from None


def entries() -> list[WeightFile]:
    """All declarations in registry order."""
    return list(REGISTRY.values())


def as_dict(w: WeightFile) -> dict:
    """A declaration as plain JSON-ready data."""
    d = dataclasses.asdict(w)
    d["member_sha256"] = dict(w.member_sha256)
    return d
