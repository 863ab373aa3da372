"""hwgen.cmvm: the shift-add graph against W @ x (golden reference), and its Verilog in Icarus, bit-exact."""

import os
import re
import shutil
import subprocess
import time

import numpy as np
import pytest

from hwgen.cmvm import build, csd, cuts_every, emit_verilog, evaluate
from hwgen.cmvm.graph import InType, parse_in_types, width_of
from hwgen.cmvm.sim import run_icarus
from hwgen.cmvm.verilog import latency, output_layout, register_bits
from hwgen.errors import HwgenError

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not on PATH")


def corners(W, types, rng, n_random=40):
    """Random vectors, the all-min / all-max / alternating corners and, for each output, the inputs reaching its min and max."""
    lo = np.array([t.lo for t in types])
    hi = np.array([t.hi for t in types])
    xs = [rng.integers(lo, hi + 1, (n_random, len(types))), lo[None], hi[None], np.where(np.arange(len(types)) % 2, lo, hi)[None]]
    for row in W[: min(len(W), 8)]:
        xs += [np.where(row > 0, hi, lo)[None], np.where(row > 0, lo, hi)[None]]
    return np.concatenate(xs).astype(np.int64)


def weights(kind, shape, rng):
    if kind == "w4":
        return rng.integers(-8, 8, shape)
    if kind == "w8":
        return rng.integers(-128, 128, shape)
    if kind == "pm1":
        return rng.choice([-1, 1], shape)
    if kind == "pow2":
        return rng.choice([-8, -4, -2, -1, 0, 1, 2, 4, 8, 64], shape)
    if kind == "sparse":
        W = rng.integers(-8, 8, shape)
        W[rng.random(shape) < 0.7] = 0
        return W
    if kind == "zero_lines":
        W = rng.integers(-8, 8, shape)
        W[0, :] = 0
        W[:, -1] = 0
        return W
    raise AssertionError(kind)


# -- the digits and the reference ---------------------------------------------------------------


def test_csd_is_the_non_adjacent_form():
    for v in [*range(-300, 300), 2**31 - 1, -(2**31) + 1, 12345678901]:
        d = csd(v)
        assert sum(s << k for k, s in d) == v
        ks = [k for k, _ in d]
        assert all(b - a >= 2 for a, b in zip(ks, ks[1:]))  # no two adjacent non-zero digits
    assert csd(7) == [(0, -1), (3, 1)] and csd(0) == [] and csd(-1) == [(0, -1)]


def test_width_of_is_exact():
    assert [width_of(0, 0), width_of(0, 1), width_of(0, 15), width_of(0, 16)] == [1, 1, 4, 5]
    assert [width_of(-1, 0), width_of(-8, 7), width_of(-9, 7), width_of(-8, 8), width_of(-3, -1)] == [1, 4, 5, 5, 3]


