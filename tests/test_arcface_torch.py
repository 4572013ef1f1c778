"""ArcFace on the metric's device (issue 23.5): the torch IResNet-50 fed from an ONNX file's initializers gives
the same embeddings as today's onnxruntime CPU path.

The ONNX file is synthetic but of w600k_r50's architecture and naming: our arcface_torch-layout IResNet-50 with
deterministic synthetic weights, exported in eval mode by torch's TorchScript exporter as insightface's
``torch2onnx.py`` does (BatchNorms after convs folded into the convs, generated initializer names).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from celebref.face.base import Detection, FaceAnalysisError
from celebref.face.iresnet import IResNet, iresnet50_from_onnx

pytest.importorskip("onnx", reason="torch.onnx.export needs the onnx package (pip install onnx)")
pytest.importorskip("onnxruntime", reason="the reference path runs onnxruntime")

TOL = 1e-5  # issue 23.5: embeddings equal to 1e-5


def _export(net: torch.nn.Module, path, fold: bool = True) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, 3, 112, 112), str(path), dynamo=False, input_names=["input.1"],
                          opset_version=11, dynamic_axes={"input.1": {0: "None"}}, do_constant_folding=fold)


@pytest.fixture(scope="module")
def buffalo(tmp_path_factory, synth_weights):
    net = IResNet().eval()
    spec = [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in net.state_dict().items()]
    net.load_state_dict(synth_weights.synth_state_dict(spec, "arcface-onnx-1"))
    root = tmp_path_factory.mktemp("buffalo_l")
    _export(net, root / "w600k_r50.onnx")
    (root / "det_10g.onnx").write_bytes(b"")  # never loaded: embed_batch is given detections
    return root, net


def _crops_and_dets(mini_dir, n=4):
    from celebref.imageio import read_image

    paths = sorted((mini_dir / "hq").rglob("*.png"))[:n]
    imgs = [read_image(p) for p in paths]
    from celebref.face.insightface_backend import ALIGNED_POINTS5

    dets = [Detection((0, 0, 511, 511), 1.0, ALIGNED_POINTS5 * np.array(im.shape[1::-1]), "t", "t") for im in imgs]
    return imgs, dets


def test_export_is_folded_like_w600k_r50(buffalo):
    from celebref.face.onnx_reader import read_onnx

    nodes, inits = read_onnx(buffalo[0] / "w600k_r50.onnx")
    ops = [n.op_type for n in nodes]
    assert ops.count("Conv") == 1 + 2 * 24 + 4 and ops.count("PRelu") == 25 and ops.count("Gemm") == 1
    assert ops.count("BatchNormalization") == 24 + 2  # only the BNs that do not follow a conv remain
    assert not any(k.startswith("layer") and "conv" in k for k in inits)  # folded tensors get generated names
    assert iresnet50_from_onnx(buffalo[0] / "w600k_r50.onnx").fused


def test_torch_embeddings_equal_onnxruntime(buffalo, mini_dir):
    from celebref.face.insightface_backend import InsightFaceBackend

    root, _ = buffalo
    imgs, dets = _crops_and_dets(mini_dir)
    ort_be = InsightFaceBackend(root=root, device="cpu", embedder="onnxruntime")
    torch_be = InsightFaceBackend(root=root, device="cpu", embedder="torch")
    assert InsightFaceBackend(root=root, device="cpu").embedder == "onnxruntime"  # auto on the CPU: as today
    e_ort, e_torch = ort_be.embed_batch(imgs, dets), torch_be.embed_batch(imgs, dets)
    assert e_ort.shape == e_torch.shape == (len(imgs), 512)
    assert np.allclose(np.linalg.norm(e_torch, axis=1), 1.0, atol=1e-6)
    assert np.abs(e_ort - e_torch).max() < TOL
    # different faces give different embeddings (the comparison is not trivially equal)
    assert np.abs(e_ort[0] - e_ort[1]).max() > 100 * TOL
    assert "runtime=torch" in torch_be.models["embedding"]


def test_unfolded_export_loads_too(buffalo, tmp_path):
    """An export that keeps the BatchNorms after convs (no folding) maps onto the unfused modules."""
    _, net = buffalo
    _export(net, tmp_path / "unfolded.onnx", fold=False)
    loaded = iresnet50_from_onnx(tmp_path / "unfolded.onnx")
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32))
    if loaded.fused:  # this torch folded anyway: the folded loader was exercised above
        pytest.skip("torch's exporter folded BatchNorms even without constant folding")
    with torch.no_grad():
        a, b = net(x), loaded(x)
    assert torch.allclose(torch.nn.functional.normalize(a), torch.nn.functional.normalize(b), atol=TOL)


class _InGraphNormalisation(torch.nn.Module):
    """An mxnet-era style model that normalises inside the graph (Mul, Sub): must be refused, not mis-fed."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return self.conv(x * 0.0078125 - 1.0)


def test_other_graph_is_refused_in_one_line(tmp_path):
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.PReLU(8)).eval()
    _export(small, tmp_path / "small.onnx")
    with pytest.raises(FaceAnalysisError, match="not an ArcFace IResNet-50 graph") as e:
        iresnet50_from_onnx(tmp_path / "small.onnx")
    assert "\n" not in str(e.value)
    _export(_InGraphNormalisation().eval(), tmp_path / "scaled.onnx")
    with pytest.raises(FaceAnalysisError, match="unexpected operators .*Mul"):
        iresnet50_from_onnx(tmp_path / "scaled.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xff\xff")
    with pytest.raises(FaceAnalysisError):
        iresnet50_from_onnx(tmp_path / "junk.onnx")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_embeddings_on_cuda_equal_onnxruntime(buffalo, mini_dir):  # pragma: no cover - GPU only
    from celebref.face.insightface_backend import InsightFaceBackend

    root, _ = buffalo
    imgs, dets = _crops_and_dets(mini_dir)
    cuda_be = InsightFaceBackend(root=root, device="cuda")
    assert cuda_be.embedder == "torch"
    e_ort = InsightFaceBackend(root=root, device="cpu", embedder="onnxruntime").embed_batch(imgs, dets)
    assert np.abs(e_ort - cuda_be.embed_batch(imgs, dets)).max() < TOL
