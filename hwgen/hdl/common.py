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
from amaranth.lib.memory import Memory
from amaranth.lib import stream

from ..dtypes import dtype as _dtype, smallest_dtype

__all__ = [
    "accumulate_and_output", "ThresholdParams",
    "stream_signature", "lane", "value_shape", "decode_lane", "encode_value",
    "tree_sum", "product", "threshold_count", "threshold_dtype", "pack_rows",
    "memory_attrs", "sanitize", "check_layer", "select", "scaled",
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
    bits = ((codes[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(rows, lanes * width)
    packed = np.packbits(bits, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def memory_attrs(mem_style, kind="rom"):
    """Synthesis attributes asking for distributed or block memory (``auto``: none)."""
    if mem_style in (None, "auto"):
        return {}
    if mem_style not in ("distributed", "block"):
        raise ValueError(f"mem_style must be 'auto', 'distributed' or 'block', not {mem_style!r}")
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


def accumulate_and_output(m, comp, *, en, valid, first, last, addr, depth, terms, acc_shape):
    """The last two stages shared by the MVAU and the VVAU.

    S2: one accumulator per PE lane (cleared by ``first``, summing ``terms``);
    S3: per-lane threshold comparison against the threshold ROM word at
    ``addr`` (``depth`` words) — or the raw accumulator — into the output
    register ``comp.o``.  Everything advances on ``en``."""
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
    if L.thresholds is not None:
        N = L.n_thresholds
        tdt = comp.threshold_type()
        PE = len(terms)
        if N:
            tmem = m.submodules.thresholds = Memory(
                shape=unsigned(PE * N * tdt.bits), depth=depth, init=comp.threshold_rom(),
                attrs=memory_attrs(L.mem_style, "rom"))
            tport = tmem.read_port(domain="sync")
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
