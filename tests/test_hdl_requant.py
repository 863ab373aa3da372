"""RequantComponent in the Amaranth simulator (every output word against Requant.execute),
its throughput, and its emitted Verilog under Icarus -g2012 (no X on valid words)."""

import re
import shutil
import subprocess
import zlib

import numpy as np
import pytest
from amaranth.back import verilog

from hwgen.dataflow import Requant
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl.requant import RequantComponent
from hwgen.streams import pack

import streamsim
from streamsim import random_values, simulate_layer

LIMIT = (1 << 62) - 1           # |x·M + B| must stay below 2^62 (Requant.validate)
M_MAX = (1 << 31) - 1


def _xabs(idt):
    return max(abs(idt.min), abs(idt.max))


def _pick_mult(rng, kind, idt, odt, shift):
    """One multiplier: ``scaled`` makes x·M/2^S span a few times the output range,
    the others are the extremes 1 and 2^31 − 1 or log-uniform in between."""
    sign = int(rng.choice([-1, 1]))
    if kind == "scaled":
        span = (odt.max - odt.min + 1) * float(rng.uniform(1.5, 4.0))
        mag = int(round(span * 2.0 ** shift / _xabs(idt)))
    elif kind == "one":
        mag = 1
    elif kind == "max":
        mag = M_MAX
    else:
        mag = int(2 ** rng.uniform(0, 31))
    mag = min(max(mag, 1), M_MAX, LIMIT // _xabs(idt))
    return sign * mag


def _pick_bias(rng, kind, m, idt, odt, shift):
    room = LIMIT - abs(m) * _xabs(idt)           # keeps |x·M + B| < 2^62 at both input ends
    sign = int(rng.choice([-1, 1]))
    if kind == "zero":
        b = 0
    elif kind == "small":
        b = sign * int(rng.integers(1, 1000))
    elif kind == "scaled":               # a shift of the output by up to a fraction of its range
        b = int(sign * float(rng.uniform(0, 0.5)) * (odt.max - odt.min + 1) * 2.0 ** shift)
    else:                                # "large": close to the 2^62 limit
        b = sign * int(room * float(rng.uniform(0.5, 1.0)))
    return max(-room, min(room, b))


def extreme_frames(rng, idt, shape, frames):
    """``frames`` input frames: frame 0 alternates min/max, frame 1 max/min (every
    channel sees both ends), the rest random with extremes, 0 and ±1 sprinkled in."""
    n = int(np.prod(shape))
    x = random_values(rng, idt, (max(frames, 2), n)).astype(np.int64)
    alt = np.arange(n) % 2 == 0
    x[0] = np.where(alt, idt.min, idt.max)
    x[1] = np.where(alt, idt.max, idt.min)
    special = np.array(sorted({idt.min, idt.max, 0, 1, min(idt.max, max(idt.min, -1))}), dtype=np.int64)
    for f in range(2, x.shape[0]):
        mask = rng.random(n) < 0.3
        x[f, mask] = rng.choice(special, size=int(mask.sum()))
    return x.reshape((x.shape[0],) + tuple(shape))


def make_requant(channels, idt, odt, pe, shift, *, spatial=(), clip="narrow", frames=4, seed=0,
                 mult=None, bias=None, name="rq", pipeline="auto"):
    """A Requant layer with mixed multipliers (output-range scaled, ±1, ±(2^31 − 1), random)
    and biases (0, small, scaled, near the 2^62 limit), a clip range that is hit at both
    ends (``clip="full"``: the whole output type; ``"wide"``/``"narrow"``: the 5/95 or
    25/75 percentiles of the unclipped outputs, within the output type) and input frames with the input type's extremes."""
    rng = np.random.default_rng(seed)
    idt, odt = DType(idt), DType(odt)
    kinds_m = ["scaled", "one", "max", "rand"]
    kinds_b = ["zero", "small", "scaled", "large"]
    if mult is None:
        mk = [kinds_m[(c + seed) % 4] if c < 4 else str(rng.choice(kinds_m + ["scaled"])) for c in range(channels)]
        if channels < 3:
            mk = ["scaled"] * channels
        mult = [_pick_mult(rng, k, idt, odt, shift) for k in mk]
    if bias is None:
        bk = [str(rng.choice(kinds_b)) for _ in range(channels)]
        if channels < 3:
            bk = ["scaled"] * channels
        bias = [_pick_bias(rng, k, int(m), idt, odt, shift) for k, m in zip(bk, mult)]
    mult, bias = np.array(mult, dtype=np.int64), np.array(bias, dtype=np.int64)
    x = extreme_frames(rng, idt, tuple(spatial) + (channels,), frames)
    q = (x * mult + bias) >> shift          # int64 exact: |x·M + B| < 2^62
    if clip == "full":
        lo, hi = odt.min, odt.max
    else:
        pct = {"wide": (5, 95), "narrow": (25, 75)}[clip]
        lo, hi = (int(np.clip(np.percentile(q, k, method="nearest"), odt.min, odt.max)) for k in pct)
        if lo == hi:
            lo, hi = max(odt.min, lo - 1), min(odt.max, hi + 1)
    layer = Requant(name, channels=channels, in_dt=idt, out_dt=odt, mult=mult, bias=bias, shift=shift,
                    lo=lo, hi=hi, spatial=tuple(spatial), pe=pe, pipeline=pipeline)
    layer.validate()
    return layer, x


# -- the grid: every input type with every shift, output types and (C, PE) cycling ------------
IDTS = ["INT12", "INT20", "UINT16", "INT32"]
ODTS = ["INT16", "UINT10", "INT9"]
SHIFTS = [0, 5, 17, 31]
FOLDS = [(1, 1), (5, 1), (12, 4), (5, 5), (12, 1), (12, 12), (12, 3)]
CASES = []
for _i, _idt in enumerate(IDTS):
    for _j, _s in enumerate(SHIFTS):
        _k = len(CASES)
        _c, _pe = FOLDS[_k % len(FOLDS)]
        CASES.append((_c, _idt, ODTS[(_i + _j) % 3], _pe, _s,
                      {"spatial": (3,) if _k % 2 == 0 else (), "clip": "wide" if _k % 3 == 0 else "narrow"}))


def _case_id(c):
    C, idt, odt, pe, s, extra = c
    return (f"{idt}-{odt}-C{C}-pe{pe}-S{s}-{extra['clip']}"
            + ("-sp" + "x".join(map(str, extra["spatial"])) if extra["spatial"] else ""))


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_requant_words(case):
    C, idt, odt, pe, s, extra = case
    layer, x = make_requant(C, idt, odt, pe, s, seed=zlib.crc32(_case_id(case).encode()), **extra)
    y = layer.execute(x)
    # the case exercises both clip ends (and, with a narrow range, values in between)
    assert (y == layer.lo).any() and (y == layer.hi).any()
    assert (x == DType(idt).min).any() and (x == DType(idt).max).any()
    simulate_layer(layer, x, RequantComponent)


def test_requant_extreme_parameters():
    """M = ±(2^31 − 1) and ±1 against INT32 extremes, B at the 2^62 limit, S = 31 and 0."""
    i32 = DType("INT32")
    mult = [M_MAX, -M_MAX, 1, -1, M_MAX, -M_MAX]
    room = [LIMIT - abs(m) * _xabs(i32) for m in mult]
    bias = [room[0], -room[1], LIMIT - _xabs(i32), -(LIMIT - _xabs(i32)), -room[4], room[5]]
    for shift, odt in ((31, "INT16"), (0, "INT9"), (17, "UINT10")):
        odt_ = DType(odt)
        layer, x = make_requant(6, "INT32", odt, 2, shift, mult=mult, bias=bias, spatial=(3,),
                                clip="full", seed=shift, name=f"rq{shift}")
        y = layer.execute(x)
        assert (y == odt_.min).any() and (y == odt_.max).any()
        simulate_layer(layer, x, RequantComponent)


def test_requant_random_fuzz():
    """A few fully random layers (any M in [−(2^31 − 1), 2^31 − 1], any admissible B)."""
    rng = np.random.default_rng(1234)
    for n in range(4):
        idt, odt = DType(str(rng.choice(IDTS))), DType(str(rng.choice(ODTS)))
        C = int(rng.choice([2, 4, 6]))
        pe = int(rng.choice([d for d in (1, 2, C) if C % d == 0]))
        shift = int(rng.integers(0, 40))
        mult = [int(rng.integers(-M_MAX, M_MAX + 1)) for _ in range(C)]
        bias = [int(rng.integers(-(LIMIT - abs(m) * _xabs(idt)), LIMIT - abs(m) * _xabs(idt) + 1))
                for m in mult]
        layer, x = make_requant(C, idt.name, odt.name, pe, shift, mult=mult, bias=bias, clip="full",
                                frames=3, seed=n, name=f"fz{n}")
        simulate_layer(layer, x, RequantComponent, gaps=0.2, backpressure=0.2)


@pytest.mark.parametrize("pipeline", ["auto", "none"])
@pytest.mark.parametrize("C,pe,spatial", [(12, 4, (3,)), (5, 5, (3,)), (1, 1, (3,)), (6, 1, ())])
def test_requant_throughput(C, pe, spatial, pipeline):
    layer, x = make_requant(C, "INT20", "INT16", pe, 17, spatial=spatial, frames=4, seed=5, pipeline=pipeline)
    res = simulate_layer(layer, x, RequantComponent, gaps=0.0, backpressure=0.0)
    assert streamsim.frame_intervals(res, layer.out_words) == [layer.cycles()] * 3
    assert np.all(np.diff(res.in_cycles) == 1) and np.all(np.diff(res.out_cycles) == 1)
    assert res.out_cycles[0] - res.in_cycles[0] == res.dut.LATENCY == (3 if pipeline == "none" else 5)


@pytest.mark.parametrize("pipeline", ["none", 1])
@pytest.mark.parametrize("C,pe", [(12, 4), (5, 1)])
def test_requant_pipeline_backpressure(C, pe, pipeline):
    """Every pipeline setting against execute() under heavy back-pressure."""
    layer, x = make_requant(C, "INT12", "INT9", pe, 5, spatial=(2,), frames=3, seed=C + pe, pipeline=pipeline)
    simulate_layer(layer, x, RequantComponent, gaps=0.3, backpressure=0.6)


def test_requant_clip_boundaries():
    """Unclipped outputs that step by at most 1 through lo − 1, lo, hi, hi + 1 (M = 4, B = 1
    gives q = x; M = −3, B = 7 a falling staircase), S = 2."""
    xs = np.arange(-60, 61)
    x = np.stack([xs, xs[::-1]], axis=-1)[None]                 # (1, 121, 2)
    layer = Requant("rqb", channels=2, in_dt=DType("INT12"), out_dt=DType("INT9"),
                    mult=np.array([4, -3]), bias=np.array([1, 7]), shift=2, lo=-37, hi=45,
                    spatial=(121,), pe=2)
    layer.validate()
    q = (x * layer.mult + layer.bias) >> layer.shift
    for c in range(2):
        assert {layer.lo - 1, layer.lo, layer.hi, layer.hi + 1} <= set(q[..., c].ravel().tolist())
    simulate_layer(layer, x, RequantComponent)
    layer.pe = 1
    simulate_layer(layer, x, RequantComponent)


def _component(layer):
    comp = RequantComponent(layer)
    comp._MustUse__silence = True           # inspected, not elaborated
    return comp


def test_requant_constant_parameters():
    """Lanes whose M or B is the same in every channel group use constants: no ROM when
    C == PE, only the varying fields otherwise."""
    layer, _ = make_requant(5, "INT12", "INT9", 5, 5, seed=1)
    assert _component(layer).rom_fields() == ([], 0)
    layer, _ = make_requant(4, "INT12", "INT9", 2, 5, mult=[3, 7, 3, 9], bias=[1, 2, 5, 2], seed=1)
    fields, width = _component(layer).rom_fields()
    assert [(k, p) for k, p, _, _ in fields] == [("mult", 1), ("bias", 0)]
    assert width == DType("UINT4").bits + DType("UINT3").bits
    simulate_layer(layer, extreme_frames(np.random.default_rng(0), layer.idt, layer.in_shape, 4),
                   RequantComponent)


def test_requant_errors():
    layer, _ = make_requant(6, "INT12", "INT9", 1, 5)
    layer.pe = 4
    with pytest.raises(HwgenError, match="PE=4 must divide C=6"):
        RequantComponent(layer)
    with pytest.raises(TypeError, match="layer must be a Requant"):
        RequantComponent(object())


# -- emitted Verilog -------------------------------------------------------------------------

VERILOG_CASES = {
    "int32-rom": dict(channels=12, idt="INT32", odt="INT16", pe=4, shift=31, spatial=(3,), seed=11),
    "uint16-const": dict(channels=5, idt="UINT16", odt="UINT10", pe=5, shift=5, spatial=(3,), seed=12),
    "int12-pe1": dict(channels=5, idt="INT12", odt="INT9", pe=1, shift=0, spatial=(), seed=13),
}


def _verilog_layer(name):
    kw = dict(VERILOG_CASES[name])
    return make_requant(kw.pop("channels"), kw.pop("idt"), kw.pop("odt"), kw.pop("pe"), kw.pop("shift"),
                        frames=3, name=f"rq_{name.replace('-', '_')}", **kw)


def _to_verilog(layer):
    return verilog.convert(RequantComponent(layer), name="requant")


@pytest.mark.parametrize("name", sorted(VERILOG_CASES))
def test_requant_no_comb_process_without_reset(name):
    """Every ``always @*`` block reads ``rst`` (a register's next state): combinational
    outputs are plain expressions that Icarus evaluates at time 0."""
    text = _to_verilog(_verilog_layer(name)[0])
    blocks = re.findall(r"always @\* begin\n(.*?)\n  end\n", text, re.S)
    assert blocks
    bad = [b for b in blocks if not re.search(r"\brst\b", b)]
    assert not bad, "\n----\n".join(bad[:3])


TB = """\
`timescale 1ns/1ps
module tb;
  reg clk, rst, i_valid, o_ready;
  reg [{iw}:0] i_payload;
  wire i_ready, o_valid;
  wire [{ow}:0] o_payload;
  reg [{iw}:0] words [0:{last}];
  integer i, cycle, got;
  requant dut(.clk(clk), .rst(rst), .i__payload(i_payload), .i__valid(i_valid), .i__ready(i_ready),
              .o__payload(o_payload), .o__valid(o_valid), .o__ready(o_ready));
  always #5 clk = ~clk;
  initial begin
{init}
    clk = 0; rst = 1; i_valid = 0; i_payload = 0; o_ready = 0; i = 0; cycle = 0; got = 0;
  end
  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (cycle == 4) begin
      rst <= 0;
    end else if (cycle > 4) begin
      if (i_valid && i_ready) i = i + 1;
      i_valid <= i < {n_in} && (cycle % 7 != 3);
      i_payload <= i < {n_in} ? words[i] : 0;
      if (o_valid && o_ready) begin
        $display("OUT %b", o_payload);
        got = got + 1;
        if (got == {n_out}) $finish;
      end
      o_ready <= (cycle % 5 != 1);
    end
    if (cycle > {max_cycles}) begin
      $display("TIMEOUT");
      $finish;
    end
  end
endmodule
"""


@pytest.mark.skipif(shutil.which("iverilog") is None or shutil.which("vvp") is None,
                    reason="Icarus Verilog (iverilog, vvp) not installed")
@pytest.mark.parametrize("name", sorted(VERILOG_CASES))
def test_requant_icarus(name, tmp_path):
    """An all-zero frame, then frames with the input extremes, under Icarus -g2012 with
    valid gaps and ready back-pressure: every valid output word is 0/1 only and equals
    the reference."""
    layer, x = _verilog_layer(name)
    x = np.concatenate([np.zeros((1,) + x.shape[1:], dtype=np.int64), x])
    in_words = [w for f in pack(x, layer.idt, layer.in_lanes) for w in f]
    expected = [w for f in pack(layer.execute(x), layer.odt, layer.out_lanes) for w in f]
    iw, ow = layer.in_lanes * layer.idt.bits, layer.out_lanes * layer.odt.bits
    init = "\n".join(f"    words[{k}] = {iw}'h{w:x};" for k, w in enumerate(in_words))
    tb = TB.format(iw=iw - 1, ow=ow - 1, last=len(in_words) - 1, init=init, n_in=len(in_words),
                   n_out=len(expected), max_cycles=10 * (len(in_words) + len(expected)) + 200)
    (tmp_path / "requant.v").write_text(_to_verilog(layer))
    (tmp_path / "tb.v").write_text(tb)
    comp = subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "-s", "tb", "tb.v", "requant.v"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert comp.returncode == 0, comp.stderr[-2000:]
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout
    assert "TIMEOUT" not in out, out[-2000:]
    got = [line.split()[1] for line in out.splitlines() if line.startswith("OUT ")]
    assert len(got) == len(expected)
    bad = [(k, w) for k, w in enumerate(got) if re.search(r"[xXzZ]", w)]
    assert not bad, f"X/Z in valid output words (index, bits): {bad[:5]}"
    assert [int(w, 2) for w in got] == expected