SHAPES = [(1, 1), (3, 5), (16, 64), (64, 16), (32, 64)]
KINDS = ["w4", "w8", "pm1", "pow2", "sparse", "zero_lines"]
TYPES = ["UINT4", "INT4", "UINT1", "INT1", "UINT8", "INT8"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_reference_equals_matmul(shape, kind):
    rng = np.random.default_rng(hash((shape, kind)) % 2**32)
    W = weights(kind, shape, rng)
    big = shape[0] * shape[1] > 500
    for tname in TYPES[:2] if big else TYPES:
        types = parse_in_types(tname, shape[1])
        x = corners(W, types, rng)
        want = x @ W.T
        for share in (False,) if big and tname != "UINT4" else (True, False):
            g = build(W, tname, share=share)
            assert np.array_equal(evaluate(g, x), want), (kind, tname, share)
            # every output's range is exactly the range of its row, and reached by a corner
            for m in range(shape[0]):
                row = W[m]
                lo = int(np.minimum(row * types[0].lo, row * types[0].hi).sum())
                hi = int(np.maximum(row * types[0].lo, row * types[0].hi).sum())
                assert g.out_range(m) == (lo, hi)
            # every wire is exactly as wide as the values reaching it
            for k in range(len(g.lo)):
                assert g.width(k) == width_of(g.lo[k], g.hi[k])


def test_mixed_input_types_and_one_vector():
    rng = np.random.default_rng(5)
    W = rng.integers(-8, 8, (6, 4))
    types = ["UINT4", "INT8", (1, False), InType(3, True)]
    g = build(W, types)
    t = parse_in_types(types, 4)
    x = corners(W, t, rng)
    assert np.array_equal(evaluate(g, x), x @ W.T)
    assert np.array_equal(evaluate(g, x[0]), W @ x[0])


def test_wide_values_use_python_ints():
    W = np.array([[2**31 - 1, -(2**31) + 1, 3]])
    g = build(W, "INT32")
    x = np.array([[2**31 - 1, -(2**31), 5], [-(2**31), 2**31 - 1, -7]], dtype=object)
    assert [int(v) for v in evaluate(g, x)[:, 0]] == [int(sum(int(a) * int(b) for a, b in zip(W[0], r))) for r in x]


def test_sharing_saves_adders_and_is_deterministic():
    rng = np.random.default_rng(17)
    W = rng.integers(-8, 8, (32, 64))
    plain, shared = build(W, "UINT4", share=False), build(W, "UINT4")
    assert shared.adders < 0.7 * plain.adders and shared.adder_bits < 0.7 * plain.adder_bits
    # without sharing: one adder less than the number of digits per output (all digits of a row in one tree)
    # (plus a negation for a row whose digits are all negative)
    digits = [[d for v in row for _, d in csd(v)] for row in W]
    assert plain.adders == sum(max(len(d) - 1, 0) + (bool(d) and max(d) < 0) for d in digits)
    again = build(W.copy(), "UINT4")
    assert emit_verilog(shared, "m") == emit_verilog(again, "m")
    assert shared.ops == again.ops


def test_trivial_graphs():
    g = build([[0, 0], [1, 0], [0, -4], [2, 0]], "UINT4")
    assert g.adders == 1 and g.outputs[0] == (None, 0) and g.outputs[1] == (0, 0) and g.outputs[3] == (0, 1)
    assert g.out_range(2) == (-60, 0) and g.max_depth == 1
    x = np.array([[0, 0], [15, 15], [3, 7]])
    assert np.array_equal(evaluate(g, x), x @ np.array([[0, 0], [1, 0], [0, -4], [2, 0]]).T)


def test_generation_is_fast():
    W = np.random.default_rng(1).integers(-8, 8, (64, 64))
    t = time.perf_counter()
    g = build(W, "UINT4")
    text = emit_verilog(g, "big", pipeline_stages=cuts_every(g, 2))
    assert time.perf_counter() - t < 10
    assert text.count("\n") < 3 * g.adders + 200 and len(text) < 400_000


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "W, types, msg",
    [
        ([[1.5, 2]], "UINT4", r"cmvm: weight \[0, 0\] is 1.5; accepted: integers only"),
        ([[1, float("nan")]], "UINT4", r"weight \[0, 1\] is nan; accepted: integers only"),
        ([["a", 1]], "UINT4", r"the weight matrix has dtype <U21; accepted: an integer matrix"),
        ([1, 2, 3], "UINT4", r"has 1 dimensions \(shape \(3,\)\); accepted: a 2-D integer matrix"),
        (np.zeros((0, 3), dtype=int), "UINT4", r"shape \(0, 3\); accepted: at least one output and one input"),
        ([[2**40, 1]], "UINT4", r"weight \[0, 0\] is 1099511627776; accepted: \|weight\| < 2\^32"),
        ([[1, 2]], "UINT0", r"input type for all inputs has 0 bits; accepted: 1 to 32 bits"),
        ([[1, 2]], "FLOAT4", r"input type for all inputs is 'FLOAT4'; accepted: 'UINTb' or 'INTb', an InType, or \(bits, signed\)"),
        ([[1, 2]], ["UINT4"], r"1 input types for a matrix of 2 inputs \(columns\); accepted: one type or exactly 2"),
        ([[1, 2]], ["UINT4", "INT40"], r"input type of input 1 has 40 bits; accepted: 1 to 32 bits"),
        ([[1, 2]], 4, r"input types are 4; accepted: one type or a list of one type per input"),
    ],
)
def test_build_errors(W, types, msg):
    with pytest.raises(HwgenError, match=msg) as e:
        build(W, types)
    assert "\n" not in str(e.value)


