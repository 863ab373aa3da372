"""Lowering: the three references of ARCHITECTURE §2 agree on a grid of MLPs.

For every spec of :data:`models.SPECS` (mixed bit widths, bipolar weights and
activations, per-channel and power-of-two scales, float and quantised bias,
BatchNorm with negative gammas, HardTanh, narrow range):

* every hardware layer's integer output equals the integers QONNX's own
  ``execute_onnx`` computes for that quantiser (exact, every element);
* ``tail(IR.execute(head(x)))`` equals the QONNX output (float32 rounding only);
* and equals Brevitas' own float32 output.
"""

import zlib

import numpy as np
import pytest

from models import CNN_SPECS, SPECS
from refs import assert_matches_brevitas

pytestmark = pytest.mark.filterwarnings("ignore")

N = 48


@pytest.fixture(scope="module")
def exported(spec_onnx):
    return spec_onnx


def _qonnx_exec(wrapper, iname, x):
    from qonnx.core.onnx_exec import execute_onnx
    ctxs = [execute_onnx(wrapper, {iname: x[i:i + 1]}, return_full_exec_context=True) for i in range(len(x))]
    return {k: np.concatenate([c[k] for c in ctxs]) for k in ctxs[0] if np.ndim(ctxs[0][k]) > 0}


@pytest.mark.parametrize("name", sorted(SPECS) + sorted(CNN_SPECS))
def test_three_references_agree(exported, name):

    import hwgen
    from hwgen.host import apply_head, apply_tail, random_inputs
    from hwgen.lower import lower

    model, path = exported(name)
    wrapper = hwgen.load(path)
    g = lower(wrapper)
    seed = zlib.crc32(name.encode()) % 10_000
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    x = random_inputs(g.head, N, rng).astype(np.float32)
    ctx = _qonnx_exec(wrapper, g.head["input_name"], x)

    # every hardware layer's integers against QONNX's quantiser outputs
    y = apply_head(g.head, x)
    for layer in g.layers:
        y = layer.execute(y.reshape((len(y),) + tuple(layer.in_shape)))
        tname = g.int_outputs.get(layer.name)
        if tname is None:
            continue
        node = next(n for n in wrapper.graph.node if n.output[0] == tname)
        scale = wrapper.get_initializer(node.input[1]).astype(np.float64)
        zp = 0.0 if node.op_type == "BipolarQuant" else wrapper.get_initializer(node.input[2]).astype(np.float64)
        if node.op_type == "Trunc":            # QONNX Trunc v2: out = (y − zp/ts)·out_scale
            out_scale = wrapper.get_initializer(node.input[4]).astype(np.float64)
            zp = zp / 2.0 ** np.round(np.log2(out_scale / scale))
            scale = out_scale
        ref_int = np.round(ctx[tname].astype(np.float64) / scale + zp).astype(np.int64)
        if ref_int.ndim == 4:      # ONNX NCHW -> IR channels-last
            ref_int = ref_int.transpose(0, 2, 3, 1)
        np.testing.assert_array_equal(y, ref_int.reshape(y.shape), err_msg=f"layer {layer.name} vs QONNX {tname}")

    out = apply_tail(g.tail, g.execute(apply_head(g.head, x)))
    ref = ctx[g.tail["output_name"]]
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol)
    assert_matches_brevitas(model, x, out, tol)


def test_mixed_types_reach_the_ir(exported):
    """The grid really covers what it claims: bipolar, 2..8-bit, signed and unsigned types."""
    import hwgen
    from hwgen.lower import lower
    seen_w, seen_a = set(), set()
    for name in SPECS:
        g = lower(hwgen.load(exported(name)[1]))
        for l in g.layers:
            seen_a.add(l.idt.name)
            if l.kind == "MVAU":
                seen_w.add(l.wdt.name)
    assert {"BIPOLAR", "INT2", "INT3", "INT4", "INT8"} <= seen_w
    assert {"BIPOLAR", "UINT2", "INT2", "UINT4", "INT4", "INT8", "UINT8"} <= seen_a


def test_decreasing_channels_negate_weight_rows(exported):
    """Negative BatchNorm gammas make some channels decreasing: their rows are negated, thresholds stay ascending."""
    import hwgen
    from hwgen.lower import lower
    g = lower(hwgen.load(exported("w4a4_relu_bn")[1]))
    fc0 = g.layers[0]
    assert fc0.thresholds is not None
    assert np.all(np.diff(fc0.thresholds, axis=1) >= 0)
    lo, hi = fc0.acc_range
    assert fc0.thresholds.min() >= lo and fc0.thresholds.max() <= hi + 1


