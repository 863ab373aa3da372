"""What each bit-width choice costs in hardware: per layer, per ``(a_prev, w, a)``, the LUTs
of the layer at the cheapest folding that meets the throughput target.

A layer's hardware depends on its weight bits ``w``, its output activation bits ``a``
(thresholds, output width) *and* the bits of the activation it reads, ``a_prev`` (products,
accumulator, window buffer) — so the cost is a function of the triple, and the allocation
(:mod:`hwgen.mixed.allocate`) keeps neighbouring choices consistent.

For every triple the layer is built as the dataflow IR layers hwgen's lowering makes of it —
an :class:`~hwgen.dataflow.mvau.MVAU` (fed by a :class:`~hwgen.dataflow.swg.SlidingWindow`
for a convolution) with the float model's weights quantised as the Brevitas model will
quantise them, ``2^a − 1`` thresholds per channel (one for bipolar) spaced like BatchNorm +
a uniform quantiser space them — and priced by the same calibrated model that ``hwgen build``
reports (:func:`hwgen.dataflow.estimate.layer_resources`), over every PE/SIMD folding whose
cycles per frame fit ``clock / fps``. Plumbing (FIFOs, width converters) and pooling are left
out: they are a few percent of a build and barely depend on the choice.

A residual add (``add0, …``, see :mod:`hwgen.mixed.quantize`) is priced per
``(a_skip, a_body, a)``: the bits of its two inputs (the block input and the body's last layer)
and of its output quantiser.  It is the :class:`~hwgen.dataflow.branch.AddStreams` hwgen builds:
both inputs' power-of-two scales (estimated from the float data as the quantised model
initialises them) give its shift multipliers, and ``2^a − 1`` per-tensor thresholds (the same in
every channel, one for bipolar) on the sum, at the cheapest PE meeting the budget.  The fork of
the block input and the skip path's FIFO are plumbing too and left out.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import HwgenError
from .quantize import Join, check_bits, segments

__all__ = ["CostTable", "cost_table", "layer_stats", "join_stats"]

DEFAULT_BITS = (1, 2, 3, 4, 5, 6, 8)


@dataclass
class CostTable:
    """``lut[layer][(a_prev, w, a)]``: estimated LUTs (``a`` is None for the last layer);
    ``folding[layer][(a_prev, w, a)]``: the ``{"pe", "simd"}`` that gives it.  A residual add's
    keys are ``(a_skip, a_body, a)`` (folding ``{"pe"}``).  ``sources[layer]``: the layers whose
    outputs it reads (``None``: the input; two for an add: the skip's producer, then the body's
    last layer); a layer it does not name reads the layer before it (the first: the input)."""

    layers: list
    in_bits: int
    bits: tuple
    fps: float
    clock_mhz: float
    family: str
    lut: dict = field(default_factory=dict)
    folding: dict = field(default_factory=dict)
    seconds: float = 0.0
    sources: dict = field(default_factory=dict)

    def inputs(self, i):
        """The producers of layer ``i``'s inputs (``None``: the model input)."""
        name = self.layers[i]
        if name in self.sources:
            return tuple(self.sources[name])
        return (None,) if i == 0 else (self.layers[i - 1],)

    def is_join(self, name):
        """Whether ``name`` is a residual add (two inputs, no weights)."""
        return len(self.sources.get(name, ())) == 2

    def pair(self, name, key):
        """The ``(w, a)`` of the assignment that cost key ``key`` of layer ``name`` stands for."""
        return (None, key[-1]) if self.is_join(name) else (key[1], key[2])

    def triple(self, assignment, i):
        """``(a_prev, w, a)`` of layer ``i`` under ``assignment`` (``{layer: (w, a)}``);
        ``(a_skip, a_body, a)`` of a residual add."""
        name = self.layers[i]
        ins = tuple(self.in_bits if s is None else assignment[s][1] for s in self.inputs(i))
        w, a = assignment[name]
        return ins + (a,) if self.is_join(name) else ins + (w, a)

    def total(self, assignment):
        """Estimated LUTs of ``assignment``: the sum over its layers."""
        return int(sum(self.lut[n][self.triple(assignment, i)] for i, n in enumerate(self.layers)))


def _observe(float_model, x, hooks):
    """Run ``float_model`` (in eval mode, no gradients; its mode restored) on the batch ``x`` with the
    forward hooks ``[(module, fn(module, inputs, output))]`` attached for that one pass."""
    import torch
    handles = [m.register_forward_hook(fn) for m, fn in hooks]
    was = float_model.training
    try:
        float_model.eval()
        with torch.no_grad():
            float_model(torch.as_tensor(np.asarray(x), dtype=torch.float32))
    finally:
        float_model.train(was)
        for h in handles:
            h.remove()


