"""ArcFace IResNet-50 in torch, fed from insightface's ONNX file (buffalo_l ``w600k_r50.onnx``), so the identity
embedding can run on the metric's device (CUDA) instead of onnxruntime on the CPU.

Architecture (facts from insightface ``recognition/arcface_torch/backbones/iresnet.py``, ``iresnet50``): a 3x3
stem conv 3->64 (stride 1) + BatchNorm + PReLU; four stages of ``IBasicBlock`` with 3, 4, 14, 3 blocks and 64,
128, 256, 512 channels, the first block of each stage strided 2 (stride on its second conv) with a 1x1 conv + BN
shortcut; each block is ``BN -> conv3x3 -> BN -> PReLU -> conv3x3(stride) -> BN`` plus the shortcut; then BN,
flatten (512x7x7), ``Linear(25088, 512)`` and ``BatchNorm1d(512)``. Every BatchNorm has eps 1e-5. Module names
follow arcface_torch (``layer3.13.conv2`` ...).

Loading from ONNX (:func:`iresnet50_from_onnx`): insightface exported the network with ``torch.onnx.export`` in
eval mode (``recognition/arcface_torch/torch2onnx.py``), and torch's exporter folds each BatchNorm that follows a
conv into that conv (weight and a new bias) and gives the folded tensors generated names (numbers in old torch
releases, ``onnx::Conv_123`` in new ones). Initializer names therefore carry no module names, and the mapping is
**structural**: convs are told apart by kernel size (3x3: stem, then each block's two convs in data order; 1x1:
the four shortcuts), PReLU slopes and the BatchNorms that do not follow a conv (each block's first BN, the BN
before the fc, the feature BN) are taken in graph order, the fc is the one ``Gemm`` (or ``MatMul`` + ``Add``).
Every shape and conv stride/padding is checked against the module it fills, so a different graph is refused with
a one-line error, not mis-loaded. A BatchNorm that still follows a conv (an export without folding) is loaded as
such (``fused=False``).

Input convention (:meth:`ArcFaceTorch.embed_crops`, as insightface's ``ArcFaceONNX.get_feat``): 112x112 **RGB**
crops (``get_feat`` receives BGR and swaps to RGB with ``blobFromImages(..., swapRB=True)``), float
``(x - 127.5) / 127.5``, NCHW; the output is the 512-d feature, which callers L2-normalise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .base import FaceAnalysisError, l2_normalise
from .onnx_reader import OnnxNode, read_onnx

LAYERS_50 = (3, 4, 14, 3)
WIDTHS = (64, 128, 256, 512)
EPS = 1e-5


def _bn(c: int, fused: bool) -> nn.Module:
    return nn.Identity() if fused else nn.BatchNorm2d(c, eps=EPS)


class IBasicBlock(nn.Module):
    """arcface_torch's block; ``fused``: the BNs after convs are folded into the convs (which then have biases)."""

    def __init__(self, inplanes: int, planes: int, stride: int, fused: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=EPS)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=fused)
        self.bn2 = _bn(planes, fused)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=fused)
        self.bn3 = _bn(planes, fused)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=fused), _bn(planes, fused))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """IResNet (default: IResNet-50) for 112x112 inputs; ``forward`` maps ``(N, 3, 112, 112)`` to ``(N, 512)``
    unnormalised features."""

    def __init__(self, layers: Sequence[int] = LAYERS_50, num_features: int = 512, fused: bool = False):
        super().__init__()
        self.fused = fused
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=fused)
        self.bn1 = _bn(64, fused)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for i, (n, planes) in enumerate(zip(layers, WIDTHS)):
            blocks = [IBasicBlock(inplanes, planes, 2, fused)] + [IBasicBlock(planes, planes, 1, fused)
                                                                  for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(512, eps=EPS)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(torch.flatten(self.bn2(x), 1)))

    def blocks(self) -> list[IBasicBlock]:
        return [b for i in range(1, 5) for b in getattr(self, f"layer{i}")]


# --- ONNX -> modules ------------------------------------------------------------------------------------------

