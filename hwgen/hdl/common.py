"""Shared helpers of the hardware components: lanes, stream signatures, ROM packing.

Lane encoding (ARCHITECTURE §3): a word of ``n`` lanes of ``w`` bits holds lane
``i`` at bits ``[i·w, (i+1)·w)``; the codes are exactly
:meth:`hwgen.dtypes.DType.encode`/``decode`` (``UINTn`` binary, ``INTn`` two's
complement, ``BINARY`` 0/1, ``BIPOLAR`` 0 → −1 and 1 → +1).

The helpers here turn lane codes into Amaranth values carrying the integer
they encode (:func:`decode_lane`), integer values back into lane codes
(:func:`encode_value`), and integer parameter arrays into ROM words
(:func:`pack_rows`) with numpy, so that large ROMs elaborate quickly.
"""

import re

import numpy as np
from amaranth.hdl import Cat, Const, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..dataflow.pipeline import pipeline_levels
from ..dtypes import dtype as _dtype, smallest_dtype
from .rom import rom_read_port

__all__ = [
    "accumulate_and_output", "ThresholdParams", "LayerComponent",
    "stream_signature", "lane", "value_shape", "decode_lane", "encode_value",
    "tree_sum", "product", "threshold_count", "threshold_dtype", "pack_rows",
    "memory_attrs", "sanitize", "check_layer", "select", "scaled",
    "Pipe", "pipelined_tree_sums", "thermometer_encode", "COMPONENTS", "implements",
]


def stream_signature(lanes, dt):
    """The :class:`amaranth.lib.stream.Signature` of a stream of ``lanes`` lanes of type ``dt``."""
    dt = _dtype(dt)
    if not isinstance(lanes, int) or lanes < 1:
        raise TypeError(f"lanes must be a positive integer, not {lanes!r}")
    return stream.Signature(unsigned(lanes * dt.bits))


def lane(word, index, width):
    """Bits ``[index·width, (index+1)·width)`` of ``word`` (an unsigned code)."""
    return Value.cast(word)[index * width:(index + 1) * width]


def value_shape(dt):
    """The Amaranth shape holding every value of ``dt`` (``BIPOLAR`` → ``signed(2)``)."""
    dt = _dtype(dt)
    if dt.name == "BIPOLAR":
        return signed(2)
    return signed(dt.bits) if dt.signed else unsigned(dt.bits)


def decode_lane(code, dt):
    """An Amaranth value equal to the integer that lane code ``code`` encodes in ``dt``."""
    dt = _dtype(dt)
    code = Value.cast(code)
    if len(code) != dt.bits:
        raise ValueError(f"lane code must be {dt.bits} bits wide for {dt}, not {len(code)}")
    if dt.name == "BIPOLAR":
        return Mux(code[0], Const(1, signed(2)), Const(-1, signed(2)))
    return code.as_signed() if dt.signed else code.as_unsigned()


def encode_value(m, value, dt, *, name=None):
    """The ``dt.bits``-bit lane code of integer ``value`` (assumed to lie in ``dt``'s range).

    ``BIPOLAR`` encodes as ``value > 0``; integer types are truncated or
    extended (sign or zero, per ``value``'s own shape) to their width.
    """
    dt = _dtype(dt)
    value = Value.cast(value)
    if dt.name == "BIPOLAR":
        return (value > 0).as_unsigned()
    sig = Signal(value_shape(dt), name=name)
    m.d.comb += sig.eq(value)
    return sig.as_unsigned()


