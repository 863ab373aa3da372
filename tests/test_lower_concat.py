"""A Concat of differently quantised tensors, resolved by the quantiser after it.

``quant(cat(a, b)) = cat(quant(a), quant(b))``: the quantiser is element-wise, so each input is
requantised with the quantiser's parameters of its own channels (a Thresholding, or the
thresholds of the accumulator it closes, or nothing for an identity), then the results of one
type are concatenated.  Inputs differ in bit width, signedness, scale, zero point; the output
quantiser is per tensor or per channel; two and three inputs, nested concats, feature maps and
flat vectors.  The IR equals Brevitas run in float64 on every element, and one build equals the
IR word for word in RTL.  A differently quantised concat that reaches anything but a quantiser
is one error naming the node.
"""

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

N = 200


def _v(t):
    return t.value if hasattr(t, "value") else t


def make(kind, seed=0):
    """Small Brevitas models whose Concat joins differently quantised inputs.

    The activation ranges given here make binary-fraction scales (``max_val / (2^b − 1)`` …), the
    same in float32 (the exported file) and float64 (``module.double()``, which recomputes them)."""
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn
    from brevitas.quant import ShiftedUint8ActPerTensorFloat, Uint8ActPerTensorFloatMaxInit

    torch.manual_seed(seed)

    from models import random_batchnorm as bn

    def per_channel(c, rank, bits=4):
        shape = (1, c) + (1,) * (rank - 2)
        return qnn.QuantIdentity(bit_width=bits, scaling_per_output_channel=True, per_channel_broadcastable_shape=shape,
                                 scaling_stats_permute_dims=(1, 0) + tuple(range(2, rank)), return_quant_tensor=True)

    class ConvMix(nn.Module):
        """2-bit unsigned ReLU ⧺ 4-bit signed HardTanh -> 4-bit QuantIdentity -> conv (raw output)."""
        def __init__(s, tail):
            super().__init__()
            s.tail = tail
            s.qin = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.ca = qnn.QuantConv2d(3, 4, 3, padding=1, weight_bit_width=3, bias=False)
            s.cb = qnn.QuantConv2d(3, 2, 1, weight_bit_width=4, bias=True)
            s.qa = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloatMaxInit, bit_width=2, max_val=1.5, return_quant_tensor=True)
            s.qb = qnn.QuantHardTanh(bit_width=4, min_val=-1.75, max_val=1.75, return_quant_tensor=True)
            s.qc = per_channel(6, 4, bits=3) if tail == "channel" else qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.c2 = qnn.QuantConv2d(6, 3, 3, weight_bit_width=3, bias=False)
            s.pool = nn.MaxPool2d(2)

        def forward(s, x):
            x = s.qin(x)
            y = torch.cat([_v(s.qa(s.ca(x))), _v(s.qb(s.cb(x)))], dim=1)
            if s.tail == "maxpool":
                return s.c2(s.qc(s.pool(y)))
            y = s.qc(y)
            return y if s.tail == "channel" else s.c2(y)

    class ConvAcc(nn.Module):
        """Three inputs: a raw conv accumulator, a batch-normed one and the quantised input itself -> QuantReLU."""
        def __init__(s):
            super().__init__()
            s.qin = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.ca = qnn.QuantConv2d(2, 3, 3, padding=1, weight_bit_width=3, bias=False)
            s.cb = qnn.QuantConv2d(2, 2, 1, weight_bit_width=4, bias=True)
            s.bb = bn(2, 2)
            s.q = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloatMaxInit, bit_width=3, max_val=2.625, return_quant_tensor=True)
            s.c2 = qnn.QuantConv2d(7, 2, 3, weight_bit_width=3, bias=False)

        def forward(s, x):
            x = s.qin(x)
            return s.c2(s.q(torch.cat([s.ca(x), s.bb(s.cb(x)), _v(x)], dim=1)))

    class Flat(nn.Module):
        """Flat vectors: 2-bit ReLU ⧺ 4-bit signed ⧺ 3-bit with a zero point (nested concats) -> ``out``."""
        def __init__(s, tail):
            super().__init__()
            s.tail = tail
            s.qin = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.fa = qnn.QuantLinear(8, 5, bias=True, weight_bit_width=4)
            s.fb = qnn.QuantLinear(8, 3, bias=True, weight_bit_width=3)
            s.fc = qnn.QuantLinear(8, 4, bias=False, weight_bit_width=4)
            s.qa = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloatMaxInit, bit_width=2, max_val=0.75, return_quant_tensor=True)
            s.qb = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.qz = qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat, bit_width=3, return_quant_tensor=True)
            s.q = per_channel(12, 2) if tail == "channel" else qnn.QuantHardTanh(bit_width=3, min_val=-0.75, max_val=0.75,
                                                                                    return_quant_tensor=True)
            s.fo = qnn.QuantLinear(12, 4, bias=False, weight_bit_width=4)

        def forward(s, x):
            x = s.qin(x)
            y = torch.cat([torch.cat([_v(s.qa(s.fa(x))), _v(s.qb(s.fb(x)))], dim=1), _v(s.qz(s.fc(x)))], dim=1)
            if s.tail == "output":
                return y
            if s.tail == "add":
                return s.fo(s.q(y + y))
            if s.tail == "matmul":
                return s.fo(y)
            y = s.q(y)
            return y if s.tail == "channel" else s.fo(y)

    class Scales(nn.Module):
        """Two 4-bit signed inputs of two scales -> BatchNorm (per channel, increasing) -> 3-bit unsigned QuantReLU -> linear."""
        def __init__(s):
            super().__init__()
            s.qin = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.fa = qnn.QuantLinear(6, 4, bias=True, weight_bit_width=4)
            s.fb = qnn.QuantLinear(6, 4, bias=True, weight_bit_width=4)
            s.qa = qnn.QuantHardTanh(bit_width=4, min_val=-0.875, max_val=0.875, return_quant_tensor=True)
            s.qb = qnn.QuantHardTanh(bit_width=4, min_val=-2.625, max_val=2.625, return_quant_tensor=True)
            s.q = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloatMaxInit, bit_width=3, max_val=1.3125, return_quant_tensor=True)
            s.fo = qnn.QuantLinear(8, 3, bias=False, weight_bit_width=4)
            s.bn = bn(8)
            with torch.no_grad():
                s.bn.weight.uniform_(0.3, 1.5)

        def forward(s, x):
            x = s.qin(x)
            return s.fo(s.q(s.bn(torch.cat([_v(s.qa(s.fa(x))), _v(s.qb(s.fb(x)))], dim=1))))

    models = {"conv": lambda: ConvMix("tensor"), "conv_channel": lambda: ConvMix("channel"),
              "conv_maxpool": lambda: ConvMix("maxpool"), "conv_acc": ConvAcc,
              "flat": lambda: Flat("tensor"), "flat_channel": lambda: Flat("channel"), "flat_output": lambda: Flat("output"),
              "flat_add": lambda: Flat("add"), "flat_matmul": lambda: Flat("matmul"), "scales": Scales}
    shapes = {"conv": (3, 6, 6), "conv_channel": (3, 6, 6), "conv_maxpool": (3, 6, 6), "conv_acc": (2, 5, 5),
              "scales": (6,)}
    model = models[kind]()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():       # per-channel output scales that differ channel by channel (the learnt value, and
        for name, m in model.named_modules():       # the statistics buffer an untrained module uses in eval mode)
            if name.endswith("scaling_impl") and hasattr(m, "buffer") and m.value.numel() > 1:
                s = torch.rand(m.value.shape, generator=g, dtype=m.value.dtype) * 0.5 + 0.1
                m.value.copy_(s)
                m.buffer.copy_(s)
    return model.eval(), shapes.get(kind, (8,))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import torch

    import hwgen
    d = tmp_path_factory.mktemp("concat")
    cache = {}

    def get(kind):
        if kind not in cache:
            model, shape = make(kind, seed=5)
            path = str(d / f"{kind}.onnx")
            hwgen.export_brevitas(model, torch.randn(1, *shape), path, progress=False)
            cache[kind] = (model, path)
        return cache[kind]
    return get


