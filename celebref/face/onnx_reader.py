"""A minimal reader of ONNX model files: the graph's nodes (op type, inputs, outputs, scalar/int-list attributes)
and its initializers as numpy arrays, parsed straight from the protobuf wire format, so that loading ONNX weights
into a torch network needs neither the ``onnx`` package nor onnxruntime.

Only what a feed-forward CNN exported by ``torch.onnx.export`` uses is read (ONNX ``ModelProto`` field numbers:
``graph`` 7; ``GraphProto``: ``node`` 1, ``initializer`` 5; ``NodeProto``: ``input`` 1, ``output`` 2, ``name`` 3,
``op_type`` 4, ``attribute`` 5; ``AttributeProto``: ``name`` 1, ``f`` 2, ``i`` 3, ``ints`` 8; ``TensorProto``:
``dims`` 1, ``data_type`` 2, ``float_data`` 4, ``int64_data`` 7, ``name`` 8, ``raw_data`` 9, ``double_data`` 10,
``data_location`` 14). Tensors stored as external data are refused with a clear error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import FaceAnalysisError

# ONNX TensorProto.DataType -> numpy dtype (the ones weights use)
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
           10: np.float16, 11: np.float64}


@dataclass
class OnnxNode:
    """One graph node: ``op_type`` (e.g. ``"Conv"``), input/output value names, attributes (float, int, int list)."""

    op_type: str
    inputs: list[str]
    outputs: list[str]
    name: str = ""
    attrs: dict[str, object] = field(default_factory=dict)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yield ``(field_number, wire_type, value)``; value is an int (varint/fixed) or bytes (length-delimited)."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise FaceAnalysisError(f"unsupported protobuf wire type {wt} (not an ONNX file?)")
        yield num, wt, val


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _packed_varints(val, wt) -> list[int]:
    if wt == 0:
        return [_signed(val)]
    out, pos = [], 0
    while pos < len(val):
        v, pos = _varint(val, pos)
        out.append(_signed(v))
    return out


def _tensor(buf: bytes) -> tuple[str, np.ndarray]:
    dims: list[int] = []
    dtype, name, raw = 1, "", None
    floats: list[float] = []
    ints: list[int] = []
    doubles: list[float] = []
    for num, wt, val in _fields(buf):
        if num == 1:
            dims += _packed_varints(val, wt)
        elif num == 2:
            dtype = val
        elif num == 4:
            floats += struct.unpack(f"<{len(val) // 4}f", val) if wt == 2 else struct.unpack("<f", val)
        elif num == 7:
            ints += _packed_varints(val, wt)
        elif num == 8:
            name = bytes(val).decode()
        elif num == 9:
            raw = val
        elif num == 10:
            doubles += struct.unpack(f"<{len(val) // 8}d", val) if wt == 2 else struct.unpack("<d", val)
        elif num == 14 and val == 1:
            raise FaceAnalysisError(f"ONNX initializer {name or '?'} is stored as external data (not supported)")
    if dtype not in _DTYPES:
        raise FaceAnalysisError(f"ONNX initializer {name!r} has unsupported data type {dtype}")
    np_dtype = _DTYPES[dtype]
    if raw is not None:
        arr = np.frombuffer(raw, dtype=np.dtype(np_dtype).newbyteorder("<")).astype(np_dtype)
    elif floats:
        arr = np.asarray(floats, dtype=np_dtype)
    elif doubles:
        arr = np.asarray(doubles, dtype=np_dtype)
    else:
        arr = np.asarray(ints, dtype=np_dtype)
    return name, arr.reshape(dims)


def _attribute(buf: bytes) -> tuple[str, object]:
    name, value, ints = "", None, []
    for num, wt, val in _fields(buf):
        if num == 1:
            name = bytes(val).decode()
        elif num == 2:
            value = struct.unpack("<f", val)[0]
        elif num == 3:
            value = _signed(val)
        elif num == 8:
            ints += _packed_varints(val, wt)
    return name, (ints if ints else value)


def _node(buf: bytes) -> OnnxNode:
    node = OnnxNode("", [], [])
    for num, _, val in _fields(buf):
        if num == 1:
            node.inputs.append(bytes(val).decode())
        elif num == 2:
            node.outputs.append(bytes(val).decode())
        elif num == 3:
            node.name = bytes(val).decode()
        elif num == 4:
            node.op_type = bytes(val).decode()
        elif num == 5:
            k, v = _attribute(val)
            node.attrs[k] = v
    return node


def read_onnx(path: str | Path) -> tuple[list[OnnxNode], dict[str, np.ndarray]]:
    """``(nodes in graph order, {initializer name: array})`` of the ONNX model file at ``path``."""
    try:
        data = memoryview(Path(path).read_bytes())  # slices of a memoryview are views: no per-field copies
    except OSError as exc:
        raise FaceAnalysisError(f"cannot read ONNX file {path}: {exc.strerror or exc}") from None
    graph = None
    try:
        for num, wt, val in _fields(data):
            if num == 7 and wt == 2:
                graph = val
        if graph is None:
            raise FaceAnalysisError(f"{path}: no graph in this file (not an ONNX model?)")
        nodes, inits = [], {}
        for num, wt, val in _fields(graph):
            if num == 1:
                nodes.append(_node(val))
            elif num == 5:
                name, arr = _tensor(val)
                inits[name] = arr
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as exc:
        raise FaceAnalysisError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    return nodes, inits