def tree_sum(values):
    """Balanced adder tree of ``values`` (widths grow one bit per level)."""
    values = [Value.cast(v) for v in values]
    if not values:
        return Const(0, 1)
    while len(values) > 1:
        nxt = [values[k] + values[k + 1] for k in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


def _is_01(dt):
    return dt.name == "BINARY" or dt.name == "UINT1"


def product(w_code, wdt, x_code, xdt):
    """The integer product of a weight lane and an input lane, given as codes.

    One-bit operands become multiplexers (``BIPOLAR``: ±the other operand,
    ``BINARY``/``UINT1``: the other operand or 0); wider ones a multiplier.
    """
    wdt, xdt = _dtype(wdt), _dtype(xdt)
    w_code, x_code = Value.cast(w_code), Value.cast(x_code)
    wv, xv = decode_lane(w_code, wdt), decode_lane(x_code, xdt)
    if wdt.name == "BIPOLAR" and xdt.name == "BIPOLAR":
        return Mux(w_code[0] ^ x_code[0], Const(-1, signed(2)), Const(1, signed(2)))
    if wdt.name == "BIPOLAR":
        return Mux(w_code[0], xv, -xv)
    if _is_01(wdt):
        return Mux(w_code[0], xv, 0)
    if xdt.name == "BIPOLAR":
        return Mux(x_code[0], wv, -wv)
    if _is_01(xdt):
        return Mux(x_code[0], wv, 0)
    return wv * xv


def threshold_dtype(lo, hi):
    """Type of thresholds compared against values in ``[lo, hi]``.

    Thresholds are clipped to ``[lo, hi + 1]`` (which leaves every comparison
    ``value ≥ T`` unchanged), so this type holds both the value range and every
    threshold.
    """
    return smallest_dtype(lo, hi + 1)


def threshold_count(m, value, thresholds, *, name="count"):
    """``Σ_i [value ≥ thresholds[i]]`` as an unsigned signal (``thresholds``: Amaranth values)."""
    bits = [(value >= t) for t in thresholds]
    count = Signal(range(len(thresholds) + 1), name=name)
    if bits:
        m.d.comb += count.eq(tree_sum(bits))
    return count


def pack_rows(codes, width):
    """Pack a ``(rows, lanes)`` array of lane codes into ROM words (Python ints).

    Lane ``i`` of a row sits at bits ``[i·width, (i+1)·width)`` of its word.
    Codes must already be non-negative and below ``2**width``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be a 2-D array, not of shape {codes.shape}")
    if not 1 <= width <= 63:
        raise ValueError(f"lane width must be in 1..63, not {width}")
    rows, lanes = codes.shape
    if codes.size and (codes.min() < 0 or codes.max() >= (1 << width)):
        raise ValueError(f"codes must lie in [0, 2**{width}), not [{codes.min()}, {codes.max()}]")
    shifts = np.arange(width, dtype=np.int64)
    words = []
    step = max(1, (1 << 20) // max(1, lanes * width))     # rows per block: about 8 MB of temporaries
    for r in range(0, rows, step):
        block = codes[r:r + step]
        bits = ((block[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(len(block), lanes * width)
        packed = np.packbits(bits, axis=1, bitorder="little")
        words.extend(int.from_bytes(row.tobytes(), "little") for row in packed)
    return words


def memory_attrs(mem_style, kind="rom"):
    """Synthesis attributes asking for distributed or block memory (``auto``: none).

    A distributed *ROM* is asked for as ``rom_style = "logic"`` (LUTs): yosys has no
    LUT-RAM mapping for a read-only memory and rejects ``"distributed"`` on one
    ("no valid mapping found for memory"); RAMs get ``ram_style = "distributed"``."""
    if mem_style in (None, "auto"):
        return {}
    if mem_style not in ("distributed", "block"):
        raise ValueError(f"mem_style must be 'auto', 'distributed' or 'block', not {mem_style!r}")
    if kind == "rom" and mem_style == "distributed":
        return {"rom_style": "logic"}
    return {f"{kind}_style": mem_style}


def sanitize(name):
    """A Verilog/RTLIL-safe identifier made from a layer name."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    if not s or not (s[0].isalpha() or s[0] == "_"):
        s = "l_" + s
    return s


def check_layer(component, layer, cls, what):
    """Check that ``layer`` is a valid ``cls`` for ``component`` (being constructed).

    Raises :class:`TypeError` (``"layer must be {what}, not …"``) or the
    layer's own :class:`~hwgen.errors.HwgenError`; a component rejected this
    way does not also warn that it was never elaborated.
    """
    try:
        if not isinstance(layer, cls):
            raise TypeError(f"layer must be {what}, not {layer!r}")
        layer.validate()
        if hasattr(layer, "pipeline"):
            pipeline_levels(layer)
    except Exception:
        component._MustUse__silence = True
        raise


def select(index, values):
    """``values[index]`` as one continuous expression (a chain of :class:`Mux`).

    Unlike a comb assignment under ``Switch`` (emitted as an ``always @*``
    process, which Icarus ``-g2012`` does not evaluate at time 0), this is a
    plain expression; an ``index`` past the end selects the last value.
    """
    values = [Value.cast(v) for v in values]
    if not values:
        raise ValueError("select needs at least one value")
    index = Value.cast(index)
    out = values[-1]
    for k in range(len(values) - 2, -1, -1):
        out = Mux(index == k, values[k], out)
    return out


def scaled(value, k):
    """``k · value`` for an integer constant ``k`` (0, ±1 without a multiplier)."""
    value, k = Value.cast(value), int(k)
    if k == 0:
        return Const(0, 1)
    if k == 1:
        return value
    if k == -1:
        return -value
    return value * k


def accumulate_and_output(m, comp, *, en, valid, first, last, addr, depth, terms, acc_shape, early=None):
    """The last stages shared by the MVAU and the VVAU.

    S2: one accumulator per PE lane (cleared by ``first``, summing ``terms``);
    S3: per-lane threshold comparison against the threshold ROM word at
    ``addr`` (``depth`` words) — or the raw accumulator — into the output
    register ``comp.o``.  Everything advances on ``en``.

    ``early`` (pipelined): the ``(valid, last, addr)`` control signals one stage
    before ``terms``. The threshold ROM is then read one stage earlier and its
    word registered (a block RAM's slow clock-to-output stays off the
    comparators); S3 only compares (the comparison bits are registered) and
    S4 turns the bits — a thermometer code, the thresholds being ascending —
    directly into the output code (one more cycle of latency; without
    thresholds nothing changes)."""
    L = comp.layer
    odt = L.odt
    v2 = Signal()
    accs = [Signal(acc_shape, name=f"acc{p}") for p in range(len(terms))]
    with m.If(en):
        m.d.sync += v2.eq(valid & last)
    with m.If(en & valid):
        for acc, t in zip(accs, terms):
            m.d.sync += acc.eq(Mux(first, 0, acc) + t)
    codes = []
    if L.thresholds is not None and early is not None:
        N = L.n_thresholds
        tdt = comp.threshold_type()
        PE = len(terms)
        if N:
            e_valid, e_last, e_addr = early
            tport = rom_read_port(m, comp, "thresholds", width=PE * N * tdt.bits, depth=depth,
                                  init=comp.threshold_rom, attrs=memory_attrs(L.mem_style, "rom"))
            m.d.comb += [tport.addr.eq(e_addr), tport.en.eq(en & e_valid & e_last)]
            tword = Signal(PE * N * tdt.bits, name="thr_word")
            with m.If(en & valid & last):
                m.d.sync += tword.eq(tport.data)
        v3 = Signal()
        with m.If(en):
            m.d.sync += v3.eq(v2)
        for p, acc in enumerate(accs):
            bits = Signal(N, name=f"ge{p}")
            if N:
                thr = [decode_lane(lane(tword, p * N + k, tdt.bits), tdt) for k in range(N)]
                with m.If(en & v2):
                    m.d.sync += bits.eq(Cat(*[acc >= t for t in thr]))
            codes.append(thermometer_encode(bits, [L.out_base + L.out_step * c for c in range(N + 1)], odt))
        with m.If(en):
            m.d.sync += comp.o.valid.eq(v3)
        with m.If(en & v3):
            m.d.sync += comp.o.payload.eq(Cat(*codes))
        return
    if L.thresholds is not None:
        N = L.n_thresholds
        tdt = comp.threshold_type()
        PE = len(terms)
        if N:
            tport = rom_read_port(m, comp, "thresholds", width=PE * N * tdt.bits, depth=depth,
                                  init=comp.threshold_rom, attrs=memory_attrs(L.mem_style, "rom"))
            m.d.comb += [tport.addr.eq(addr), tport.en.eq(en & valid & last)]
        for p, acc in enumerate(accs):
            thr = [decode_lane(lane(tport.data, p * N + k, tdt.bits), tdt) for k in range(N)]
            count = threshold_count(m, acc, thr, name=f"count{p}")
            codes.append(encode_value(m, L.out_base + L.out_step * count, odt, name=f"y{p}"))
    else:
        for p, acc in enumerate(accs):
            codes.append(encode_value(m, acc, odt, name=f"y{p}"))
    with m.If(en):
        m.d.sync += comp.o.valid.eq(v2)
    with m.If(en & v2):
        m.d.sync += comp.o.payload.eq(Cat(*codes))


#: IR layer class → the component class implementing it (filled by :func:`implements`).
COMPONENTS = {}


def implements(layer_cls):
    """Class decorator: the component implements IR kind ``layer_cls`` (registered in
    :data:`COMPONENTS`; its ``LAYER``)."""
    def register(comp_cls):
        comp_cls.LAYER = layer_cls
        COMPONENTS[layer_cls] = comp_cls
        return comp_cls
    return register


class LayerComponent(wiring.Component):
    """Base of the components built from one IR layer with one input stream ``i`` (``in_lanes``
    lanes of ``idt``) and one output stream ``o`` (``out_lanes`` lanes of ``odt``).

    Subclasses are registered with :func:`implements` (which sets ``LAYER``, the IR class)
    and set ``WHAT`` (its name in the "layer must be …" error); an instance's ``LATENCY``
    is its layer's (``layer.latency()``)."""

    LAYER = None
    WHAT = ""

    def __init__(self, layer):
        check_layer(self, layer, self.LAYER, self.WHAT)
        self.layer = layer
        #: Cycles from the step completing an output word to it being valid (``layer.latency()``).
        self.LATENCY = layer.latency()
        super().__init__({
            "i": In(stream_signature(layer.in_lanes, layer.idt)),
            "o": Out(stream_signature(layer.out_lanes, layer.odt)),
        })


class ThresholdParams:
    """Mixin for components that compare a per-channel value against thresholds in a ROM.

    The compared value lies in :meth:`threshold_range` (the layer's accumulator range by
    default); thresholds are stored clipped to ``[lo, hi + 1]``, which changes no comparison,
    one ROM word per channel group, lane ``p·N + i`` holding ``T[g·PE + p, i]``."""

    def threshold_range(self):
        return self.layer.acc_range

    def threshold_type(self):
        """Type in which thresholds are stored and compared with the value."""
        return threshold_dtype(*self.threshold_range())

    def threshold_rom(self):
        L = self.layer
        lo, hi = self.threshold_range()
        tdt = self.threshold_type()
        T = np.clip(np.asarray(L.thresholds, dtype=np.int64), lo, hi + 1)
        groups = T.shape[0] // L.pe
        return pack_rows(tdt.encode(T).reshape(groups, L.pe * T.shape[1]), tdt.bits)


# -- pipelining (the policy is the IR's: hwgen.dataflow.pipeline) ----------------------------------

class Pipe:
    """Register stages of a datapath that all advance on ``en``, carrying control
    signals (valid, first, … given as keyword arguments) along with the data."""

    def __init__(self, m, en, **ctrl):
        self.m, self.en, self.ctrl, self.stages = m, en, dict(ctrl), 0
        self.history = [self.ctrl]          # the control signals of every stage, oldest first

    def __getitem__(self, key):
        return self.ctrl[key]

    def register(self, values, name):
        """Register ``values`` (and the control signals) once; returns the registered values."""
        self.stages += 1
        out = []
        for i, v in enumerate(values):
            v = Value.cast(v)
            s = Signal(v.shape(), name=f"{name}{i}")
            with self.m.If(self.en):
                self.m.d.sync += s.eq(v)
            out.append(s)
        ctrl = {}
        for key, c in self.ctrl.items():
            c = Value.cast(c)
            s = Signal(c.shape(), name=f"{key}_p{self.stages}")
            with self.m.If(self.en):
                self.m.d.sync += s.eq(c)
            ctrl[key] = s
        self.ctrl = ctrl
        self.history.append(ctrl)
        return out


def pipelined_tree_sums(pipe, vectors, splits, name="t"):
    """The balanced adder tree sum of each list in ``vectors`` (lists of equal length), all
    trees registered together (through ``pipe``) after the levels in ``splits``."""
    vectors = [[Value.cast(v) for v in vec] for vec in vectors]
    if not vectors or not vectors[0]:
        return [Const(0, 1) for _ in vectors]
    level = 0
    while len(vectors[0]) > 1:
        nxt = []
        for vec in vectors:
            sums = [vec[k] + vec[k + 1] for k in range(0, len(vec) - 1, 2)]
            if len(vec) % 2:
                sums.append(vec[-1])
            nxt.append(sums)
        vectors = nxt
        level += 1
        if level in splits:
            n = len(vectors[0])
            flat = pipe.register([v for vec in vectors for v in vec], name=f"{name}{level}_")
            vectors = [flat[i * n:(i + 1) * n] for i in range(len(vectors))]
    return [vec[0] for vec in vectors]


def thermometer_encode(bits, values, dt):
    """The ``dt`` code of ``values[Σ bits]`` for a thermometer code ``bits``
    (``bits[i + 1]`` implies ``bits[i]``), without an adder: the one-hot edges of the
    code select constant output codes (``len(values) == len(bits) + 1``)."""
    dt = _dtype(dt)
    bits = Value.cast(bits)
    n = len(bits) if len(values) > 1 else 0
    codes = [int(dt.encode(np.array(int(v)))) for v in values]
    # edge k (0 ≤ k ≤ n): count == k
    edges = []
    for k in range(n + 1):
        lo = bits[k - 1] if k > 0 else Const(1, 1)
        hi = ~bits[k] if k < n else Const(1, 1)
        edges.append((lo, hi))
    out = []
    for b in range(dt.bits):
        terms = [lo & hi for (lo, hi), c in zip(edges, codes) if (c >> b) & 1]
        if not terms:
            out.append(Const(0, 1))
        elif len(terms) == len(edges):
            out.append(Const(1, 1))
        else:
            v = terms[0]
            for t in terms[1:]:
                # the 1-bit slice adds no logic but keeps Amaranth from re-walking the whole chain
                # for the shape of every link (quadratic: 255 thresholds cost seconds per lane)
                v = (v | t)[0]
            out.append(v)
    return Cat(*out)
