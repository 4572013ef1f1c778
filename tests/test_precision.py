"""The precision contract (celebref.precision), the float32 islands, channels-last conversion and the
compile-friendly box handling, on CPU.

CPU bf16 autocast runs the islands exactly as on CUDA; full reduced-precision forwards of the four
networks are left to ``benchmarks/gpu_check.sh`` (this CPU has no bf16 kernels: one 3x3 convolution is
~200x slower in bf16 than in fp32). The golden island tests here use the DMDNet debug intermediates (memory
read); the CodeFormer code choice and the DFDNet atom choice under bf16 are in their own test files.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from baselines.registry import create_method
from celebref.device import autocast, convs_to_channels_last
from celebref.errors import ConfigError
from celebref.precision import PRECISIONS, check_precision, fp32_island, precision_context

NETWORK_METHODS = ("dmdnet", "dmdnet-specific", "dfdnet", "gfpgan", "codeformer")


# -- the contract -----------------------------------------------------------------------------------
def test_check_precision_names_mode_and_owner():
    assert check_precision("bf16", PRECISIONS) == "bf16"
    with pytest.raises(ConfigError, match=r"unknown precision 'fp8'.*fp32, tf32, bf16, fp16"):
        check_precision("fp8")
    with pytest.raises(ConfigError, match=r"method 'x': precision 'fp16' is not supported \(supported: fp32, bf16\)"):
        check_precision("fp16", ("fp32", "bf16"), owner="method 'x'")


@pytest.mark.parametrize("name", NETWORK_METHODS)
def test_network_methods_declare_and_enforce_their_precisions(name):
    m = create_method(name, device="cpu", precision="bf16", landmark_policy="skip")
    assert m.precision == "bf16"
    assert "fp32" in m.precisions and set(m.precisions) <= set(PRECISIONS)
    refused = [p for p in PRECISIONS if p not in m.precisions]
    assert refused, "every network method refuses at least one mode until it is verified on a GPU"
    for p in refused:
        with pytest.raises(ConfigError, match=rf"method '{name}': precision '{p}' is not supported"):
            create_method(name, device="cpu", precision=p, landmark_policy="skip")


def test_methods_without_a_network_accept_every_precision():
    for p in PRECISIONS:
        assert create_method("lq", device="cpu", precision=p, landmark_policy="skip").precision == p


def test_precision_context_sets_tf32_and_autocast():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        with precision_context("cpu", "tf32"):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
            assert not torch.is_autocast_enabled("cpu")
        with precision_context("cpu", "fp32"):
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        with autocast(torch.device("cpu"), "bf16"):
            assert torch.is_autocast_enabled("cpu")
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16
            assert not torch.backends.cuda.matmul.allow_tf32  # islands must be exact
        with pytest.raises(ConfigError):
            with precision_context("cpu", "int8"):
                pass
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_fp32_island_is_exact_under_autocast_and_a_no_op_outside():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 300, generator=g), torch.randn(300, 64, generator=g)
    ref = a @ b

    @fp32_island()
    def mm(x, y):
        assert not torch.is_autocast_enabled("cpu")
        return x @ y

    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16  # what the island prevents
        out = mm(a.bfloat16(), b)  # inputs are cast to float32 too
        assert out.dtype == torch.float32
        assert torch.equal(mm(a, b), ref)
        with fp32_island():
            assert torch.equal(a @ b, ref)
        assert torch.is_autocast_enabled("cpu")  # restored
    assert torch.equal(mm(a, b), ref)
    assert torch.equal(out, a.bfloat16().float() @ b)


def test_fp32_island_turns_tf32_off_and_restores_it():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        with precision_context("cpu", "tf32"):
            with fp32_island():
                assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


# -- DMDNet memory read: float32 island on the golden intermediates -----------------------------------
def test_dmdnet_memory_read_scores_are_float32_under_bf16(golden_dir, synth_weights):
    from baselines.dmdnet.memory import read_memory

    d = golden_dir / "dmdnet"
    if not (d / "debug_intermediates.npz").is_file():
        pytest.skip(f"no DMDNet debug intermediates in {d}")
    dbg = np.load(d / "debug_intermediates.npz")
    spec = synth_weights.load_spec(d / "spec.json")
    salt = json.loads((d / "spec.json").read_text()).get("synth_salt", "dev-1")
    keys = [e for e in spec if e[0] in ("le_64_mem_key", "le_64_mem_value")]
    banks = synth_weights.synth_state_dict(keys, salt)
    q = torch.from_numpy(dbg["q_le64"])
    captured = {}
    orig_softmax = torch.nn.functional.softmax

    def spy(x, *a, **k):
        out = orig_softmax(x, *a, **k)
        captured["score"] = out
        return out

    import baselines.dmdnet.memory as mem

    mem.F.softmax, saved = spy, mem.F.softmax
    try:
        ref = read_memory(banks["le_64_mem_key"], banks["le_64_mem_value"], q)
        s32 = captured["score"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = read_memory(banks["le_64_mem_key"], banks["le_64_mem_value"], q.bfloat16())
        s16 = captured["score"]
    finally:
        mem.F.softmax = saved
    golden = torch.from_numpy(dbg["score_le64"]).reshape(s32.shape)
    assert (s32 - golden).abs().max() <= 1e-4  # README: memory scores atol 1e-4
    assert s16.dtype == torch.float32 and torch.isfinite(s16).all()
    # the query was rounded to bf16 before the island; the scores stay float32 softmaxes of it
    q_err = float((s16 - s32).abs().max())
    print(f"DMDNet le64 memory scores, bf16 query vs fp32: max abs {q_err:.3g}")
    assert q_err <= 5e-2
    assert torch.isfinite(out.float()).all()
    assert float((out.float() - ref).abs().max()) <= 0.1 * float(ref.abs().max())


# -- channels-last --------------------------------------------------------------------------------------
def test_channels_last_converts_4d_conv_weights_only_and_keeps_outputs():
    from baselines.dfdnet.layers import SNConv2d as DfdSN
    from baselines.dmdnet.layers import SNConv2d as DmdSN
    from baselines.gfpgan.arch import ModulatedConv2d

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.LeakyReLU(0.2), DfdSN(16, 16), DmdSN(16, 16))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, DmdSN):
                m.weight_orig.normal_(0, 0.1)
                m.weight_v.normal_()
                m.weight_u.copy_(m.weight_orig.reshape(16, -1) @ m.weight_v)
    mod = ModulatedConv2d(16, 8, 3, 32, demodulate=True, upsample=False)
    x = torch.randn(2, 3, 48, 48)
    with torch.inference_mode():
        ref = net(x)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert convs_to_channels_last(net) == 3
    assert convs_to_channels_last(mod) == 0  # the 5-D modulated weight is left alone
    assert mod.weight.dim() == 5 and mod.weight.is_contiguous()
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
        if v.dim() == 4 and "weight" in k:
            assert v.is_contiguous(memory_format=torch.channels_last), k
    with torch.inference_mode():
        out = net(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert float((out - ref).abs().max()) <= 1e-5 * max(1.0, float(ref.abs().max()))


# -- compile-friendliness: no host tensors in the DMDNet forward --------------------------------------
def test_dmdnet_boxes_are_read_without_torch_and_match_official_int_cast():
    from baselines.dmdnet import geometry

    loc = np.array([[[-0.7, 1.9, 300.2, 400.99], [10.5, -3.2, 7.0, 511.0], [0, 0, 1, 1], [5.5, 6.5, 7.5, 8.5]]], np.float32)
    got = geometry.boxes_host(loc)
    assert got.dtype == np.int32
    assert np.array_equal(got, torch.from_numpy(loc).int().numpy())  # official locs.int()
    src = open(geometry.__file__).read()
    assert "from_numpy" not in src


def test_dmdnet_encoder_trunk_traces_as_one_graph():
    """The static-shape trunk compiles with ``fullgraph=True`` (no graph break, no host tensor)."""
    from baselines.dmdnet.encoder import FeatureEncoder

    torch.manual_seed(0)
    enc = FeatureEncoder(ngf=8, key_scale=4).eval()
    for m in enc.modules():
        if hasattr(m, "weight_u"):
            with torch.no_grad():
                m.weight_orig.normal_(0, 0.1)
                m.weight_v.normal_()
                m.weight_u.copy_(m.weight_orig.reshape(m.weight_orig.shape[0], -1) @ m.weight_v)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        ref = enc.trunk(x)
        compiled = torch.compile(enc.trunk, backend="eager", fullgraph=True)
        out = compiled(x)
    for a, b in zip(ref, out):
        assert torch.equal(a, b)