def layer_stats(float_model, x):
    """``{layer: (in_shape, out_shape, spread)}`` of every Linear/Conv2d over the batch ``x``
    (shapes without the batch): ``spread[c]`` is the share of output channel ``c``'s worst-case
    pre-activation range (``Σ|W_c| ×`` the input's range) that the data actually covers — what
    places the thresholds of a trained layer inside its accumulator range."""
    _, segs = segments(float_model)
    segs = [s for s in segs if not isinstance(s, Join)]
    seen = {}
    _observe(float_model, x, [(s.layer, lambda m, i, o, name=s.name: seen.__setitem__(name, (i[0].detach(), o.detach())))
                              for s in segs])
    out = {}
    for s in segs:
        i, o = seen[s.name]
        w = s.layer.weight.detach().abs().reshape(s.layer.weight.shape[0], -1).sum(dim=1)
        per_c = o.transpose(0, 1).reshape(o.shape[1], -1)                 # (channels, samples · pixels)
        covered = (per_c.max(dim=1).values - per_c.min(dim=1).values)
        worst = w * float(i.max() - min(float(i.min()), 0.0))
        spread = (covered / worst.clamp_min(1e-12)).clamp(0.01, 1.0).numpy()
        out[s.name] = (tuple(i.shape[1:]), tuple(o.shape[1:]), spread)
    return out


def join_stats(float_model, x, percentile=None):
    """``{add: (shape, (skip, body, out) clipping values, spread)}`` of every residual add over the batch
    ``x``: its input shape (without the batch), the high percentile of |A| of the block input, the body's
    output and the add's output (what each quantiser's scale starts from; the model input's is at most 1),
    and per channel the share of the sum's worst-case range the data covers."""
    from .sensitivity import ACT_PERCENTILE
    percentile = ACT_PERCENTILE if percentile is None else percentile
    _, segs = segments(float_model)
    joins = [s for s in segs if isinstance(s, Join)]
    seen = {}
    hooks = []
    for j in joins:
        hooks.append((j.module, lambda m, i, o, name=j.name:
                      seen.setdefault(name, {}).update(skip=i[0].detach(), out=o.detach())))
        hooks.append((j.module.body, lambda m, i, o, name=j.name: seen.setdefault(name, {}).update(body=o.detach())))
    _observe(float_model, x, hooks)
    out = {}
    for j in joins:
        t = seen[j.name]
        refs = [float(np.percentile(t[k].abs().numpy(), percentile)) for k in ("skip", "body", "out")]
        if j.skip is None:
            refs[0] = min(refs[0], 1.0)
        out[j.name] = (tuple(t["skip"].shape[1:]), tuple(refs))
    return out


def _weight_ints(w, bits):
    """Integer weights as the Brevitas quantiser of :mod:`hwgen.mixed.quantize` gives them."""
    w = np.asarray(w, dtype=np.float64)
    if bits == 1:
        return np.where(w >= 0, 1, -1).astype(np.int64)
    top = 2 ** (bits - 1) - 1
    scale = max(np.abs(w).max(), 1e-12) / top
    return np.clip(np.round(w / scale), -top, top).astype(np.int64)


def _act_dtype(bits, signed):
    from ..dtypes import dtype
    if bits == 1:
        return dtype("BIPOLAR")
    return dtype(f"{'INT' if signed else 'UINT'}{bits}")


def _thresholds(lo, hi, spread, n, rng):
    """Per channel ``n`` evenly spaced thresholds over the share ``spread[c]`` of ``[lo, hi + 1]``
    the layer's data covers (per-channel spacing: BatchNorm's scale; a random start: its shift)."""
    span = max(1, hi + 1 - lo)
    width = np.maximum(1.0, np.asarray(spread, dtype=np.float64) * span)[:, None]
    step = width / (n + 1)
    start = lo + rng.uniform(0.0, 1.0, size=(len(width), 1)) * (span - width) + step
    T = np.round(start + step * np.arange(n)[None, :])
    return np.clip(T, lo, hi + 1).astype(np.int64)