def test_float_integral_weights_are_accepted():
    g = build(np.array([[2.0, -3.0]]), "INT4")
    assert np.array_equal(evaluate(g, np.array([[1, -2]])), [[8]])


def test_emit_and_evaluate_errors():
    g = build([[3, -5], [1, 1]], "UINT4")
    cases = [
        (lambda: evaluate(g, np.array([[16, 0]])), r"input 0 holds values in \[16, 16\]; accepted: UINT4 = \[0, 15\]"),
        (lambda: evaluate(g, np.zeros((2, 3), dtype=int)), r"input of shape \(2, 3\) for a graph of 2 inputs"),
        (lambda: evaluate(g, np.zeros((1, 2))), r"input of dtype float64; accepted: integers"),
        (lambda: emit_verilog(g, "1bad"), r"module name '1bad'; accepted: a Verilog identifier"),
        (lambda: emit_verilog(g, "m", pipeline_stages=[1, -1]), r"pipeline cut -1; accepted: adder depths, integers ≥ 0"),
        (lambda: emit_verilog(g, "m", pipeline_stages="x1"), r"pipeline cut 'x'"),
        (lambda: emit_verilog(g, "m", pipeline_stages=2.5), r"pipeline_stages is 2.5; accepted: 0 \(combinational\)"),
        (lambda: emit_verilog(g, "m", out_bits=4), r"output 0 ranges over \[-75, 45\] and needs 8 bits; accepted: out_bits ≥ 8"),
        (lambda: emit_verilog(g, "m", out_bits=0), r"out_bits is 0; accepted: None \(exact widths\) or a positive integer"),
        (lambda: cuts_every(g, 0), r"register every 0 levels; accepted: a positive integer"),
    ]
    for f, msg in cases:
        with pytest.raises(HwgenError, match=msg) as e:
            f()
        assert "\n" not in str(e.value)


def test_verilog_shape():
    g = build([[3, -5], [1, 1], [0, 0]], "UINT4")
    v = emit_verilog(g, "m")
    assert "input [7:0] x" in v and "clk" not in v and "always" not in v
    assert "wire [3:0] n0 = x[0 +: 4];" in v and "assign y[" in v
    lay = output_layout(g)
    assert [w for _, w, _ in lay] == [g.out_width(m) for m in range(3)] == [8, 5, 1]
    cuts = cuts_every(g, 1)
    assert cuts == list(range(1, g.max_depth + 1)) and latency(cuts) == len(cuts) and latency(0) == 0
    vp = emit_verilog(g, "m", pipeline_stages=cuts)
    assert "input clk" in vp and "always @(posedge clk)" in vp
    assert register_bits(g, 0) == 0 < register_bits(g, cuts)


@pytest.mark.parametrize("every", [1, 2, 3])
def test_register_bits_count_the_emitted_registers(every):
    W = np.random.default_rng(every).integers(-8, 8, (12, 10))
    g = build(W, "UINT4")
    cuts = cuts_every(g, every)
    text = emit_verilog(g, "m", pipeline_stages=cuts)
    decl = re.findall(r"^reg (?:signed )?\[(\d+):0\] ", text, re.M)
    assert sum(int(h) + 1 for h in decl) == register_bits(g, cuts) > 0
    assert f"{register_bits(g, cuts)} register bits" in text


# -- the Verilog in Icarus, bit-exact -----------------------------------------------------------

SIM_CASES = [
    # (shape, weight kind, input type, pipeline: 0 or "every k" or a list of cuts, out_bits)
    ((3, 5), "w4", "INT4", 0, None),
    ((16, 64), "w4", "UINT4", 0, None),
    ((8, 12), "w8", "INT8", 0, None),
    ((6, 9), "pm1", "UINT1", 0, None),
    ((5, 7), "zero_lines", "INT1", 0, 16),
    ((1, 1), "w4", "UINT4", 0, None),
    ((64, 16), "w4", "UINT4", "every1", None),
    ((12, 20), "w8", "INT4", "every2", 24),
    ((6, 10), "pow2", "UINT8", [0], None),
    ((6, 10), "w4", "INT4", "last", None),
]


