"""QONNX files from other producers, and bad files.

Hand-made with ``onnx.helper`` (no downloads): hls4ml/QKeras-style graphs
(``Quant`` on float weights, ``Mul``/``Add`` scaling around ``MatMul``), the
legacy finn-base domain with ``IntQuant`` names, older-opset ``Clip`` with
attributes, FINN-streamlined ``MultiThreshold`` graphs (test_lower.py); each
lowered exactly against QONNX's own execution and one built and verified in
RTL.  Bad files each give the one-line error of ARCHITECTURE §6.
"""

import numpy as np
import onnx
import pytest

from clirun import run_cli
from qonnx_builder import GraphBuilder

pytestmark = pytest.mark.filterwarnings("ignore")


def hls4ml_style(seed=0, domain="qonnx.custom_op.general", op="Quant", opset=13):
    """Quant(x) -> MatMul(x, Quant(W, scale=1)) -> Mul(w_scale) -> Add(b) -> Relu -> Quant -> MatMul -> Mul."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((1, 9), domain=domain, opset=opset)
    b.cur = b.quant("x", 0.25, 0.0, 6, True, False, op=op)
    w0 = rng.integers(-7, 8, (9, 7)).astype(np.float32)
    b.cur = b.node("MatMul", [b.cur, b.quant(b.const(w0, "w"), 1.0, 0.0, 4, True, True, op=op)])
    b.mul(rng.uniform(0.01, 0.1, 7))
    b.add(rng.normal(0, 0.3, 7))
    if opset < 11:
        b.cur = b.node("Clip", [b.cur], min=0.0, max=4.0)
    else:
        b.relu()
    b.cur = b.quant(b.cur, 0.125, 0.0, 5, False, False, op=op)
    w1 = rng.integers(-3, 4, (7, 3)).astype(np.float32)
    b.cur = b.node("MatMul", [b.cur, b.quant(b.const(w1, "w"), 1.0, 0.0, 3, True, False, op=op)])
    b.mul(0.0625)
    return b.model((1, 3))


VARIANTS = {
    "hls4ml": dict(),
    "legacy_intquant": dict(domain="finn.custom_op.general", op="IntQuant"),
    "opset9_clip": dict(opset=9),
}


def _check(model):
    from qonnx.core.onnx_exec import execute_onnx

    import hwgen
    from hwgen.host import apply_head, apply_tail, random_inputs
    from hwgen.lower import lower
    w = hwgen.load(model)
    g = lower(w)
    x = random_inputs(g.head, 32, np.random.default_rng(1)).astype(np.float32)
    ir = apply_tail(g.tail, g.execute(apply_head(g.head, x)))
    ref = np.concatenate([execute_onnx(w, {g.head["input_name"]: x[i:i + 1]})[g.tail["output_name"]] for i in range(len(x))])
    np.testing.assert_allclose(ir, ref, rtol=0, atol=1e-5 * max(1, np.abs(ref).max()))
    return g


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_foreign_lowers_exactly(variant):
    g = _check(hls4ml_style(**VARIANTS[variant]))
    assert [l.kind for l in g.layers] == ["MVAU", "MVAU"]


@pytest.mark.sim
def test_foreign_builds_and_verifies(tmp_path):
    import hwgen
    path = tmp_path / "legacy.onnx"
    onnx.save(hls4ml_style(**VARIANTS["legacy_intquant"]), str(path))
    b = hwgen.build(str(path), tmp_path / "out", fps=5e6, progress=False)
    r = hwgen.verify(b.out_dir, frames=40, sim="icarus", seed=2, progress=False)
    assert r.ok and r.mismatches == 0
    assert abs(r.cycles_per_frame - r.estimated_cycles_per_frame) <= 0.02 * r.estimated_cycles_per_frame


# ---------------------------------------------------------------- bad files
def cli_errors(argv, capsys):
    """Exit code and the ``hwgen: error:`` lines of ``hwgen ARGV``."""
    code, _, err = run_cli(argv, capsys)
    return code, [l for l in err.splitlines() if l.startswith("hwgen: error:")]

def test_truncated_file(tmp_path, capsys):
    good = hls4ml_style().SerializeToString()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(good[: len(good) // 2])
    code, lines = cli_errors(["build", bad, "-o", tmp_path / "out"], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"hwgen: error: {bad}: not an ONNX file")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("scale,what", [(float("nan"), "nan"), (0.0, "0.0"), (-0.5, "-0.5")])
def test_bad_scale(tmp_path, capsys, scale, what):
    m = hls4ml_style()
    for init in m.graph.initializer:          # the first activation quantiser's scale
        if init.name == m.graph.node[0].input[1]:
            init.CopyFrom(onnx.numpy_helper.from_array(np.array(scale, dtype=np.float32), init.name))
    p = tmp_path / "bad.onnx"
    onnx.save(m, str(p))
    code, lines = cli_errors(["build", p, "-o", tmp_path / "out"], capsys)
    assert code == 2 and len(lines) == 1
    assert lines[0].endswith(f"(Quant): scale must be finite and positive, not [{what}]"), lines
    assert not (tmp_path / "out").exists()


def test_inconsistent_shapes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    b = GraphBuilder((1, 9))
    b.cur = b.quant("x", 0.25, 0.0, 4, True)
    b.cur = b.node("MatMul", [b.cur, b.quant(b.const(rng.normal(size=(5, 3)), "w"), 0.1, 0.0, 4, True, True)])
    p = tmp_path / "shapes.onnx"
    onnx.save(b.model((1, 3)), str(p))
    code, lines = cli_errors(["build", p, "-o", tmp_path / "out"], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("hwgen: error: "), lines


def test_two_inputs(tmp_path, capsys):
    m = hls4ml_style()
    m.graph.input.append(onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2]))
    p = tmp_path / "two.onnx"
    onnx.save(m, str(p))
    code, lines = cli_errors(["build", p, "-o", tmp_path / "out"], capsys)
    assert code == 2 and lines == ["hwgen: error: graph g: must have exactly one input and one output, not 2 and 1"]


def test_non_integer_bit_width(tmp_path, capsys):
    m = hls4ml_style()
    for init in m.graph.initializer:
        if init.name == m.graph.node[0].input[3]:
            init.CopyFrom(onnx.numpy_helper.from_array(np.array(4.5, dtype=np.float32), init.name))
    p = tmp_path / "bw.onnx"
    onnx.save(m, str(p))
    code, lines = cli_errors(["build", p, "-o", tmp_path / "out"], capsys)
    assert code == 2 and len(lines) == 1 and "bit width must be a whole number, not [4.5]" in lines[0]