#: every operator a torch export of this network may contain (anything else is refused, not ignored)
_KNOWN_OPS = frozenset({"Conv", "BatchNormalization", "PRelu", "Add", "Flatten", "Reshape", "Gemm", "MatMul",
                        "Unsqueeze", "Squeeze", "Identity", "Constant", "Shape", "Gather", "Concat", "Dropout"})


def _fail(path, msg: str) -> FaceAnalysisError:
    return FaceAnalysisError(f"{path}: not an ArcFace IResNet-50 graph ({msg})")


def _set(param: torch.Tensor, value: np.ndarray, what: str, path) -> None:
    if tuple(value.shape) != tuple(param.shape):
        raise _fail(path, f"{what}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))


def _load_bn(bn: nn.BatchNorm2d | nn.BatchNorm1d, node: OnnxNode, inits, path, what: str) -> None:
    scale, bias, mean, var = (inits[n] for n in node.inputs[1:5])
    for param, value, part in ((bn.weight, scale, "scale"), (bn.bias, bias, "B"), (bn.running_mean, mean, "mean"),
                               (bn.running_var, var, "var")):
        _set(param, value, f"{what} BatchNormalization {part}", path)
    bn.eps = float(node.attrs.get("epsilon", 1e-5))


def _load_conv(conv: nn.Conv2d, bn: nn.Module, node: OnnxNode, bn_node: OnnxNode | None, inits, path, what) -> None:
    stride = list(node.attrs.get("strides", [1, 1]))
    pads = list(node.attrs.get("pads", [0, 0, 0, 0]))
    if stride != list(conv.stride) or pads != list(conv.padding) * 2:
        raise _fail(path, f"{what}: conv strides {stride} pads {pads}, expected {list(conv.stride)} "
                          f"{list(conv.padding) * 2}")
    _set(conv.weight, inits[node.inputs[1]], f"{what} conv weight", path)
    has_bias = len(node.inputs) > 2 and node.inputs[2] in inits
    if (conv.bias is not None) != has_bias or (bn_node is None) == isinstance(bn, nn.BatchNorm2d):
        raise _fail(path, f"{what}: conv bias / following BatchNorm do not match a {'' if has_bias else 'un'}fused export")
    if has_bias:
        _set(conv.bias, inits[node.inputs[2]], f"{what} conv bias", path)
    if bn_node is not None:
        _load_bn(bn, bn_node, inits, path, what)


def iresnet50_from_onnx(path: str | Path) -> IResNet:
    """An :class:`IResNet` (eval mode, float32, CPU) holding the weights of the ArcFace IResNet-50 ONNX file at
    ``path`` (mapping: module docstring). Raises :class:`FaceAnalysisError` with one line if the graph differs."""
    nodes, inits = read_onnx(path)
    other = sorted({n.op_type for n in nodes} - _KNOWN_OPS)
    if other:  # e.g. mxnet-era models that normalise inside the graph (Sub/Mul): not this network
        raise _fail(path, f"unexpected operators {', '.join(other)}")
    for n in nodes:  # constants reshaped in the graph (an unfolded export's PReLU slopes): follow them
        if n.op_type in ("Unsqueeze", "Squeeze", "Identity") and n.inputs and n.inputs[0] in inits:
            inits[n.outputs[0]] = inits[n.inputs[0]]
    consumers: dict[str, list[OnnxNode]] = {}
    for n in nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    convs = [n for n in nodes if n.op_type == "Conv"]
    conv_bn: dict[int, OnnxNode] = {}
    for k, c in enumerate(convs):
        nxt = consumers.get(c.outputs[0], [])
        if len(nxt) == 1 and nxt[0].op_type == "BatchNormalization":
            conv_bn[k] = nxt[0]
    followed = {id(b) for b in conv_bn.values()}
    free_bns = [n for n in nodes if n.op_type == "BatchNormalization" and id(n) not in followed]
    prelus = [n for n in nodes if n.op_type == "PRelu"]
    fused = not conv_bn
    if not fused and len(conv_bn) != len(convs):
        raise _fail(path, f"{len(conv_bn)} of {len(convs)} convs are followed by a BatchNorm")
    net = IResNet(fused=fused)
    blocks = net.blocks()
    k3 = [k for k, c in enumerate(convs) if inits.get(c.inputs[1], np.zeros((0, 0, 0, 0))).shape[2:] == (3, 3)]
    k1 = [k for k, c in enumerate(convs) if inits.get(c.inputs[1], np.zeros((0, 0, 0, 0))).shape[2:] == (1, 1)]
    want3, want1 = 1 + 2 * len(blocks), sum(b.downsample is not None for b in blocks)
    if (len(k3), len(k1), len(prelus), len(free_bns)) != (want3, want1, 1 + len(blocks), len(blocks) + 2):
        raise _fail(path, f"{len(k3)} 3x3 convs, {len(k1)} 1x1 convs, {len(prelus)} PReLU, {len(free_bns)} "
                          f"BatchNorms not after a conv; expected {want3}, {want1}, {1 + len(blocks)}, {len(blocks) + 2}")

    def conv(slot_conv, slot_bn, k, what):
        _load_conv(slot_conv, slot_bn, convs[k], conv_bn.get(k), inits, path, what)

    def prelu(module: nn.PReLU, node: OnnxNode, what: str):
        _set(module.weight, inits[node.inputs[1]].reshape(-1), f"{what} PRelu slope", path)

    conv(net.conv1, net.bn1, k3[0], "stem")
    prelu(net.prelu, prelus[0], "stem")
    downs = iter(k1)
    for i, b in enumerate(blocks):
        what = f"block {i}"
        _load_bn(b.bn1, free_bns[i], inits, path, what)
        conv(b.conv1, b.bn2, k3[1 + 2 * i], what)
        prelu(b.prelu, prelus[1 + i], what)
        conv(b.conv2, b.bn3, k3[2 + 2 * i], what)
        if b.downsample is not None:
            conv(b.downsample[0], b.downsample[1], next(downs), what + " shortcut")
    _load_bn(net.bn2, free_bns[-2], inits, path, "final")
    _load_fc(net.fc, nodes, inits, consumers, path)
    _load_bn(net.features, free_bns[-1], inits, path, "features")
    return net.eval()


def _load_fc(fc: nn.Linear, nodes, inits, consumers, path) -> None:
    gemms = [n for n in nodes if n.op_type == "Gemm"]
    if len(gemms) == 1:
        g = gemms[0]
        w = inits[g.inputs[1]]
        if g.attrs.get("transB", 0) == 0:
            w = w.T
        _set(fc.weight, w, "fc Gemm weight", path)
        _set(fc.bias, inits[g.inputs[2]], "fc Gemm bias", path)
        return
    mms = [n for n in nodes if n.op_type == "MatMul" and n.inputs[1] in inits]
    if len(mms) != 1:
        raise _fail(path, f"{len(gemms)} Gemm and {len(mms)} MatMul nodes, expected one fully connected layer")
    add = [n for n in consumers.get(mms[0].outputs[0], []) if n.op_type == "Add"]
    bias = [i for n in add for i in n.inputs if i in inits]
    if len(bias) != 1:
        raise _fail(path, "the MatMul of the fc layer has no bias Add")
    _set(fc.weight, inits[mms[0].inputs[1]].T, "fc MatMul weight", path)
    _set(fc.bias, inits[bias[0]], "fc bias", path)


class ArcFaceTorch:
    """The ArcFace embedding on a torch device: ``embed_crops`` takes 112x112 RGB uint8 crops (the ArcFace
    template alignment, :func:`celebref.face.insightface_backend.arcface_crop`) and returns unit-norm float32
    ``(N, 512)`` embeddings. ``dtype`` float32 (default) matches onnxruntime to ~1e-6."""

    def __init__(self, onnx_path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype
        self.net = iresnet50_from_onnx(onnx_path).to(self.device, dtype)

    @torch.no_grad()
    def embed_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, 512), np.float32)
        x = torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).to(self.dtype)
        out = self.net((x - 127.5) / 127.5)
        return l2_normalise(out.double().cpu().numpy())