class _LayerModel:
    """The IR layers of one float layer, rebuilt for each bit-width triple."""

    def __init__(self, seg, stats, signed_out):
        import torch.nn as nn
        self.seg, self.signed_out = seg, signed_out
        shapes, self.spread = stats[:2], stats[2]
        m = seg.layer
        self.conv = isinstance(m, nn.Conv2d)
        w = m.weight.detach().cpu().numpy()
        if self.conv:
            if m.groups != 1:
                raise HwgenError(f"layer {seg.name}: the cost model takes convolutions with groups=1, "
                                 f"not groups={m.groups}")
            cin, h, wd = shapes[0]
            self.ifm, self.cin = (h, wd), cin
            self.kernel, self.stride = tuple(m.kernel_size), tuple(m.stride)
            p = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
            self.pad = (p[0], p[1], p[0], p[1])
            self.ofm = tuple(shapes[1][1:])
            w = w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)        # (cout, kh·kw·cin)
        self.w = w
        self.mh, self.mw = w.shape

    def layers(self, a_prev, wb, a, in_signed, rng):
        """``[SlidingWindow?, MVAU]`` at folding PE = SIMD = 1 (refolded by the caller)."""
        from ..dataflow.mvau import MVAU
        from ..dataflow.swg import SlidingWindow
        idt = _act_dtype(a_prev, in_signed)
        wdt = _act_dtype(wb, True)
        out = []
        if self.conv:
            out.append(SlidingWindow(f"{self.seg.name}_swg", ifm=self.ifm, channels=self.cin, kernel=self.kernel,
                                     stride=self.stride, pad=self.pad, dt=idt))
        L = MVAU(self.seg.name, mw=self.mw, mh=self.mh, in_dt=idt, wdt=wdt, out_dt=idt,
                 weights=_weight_ints(self.w, wb), spatial=self.ofm if self.conv else ())
        lo, hi = L.acc_range
        if a is None:
            from ..dtypes import smallest_dtype
            L.out_dt = smallest_dtype(lo, hi)
        else:
            odt = _act_dtype(a, self.signed_out)
            n = 1 if a == 1 else 2 ** a - 1
            L.thresholds = _thresholds(lo, hi, self.spread, n, rng)
            L.out_dt, L.out_base = odt, (-1 if a == 1 else odt.min)
        out.append(L)
        return out


def _po2_scale(ref, bits, signed):
    """The power-of-two scale a quantiser of ``bits`` starts from for clipping value ``ref`` (bipolar: 1)."""
    if bits == 1:
        return 1.0
    top = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    return float(2.0 ** math.ceil(math.log2(max(ref, 1e-12) / top)))


def _join_layer(name, stats, a_skip, a_body, a, signed):
    """The AddStreams of a residual add for one bit-width triple (``signed``: skip, body, output)."""
    from ..dataflow.branch import AddStreams
    shape, refs = stats
    ir_shape = tuple(shape[1:]) + (shape[0],) if len(shape) == 3 else tuple(shape)
    bits = (a_skip, a_body, a)
    sa, sb, so = (_po2_scale(r, b, sg) for r, b, sg in zip(refs, bits, signed))
    ka, kb = (int(round(sa / sb)), 1) if sa >= sb else (1, int(round(sb / sa)))
    unit = sa / ka
    odt = _act_dtype(a, signed[2])
    L = AddStreams(name, shape=ir_shape, in_dt=_act_dtype(a_skip, signed[0]), in_dt_b=_act_dtype(a_body, signed[1]),
                   ka=ka, kb=kb, out_dt=odt)
    lo, hi = L.acc_range
    if a == 1:
        T = np.zeros(1)
    else:
        levels = np.arange(odt.min + 1, odt.max + 1)           # the output levels above the lowest
        T = np.ceil((levels - 0.5) * so / unit)
    T = np.clip(T, lo, hi + 1).astype(np.int64)
    L.thresholds = np.repeat(T[None, :], ir_shape[-1], axis=0)
    L.out_base = -1 if a == 1 else odt.min
    return L


def _cheapest_pe(layer, budget, family):
    """(LUT, {"pe"}) of the cheapest PE of a one-stream-per-channel layer meeting ``budget`` cycles, or None."""
    from ..dataflow.base import divisors
    from ..dataflow.estimate import layer_resources
    best = None
    for pe in divisors(layer.channels):
        layer.pe = pe
        if layer.cycles() > budget:
            continue
        try:
            layer.validate()
        except HwgenError:
            continue
        lut = layer_resources(layer, family)["LUT"]
        if best is None or lut < best[0]:
            best = (int(lut), {"pe": pe})
    return best