@needs_icarus
@pytest.mark.parametrize("case", SIM_CASES, ids=[f"{s[0]}x{s[1]}-{k}-{t}-{p}-{o}" for s, k, t, p, o in SIM_CASES])
def test_verilog_bit_exact_in_icarus(case, tmp_path):
    shape, kind, tname, pipe, out_bits = case
    rng = np.random.default_rng(sum(shape) * 7 + len(kind))
    W = weights(kind, shape, rng)
    g = build(W, tname)
    if pipe == "last":
        pipe = [g.max_depth]
    elif isinstance(pipe, str):
        pipe = cuts_every(g, int(pipe[5:]))
    types = parse_in_types(tname, shape[1])
    x = corners(W, types, rng, n_random=30)
    assert np.array_equal(evaluate(g, x), x @ W.T)
    ok, log = run_icarus(g, emit_verilog(g, "cmvm_dut", pipeline_stages=pipe, out_bits=out_bits), "cmvm_dut", x, x @ W.T, tmp_path,
                         lat=latency(pipe), out_bits=out_bits)
    assert ok, log


@needs_icarus
@pytest.mark.parametrize("pipe", [0, "every1"])
def test_icarus_detects_a_wrong_matrix(pipe, tmp_path):
    rng = np.random.default_rng(99)
    W = rng.integers(-8, 8, (8, 10))
    g = build(W, "UINT4")
    pipe = cuts_every(g, 1) if pipe else 0
    x = corners(W, parse_in_types("UINT4", 10), rng, n_random=20)
    wrong = W.copy()
    wrong[3, 4] += 1
    v = emit_verilog(g, "cmvm_dut", pipeline_stages=pipe)
    ok, log = run_icarus(g, v, "cmvm_dut", x, x @ wrong.T, tmp_path / "wrong", lat=latency(pipe))
    assert not ok and "MISMATCH" in log and "FAIL" in log
    # and one cycle of latency too few is caught as well
    if pipe:
        ok, log = run_icarus(g, v, "cmvm_dut", x, x @ W.T, tmp_path / "early", lat=latency(pipe) - 1)
        assert not ok
    ok, log = run_icarus(g, v, "cmvm_dut", x, x @ W.T, tmp_path / "right", lat=latency(pipe))
    assert ok, log


@needs_icarus
def test_negated_outputs_and_a_cut_past_the_depth(tmp_path):
    # a row of only negative digits ends in a negation; a cut beyond the depth registers the outputs
    W = np.array([[-1, -2, -4, 0], [-3, 0, 0, -8], [5, -6, 7, -1], [0, 0, 0, 0], [-1, 0, 0, 0]])
    g = build(W, "UINT4")
    negs = [i for i, op in enumerate(g.ops) if op[3] is None]
    assert len(negs) == 2 and g.carry_bits <= g.adder_bits
    x = corners(W, parse_in_types("UINT4", 4), np.random.default_rng(2))
    for pipe in (0, [g.max_depth + 3], cuts_every(g, 3)):
        ok, log = run_icarus(g, emit_verilog(g, "cmvm_dut", pipeline_stages=pipe), "cmvm_dut", x, x @ W.T, tmp_path / str(latency(pipe)),
                             lat=latency(pipe))
        assert ok, log


def test_verilator_lints_the_module_clean(tmp_path):
    from hwgen.simulators import available, prepare

    if not available("verilator"):
        pytest.skip("verilator not installed")
    sim = prepare("verilator")
    rng = np.random.default_rng(8)
    W = weights("zero_lines", (9, 7), rng)
    g = build(W, "INT4")
    for i, pipe in enumerate((0, cuts_every(g, 2))):
        f = tmp_path / f"cmvm_lint{i}.v"
        f.write_text(emit_verilog(g, f"cmvm_lint{i}", pipeline_stages=pipe, out_bits=12))
        r = subprocess.run([sim.executable, "--lint-only", *sim.build_args, str(f)], capture_output=True, text=True, env={**os.environ, **sim.env})
        assert r.returncode == 0 and "%Error" not in r.stderr and "%Warning" not in r.stderr, r.stderr