def _brevitas64(model, x):
    import copy

    import torch
    with torch.no_grad():
        return _v(copy.deepcopy(model).double()(torch.from_numpy(x.astype(np.float64)))).numpy()


CASES = {  # kind -> the compute layers lowering builds
    "conv": ["SlidingWindow", "MVAU", "MVAU", "Thresholding", "Thresholding", "Concat", "SlidingWindow", "MVAU"],
    "conv_channel": ["SlidingWindow", "MVAU", "MVAU", "Thresholding", "Thresholding", "Concat"],
    "conv_acc": ["SlidingWindow", "MVAU", "MVAU", "Thresholding", "Concat", "SlidingWindow", "MVAU"],
    "flat": ["MVAU", "MVAU", "MVAU", "Thresholding", "Thresholding", "Thresholding", "Concat", "MVAU"],
    "flat_channel": ["MVAU", "MVAU", "MVAU", "Thresholding", "Thresholding", "Thresholding", "Concat"],
    "scales": ["MVAU", "MVAU", "Thresholding", "Thresholding", "Concat", "MVAU"],
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_ir_equals_brevitas_float64(exported, kind):
    import zlib

    import hwgen
    from hwgen.host import apply_head, apply_tail, random_inputs
    from hwgen.lower import lower
    model, path = exported(kind)
    g = lower(hwgen.load(path))
    assert [l.kind for l in g.layers] == CASES[kind]
    cat = next(l for l in g.layers if l.kind == "Concat")
    assert cat.n_inputs == (3 if kind.startswith(("flat", "conv_acc")) else 2)
    seed = zlib.crc32(kind.encode()) % 10_000
    print(f"seed {seed}")
    x = random_inputs(g.head, N, np.random.default_rng(seed)).astype(np.float32)
    ir = apply_tail(g.tail, g.execute(apply_head(g.head, x)))
    ref = _brevitas64(model, x)
    assert ir.shape == ref.shape
    # the host tail's scales are the file's float32 ones: far below one output step, and no float32 tie
    np.testing.assert_allclose(ir, ref, rtol=0, atol=1e-6 * max(1.0, float(np.abs(ref).max())))
    assert len(np.unique(ref)) > 8          # not a constant or saturated output


def test_concat_integers_equal_the_quantiser(exported):
    """The concat's integers are the output quantiser's, channel by channel (per-channel scales)."""
    import copy

    import torch

    import hwgen
    from hwgen.host import apply_head, random_inputs
    from hwgen.lower import lower
    model, path = exported("flat_channel")
    g = lower(hwgen.load(path))
    cat = next(l for l in g.layers if l.kind == "Concat")
    assert g.int_outputs[cat.name] == g.tail["output_name"]
    assert not any(l.kind == "Thresholding" and l.name in g.int_outputs for l in g.layers)
    x = random_inputs(g.head, N, np.random.default_rng(11)).astype(np.float32)
    print("seed 11")
    ints = g.execute(apply_head(g.head, x))
    m = copy.deepcopy(model).double()
    with torch.no_grad():
        xq = m.qin(torch.from_numpy(x.astype(np.float64)))
        q = m.q(torch.cat([_v(m.qa(m.fa(xq))), _v(m.qb(m.fb(xq))), _v(m.qz(m.fc(xq)))], 1))
    np.testing.assert_array_equal(ints, q.int().numpy())
    assert len(np.unique(q.scale.numpy())) == 12


def test_equal_inputs_keep_one_concat(tmp_path):
    """Inputs of one shared quantiser: the plain Concat of today, no thresholds."""
    from models import export_branchy

    import hwgen
    from hwgen.lower import lower
    export_branchy("concat_cnn", str(tmp_path / "c.onnx"), seed=0)
    kinds = [l.kind for l in lower(hwgen.load(str(tmp_path / "c.onnx"))).layers]
    assert kinds.count("Concat") == 1 and "Thresholding" not in kinds


ACCEPTED = ("accepted: a quantiser after the Concat (QuantIdentity, QuantReLU, …: Quant, BipolarQuant, MultiThreshold; "
            "per-channel element-wise ops between them), or inputs sharing one quantiser")
REFUSED = {
    "flat_output": "output cat_1: is a concatenation of differently quantised tensors (node node_cat_1); " + ACCEPTED,
    "flat_matmul": "node node_linear_3 (Gemm, module fo: QuantLinear): its input cat_1 is a concatenation of differently "
                   "quantised tensors (node node_cat_1); " + ACCEPTED,
    "flat_add": "node node_add (Add): its input cat_1 is a concatenation of differently quantised tensors "
                "(node node_cat_1); " + ACCEPTED,
    "conv_maxpool": "node node_max_pool2d (MaxPool, module pool: MaxPool2d): its input cat is a concatenation of "
                    "differently quantised tensors (node node_cat); " + ACCEPTED,
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_refused_elsewhere(exported, kind):
    import hwgen
    from hwgen.errors import UnsupportedError
    from hwgen.lower import lower
    _, path = exported(kind)
    with pytest.raises(UnsupportedError) as e:
        lower(hwgen.load(path))
    assert str(e.value) == REFUSED[kind]


@pytest.mark.sim
@pytest.mark.e2e
def test_rtl(exported, tmp_path):
    """Thresholdings, closed accumulators and the quantised input itself into one Concat: RTL = IR."""
    import hwgen
    from hwgen.host import random_inputs
    model, path = exported("conv_acc")
    b = hwgen.build(path, str(tmp_path / "b"), fps=1e5, progress=False)
    assert [l.kind for l in b.graph.compute_layers].count("Concat") == 1
    seed = 4242
    print(f"seed {seed}")
    x = random_inputs(b.graph.head, 12, np.random.default_rng(seed)).astype(np.float32)
    r = hwgen.verify(b.out_dir, inputs=x, sim="verilator", seed=seed, progress=False)
    assert r.ok and r.mismatches == 0
    np.testing.assert_array_equal(r.outputs_int, r.expected_int)
    ref = _brevitas64(model, x)
    np.testing.assert_allclose(r.outputs.reshape(ref.shape), ref, rtol=0, atol=1e-5 * max(1.0, float(np.abs(ref).max())))


def test_multithreshold_after_concat(tmp_path):
    """A hand-made QONNX graph: MultiThreshold (one row of thresholds per channel) after a concat of
    3-bit unsigned, 4-bit signed (with a bias) and the 4-bit input itself, against numpy in float64."""
    import onnx

    import hwgen
    from hwgen.host import apply_head, apply_tail
    from hwgen.lower import lower
    from qonnx_builder import GraphBuilder
    seed = 23
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    wa, wb = rng.uniform(-0.7, 0.7, (6, 4)), rng.uniform(-0.7, 0.7, (6, 3))
    bias = rng.uniform(-0.5, 0.5, 3)
    T = np.sort(rng.uniform(-1.5, 1.5, (13, 3)), axis=1)
    b = GraphBuilder((1, 6))
    x0 = b.act(0.25, bits=4)
    b.matmul(wa, 0.1, 4)
    a = b.act(0.5, bits=3, signed=False)
    b.cur = x0
    b.matmul(wb, 0.1, 4, bias=bias)
    bq = b.act(0.375, bits=4)
    b.cur = b.node("Concat", [a, bq, x0], axis=1)
    b.multithreshold(T, out_dtype="UINT2")
    path = str(tmp_path / "mt.onnx")
    onnx.save(b.model((1, 13)), path)
    g = lower(hwgen.load(path))
    assert [l.kind for l in g.layers] == ["MVAU", "MVAU", "Thresholding", "Thresholding", "Thresholding", "Concat"]
    x = rng.uniform(-2.5, 2.5, (300, 6))

    def q(v, s, bits, signed=True, narrow=False):
        lo, hi = (-(1 << (bits - 1)) + narrow, (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        return np.clip(np.round(v / s), lo, hi) * s

    f32 = lambda v: np.float32(v).astype(np.float64)      # noqa: E731 - the file's float32 constants
    xq = q(x.astype(np.float32).astype(np.float64), 0.25, 4)
    ya = q(xq @ q(f32(wa), f32(0.1), 4, narrow=True), 0.5, 3, signed=False)
    yb = q(xq @ q(f32(wb), f32(0.1), 4, narrow=True) + f32(bias), 0.375, 4)
    cat = np.concatenate([ya, yb, xq], axis=1)
    ref = (cat[:, :, None] >= f32(T)[None]).sum(-1)
    ir = apply_tail(g.tail, g.execute(apply_head(g.head, x.astype(np.float32))))
    np.testing.assert_array_equal(ir, ref)
    assert len(np.unique(ref)) == 4