def _cheapest(layers, budget, family):
    """(LUT, folding) of the cheapest PE/SIMD meeting ``budget`` cycles, or None."""
    from ..dataflow.base import divisors
    from ..dataflow.estimate import layer_resources
    from ..dataflow.folding import _tie
    *pre, L = layers
    best = None
    pixels = math.prod(L.spatial) if L.spatial else 1
    for pe in divisors(L.mh):
        # per PE the two smallest SIMDs that meet the budget (a wider SIMD only adds hardware)
        fit = [q for q in divisors(L.mw) if pixels * (L.mh // pe) * (L.mw // q) <= budget][:2]
        for simd in fit:
            L.pe, L.simd = pe, simd
            if L.cycles() > budget:
                continue
            for s in pre:
                _tie(s, L)
            try:
                for x in layers:
                    x.validate()
            except HwgenError:
                continue
            if any(s.cycles() > budget for s in pre):
                continue
            lut = sum(layer_resources(x, family)["LUT"] for x in layers)
            if best is None or lut < best[0]:
                best = (int(lut), {"pe": pe, "simd": simd})
    return best


def cost_table(float_model, x, in_bits, fps, clock_mhz=100.0, bits=DEFAULT_BITS, family="xilinx",
               seed=0, progress=None):
    """The :class:`CostTable` of ``float_model`` (input ``in_bits`` unsigned, like
    :func:`hwgen.mixed.quantize.quantize`) at ``fps`` frames/s and ``clock_mhz``; ``x``: a batch
    of training inputs (a few hundred: the spread of every layer's pre-activations)."""
    from ..dataflow.folding import cycle_budget
    t0 = time.perf_counter()
    check_bits("input", in_bits, "input")
    bad = [b for b in bits if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 8]
    if bad or not bits:
        raise HwgenError(f"cost: candidate bit widths must be 1..8, not {bad[0] if bad else 'none'!r}")
    bits = tuple(sorted(set(bits)))
    budget = cycle_budget(fps, clock_mhz)
    _, segs = segments(float_model)
    stats = layer_stats(float_model, x)
    table = CostTable([s.name for s in segs], in_bits, bits, fps, clock_mhz, family)
    by_name = {s.name: s for s in segs}
    residual = any(isinstance(s, Join) for s in segs)
    if residual:
        jstats = join_stats(float_model, x)
        table.sources = {s.name: tuple(s.sources) if isinstance(s, Join) else (s.source,) for s in segs}

    def signed(name):
        """Whether the quantiser after ``name`` (None: the input's) is signed (a chain keeps the rule
        "signed after Hardtanh"; in a residual model every quantiser but a ReLU's is signed)."""
        if name is None:
            return False
        kind = by_name[name].act_kind
        return kind != "relu" if residual else kind == "hardtanh"

    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        srcs = table.inputs(i)
        table.lut[seg.name], table.folding[seg.name] = {}, {}
        ins = [(in_bits,) if s is None else bits for s in srcs]
        if isinstance(seg, Join):
            sg = (signed(srcs[0]), signed(srcs[1]), signed(seg.name))
            for a_skip in ins[0]:
                for a_body in ins[1]:
                    for a in bits:
                        best = _cheapest_pe(_join_layer(seg.name, jstats[seg.name], a_skip, a_body, a, sg),
                                            budget, family)
                        if best is not None:
                            key = (a_skip, a_body, a)
                            table.lut[seg.name][key], table.folding[seg.name][key] = best
        else:
            in_signed = signed(srcs[0])
            model = _LayerModel(seg, stats[seg.name], signed(seg.name))
            rng = np.random.default_rng(seed + i)
            for a_prev in ins[0]:
                for wb in bits:
                    for a in ((None,) if last else bits):
                        # None: too slow at every folding, or hardware hwgen cannot build (a bipolar
                        # input to a zero-padded convolution): the allocation never picks the triple
                        best = _cheapest(model.layers(a_prev, wb, a, in_signed, rng), budget, family)
                        if best is not None:
                            table.lut[seg.name][(a_prev, wb, a)], table.folding[seg.name][(a_prev, wb, a)] = best
        if not table.lut[seg.name]:
            raise HwgenError(f"layer {seg.name}: no folding reaches {fps:g} frames/s at "
                             f"{clock_mhz:g} MHz (needs at most {budget} cycles per frame)")
        if progress:
            progress(f"cost: {seg.name} ({len(table.lut[seg.name])} bit-width choices) "
                     f"{time.perf_counter() - t0:.1f} s")
    table.seconds = time.perf_counter() - t0
    return table