@pytest.mark.parametrize("rewrite", ["legacy_domain", "intquant", "modelproto"])
def test_foreign_spellings_lower_identically(exported, rewrite, tmp_path):
    """The legacy finn-base domain, the IntQuant op name and in-memory ModelProtos give the same IR."""
    import onnx

    import hwgen
    from hwgen.lower import lower

    _, path = exported("po2_quantbias")
    ref = lower(hwgen.load(path))
    m = onnx.load(path)
    for node in m.graph.node:
        if node.op_type in ("Quant", "BipolarQuant"):
            if rewrite == "legacy_domain":
                node.domain = "finn.custom_op.general"
            elif rewrite == "intquant" and node.op_type == "Quant":
                node.op_type = "IntQuant"
    if rewrite == "modelproto":
        g = lower(hwgen.load(m))
    else:
        p = tmp_path / "m.onnx"
        onnx.save(m, str(p))
        g = lower(hwgen.load(str(p)))
    x = np.random.default_rng(0).integers(-8, 8, (16,) + tuple(ref.in_shape))
    assert np.array_equal(g.execute(x), ref.execute(x))
    assert g.tail == ref.tail and g.head == ref.head


def test_finn_streamlined_multithreshold(tmp_path):
    """A FINN-streamlined file: integer-annotated input and weights, MultiThreshold activations."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.datatype import DataType
    from qonnx.core.onnx_exec import execute_onnx

    import hwgen
    from hwgen.host import apply_head, apply_tail
    from hwgen.lower import lower
    from qonnx_builder import GraphBuilder

    rng = np.random.default_rng(11)
    b = GraphBuilder((1, 10))
    w0 = rng.integers(-4, 4, (10, 6)).astype(np.float32)
    b.cur = b.node("MatMul", ["x", b.const(w0, "w")])
    t0 = np.sort(rng.uniform(-40, 40, (6, 7)), axis=1)
    b.multithreshold(t0, out_dtype="UINT3")
    w1 = rng.choice([-1, 1], (6, 4)).astype(np.float32)
    b.cur = b.node("MatMul", [b.cur, b.const(w1, "w")])
    b.multithreshold(np.sort(rng.uniform(-5, 5, (1, 1)), axis=1), out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)
    w2 = rng.integers(-2, 2, (4, 3)).astype(np.float32)
    b.cur = b.node("MatMul", [b.cur, b.const(w2, "w")])
    b.mul(0.125)
    m = ModelWrapper(b.model((1, 3)))
    m.set_tensor_datatype("x", DataType["UINT4"])
    for init in m.graph.initializer:
        if init.name.startswith("w"):
            m.set_tensor_datatype(init.name, DataType["BIPOLAR"] if init.name == m.graph.node[2].input[1] else DataType["INT3"])
    path = tmp_path / "streamlined.onnx"
    m.save(str(path))
    w = hwgen.load(str(path))
    g = lower(w)
    assert [l.kind for l in g.layers] == ["MVAU"] * 3
    assert [l.wdt.name for l in g.layers][1] == "BIPOLAR" and g.layers[0].idt.name == "UINT4"
    x = rng.integers(0, 16, (32, 10)).astype(np.float32)
    ir = apply_tail(g.tail, g.execute(apply_head(g.head, x)))
    ref = np.concatenate([execute_onnx(w, {g.head["input_name"]: x[i:i + 1]})[g.tail["output_name"]] for i in range(len(x))])
    np.testing.assert_allclose(ir, ref, rtol=0, atol=1e-6)


def test_one_quantiser_per_accumulator():
    """Two quantisers of one MatMul's result: the MVAU's output stage can serve only one of them
    (the lowering once re-flipped its weight rows for the second, silently)."""
    import hwgen
    from hwgen.errors import UnsupportedError
    from hwgen.lower import lower
    from qonnx_builder import GraphBuilder

    rng = np.random.default_rng(5)
    b = GraphBuilder((1, 6))
    b.act(0.25, bits=4, signed=False)
    acc = b.matmul(rng.normal(size=(6, 4)), 0.1, 4)
    q1 = b.quant(acc, 0.5, bits=4, signed=False)
    q2 = b.quant(acc, 0.25, bits=4, signed=False)
    b.cur = b.node("Add", [q1, q2])
    m = hwgen.load(b.model((1, 4)))
    with pytest.raises(UnsupportedError) as e:
        lower(m)
    src = next(n.name for n in m.graph.node if n.op_type == "MatMul")
    second = [n.name for n in m.graph.node if n.op_type == "Quant"][-1]
    assert str(e.value) == (f"node {second} (Quant): the result of node {src} is already quantised by another node; "
                            "accepted: one quantiser (or the graph output) per MatMul/Conv/Add result")
