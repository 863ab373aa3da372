"""A constant-weight stream layer in Verilog: the shift-add network, the activation, the handshake.

:func:`emit_layer` writes two modules, ``<name>__mvm`` (the :class:`~hwgen.cmvm.graph.AdderGraph`,
:func:`~hwgen.cmvm.verilog.emit_verilog` with a clock enable) and ``<name>``, the layer with stream
ports (ARCHITECTURE §3: lane ``j`` of a word at bits ``[j·b +: b]``)::

    input  clk, rst                         // rst: synchronous, active high (clears the valid bits)
    input  i_valid;  output i_ready;  input  [XW-1:0] i_data     // one whole input vector per word
    output o_valid;  input  o_ready;  output [YW-1:0] o_data     // one whole output vector per word

Output ``m`` is computed from the network's output ``g[m]`` by one *post* stage:

* **thresholds** ``T`` (``M × K``, ascending per row, in units of ``g``): ``count = Σ_k [g ≥ T[m, k]]``
  as constant comparisons (a threshold at or below ``g``'s exact minimum is a constant 1, one above
  its maximum a constant 0: no comparator), and the thermometer code turned into binary without an
  adder: bit ``j`` of the count is the parity of the comparisons ``k = i·2^j − 1`` (``i ≥ 1``; the
  comparisons are monotone, so ``⌊count / 2^j⌋`` of those are 1). The output code is
  ``base_code + step_code·count`` modulo ``2^out_bits``;
* **affine** (no thresholds): ``scale·g + offset[m]`` modulo ``2^out_bits`` (``scale`` 1 or 2: a
  BIPOLAR input enters the network as its 0/1 code ``b`` and ``W·x = 2·W·b − Σ W``).

Pipelining, ``levels = k``: ``0`` is purely combinational (``o_valid = i_valid``, ``i_ready =
o_ready``: no register at all). ``k ≥ 1`` registers the network after every ``k`` adder levels
(the first stage may hold fewer when that needs fewer register bits, :func:`layer_cuts`), the
network's outputs when a post stage follows (it is a stage of its own) and always the output, so
the latency is ``⌈D / k⌉`` cycles for a network of ``D`` levels, one more with a post stage (at least
1); every register, and a valid bit per stage,
advances together when ``en = ~o_valid | o_ready`` (a full pipeline stalls as a whole, no word is
lost or duplicated; one word per cycle while the output is ready).
"""

import numpy as np

from ..errors import HwgenError
from .verilog import _IDENT, emit_verilog, output_layout, register_bits

__all__ = ["emit_layer", "layer_latency", "layer_cuts", "post_levels", "count_bits"]


def count_bits(k):
    """Bits of a count of ``k`` comparisons (0 … k)."""
    return max(1, int(k).bit_length())


def post_levels(thresholds, scale=1, offsets=None):
    """Adder levels of the post stage: 1 with thresholds or a non-trivial affine map, else 0."""
    if thresholds is not None:
        return 1
    return int(scale != 1 or (offsets is not None and np.any(np.asarray(offsets) != 0)))


def layer_cuts(graph, levels, post=0):
    """The network's pipeline cuts (adder depths) for ``levels`` adder levels per stage: as few stages as
    ``⌈D / levels⌉`` allows over the network's ``D`` levels, and of the placements with no stage over
    ``levels`` levels (the cuts ``o, o + levels, …`` for a first stage of ``o ≤ levels`` levels) the one
    with the fewest register bits; with a post stage the network's outputs are registered too (a cut at
    ``D``): the comparisons and their encoding are a stage of their own (on ECP5 they are as deep as two
    adder levels, and sharing a stage with the last adders made them the critical path)."""
    if not levels:
        return []
    total = graph.max_depth
    tail = [total] if post and total else []
    best = list(range(levels, total, levels))
    n = len(best)
    best_bits = register_bits(graph, best)
    for o in range(1, levels):
        cuts = list(range(o, total, levels))
        if len(cuts) != n:
            continue
        bits = register_bits(graph, cuts)
        if bits < best_bits:
            best, best_bits = cuts, bits
    return best + tail


def layer_latency(graph, levels, post=0):
    """Cycles from an input word's handshake to its output word being valid (0: combinational): one per
    cut of :func:`layer_cuts` (every placement it chooses between has as many) and the output register."""
    if not levels:
        return 0
    depth = graph.max_depth
    return len(range(levels, depth, levels)) + (1 if post and depth else 0) + 1


def _const(v, w, signed):
    """A ``w``-bit literal of ``v`` in a comparison with a ``w``-bit wire."""
    if not signed:
        return f"{w}'d{v}"
    return f"{w}'sd{v}" if v >= 0 else f"-{w}'sd{-v}"


def _clipped(graph, m, T):
    """``[(k, literal)]`` of the comparisons of output ``m`` against ``T`` that are not constant,
    and ``{k: '1'|'0'}`` for those that are."""
    lo, hi = graph.out_range(m)
    return [(k, int(t)) for k, t in enumerate(T) if lo < t <= hi], {k: "1'b1" if t <= lo else "1'b0" for k, t in enumerate(T) if not lo < t <= hi}


def comparators(graph, thresholds):
    """``(count, bits)``: the non-constant comparisons of ``thresholds`` against the network's outputs, and Σ their widths."""
    n, bits = 0, 0
    for m, T in enumerate(np.asarray(thresholds)):
        live, _ = _clipped(graph, m, T)
        n += len(live)
        bits += len(live) * graph.out_width(m)
    return n, bits


def emit_layer(graph, name, *, levels=0, out_bits, thresholds=None, base_code=0, step_code=1, scale=1, offsets=None):
    """``(verilog, latency)`` of the stream layer ``name`` (see the module docstring) around ``graph``.

    ``levels``: adder levels per register stage (0: combinational); ``out_bits``: bits per output
    lane; ``thresholds`` (``M × K`` integers ascending per row, in units of the network's outputs)
    with ``base_code``/``step_code``, or the affine map ``scale``/``offsets`` (``M`` integers)."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise HwgenError(f"cmvm: module name {name!r}; accepted: a Verilog identifier ([A-Za-z_][A-Za-z0-9_$]*)")
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 0:
        raise HwgenError(f"cmvm: {levels!r} adder levels per stage; accepted: 0 (combinational) or a positive integer")
    M = graph.n_outputs
    if thresholds is not None:
        thresholds = np.asarray(thresholds, dtype=object)
        if thresholds.ndim != 2 or thresholds.shape[0] != M:
            raise HwgenError(f"cmvm: thresholds of shape {thresholds.shape}; accepted: ({M}, K)")
        if thresholds.shape[1] and np.any(np.diff(thresholds.astype(np.int64), axis=1) < 0):
            raise HwgenError("cmvm: thresholds must be ascending per output")
    if scale not in (1, 2):
        raise HwgenError(f"cmvm: scale {scale!r}; accepted: 1 or 2")
    offsets = [0] * M if offsets is None else [int(v) for v in offsets]
    post = post_levels(thresholds, scale, offsets)
    cuts = layer_cuts(graph, levels, post)
    lat = 0 if not levels else len(cuts) + 1
    mvm = emit_verilog(graph, f"{name}__mvm", pipeline_stages=cuts, enable=True)
    ins = sum(t.bits for t in graph.in_types)
    gl = output_layout(graph)
    gw = sum(w for _, w, _ in gl)
    ob = int(out_bits)
    yw = M * ob
    L = []
    L.append(f"// {name}: a constant-weight layer, {M} outputs x {graph.n_inputs} inputs, "
             f"{'combinational' if not lat else f'latency {lat} cycles'}")
    L.append(f"module {name}(clk, rst, i_valid, i_ready, i_data, o_valid, o_ready, o_data);")
    L.append("input clk;\ninput rst;\ninput i_valid;\noutput i_ready;")
    L.append(f"input [{ins - 1}:0] i_data;\noutput o_valid;\ninput o_ready;\noutput [{yw - 1}:0] o_data;")
    L.append(f"wire [{gw - 1}:0] g;")
    L.append(f"wire [{yw - 1}:0] r;")
    if lat:
        L.append(f"reg [{lat - 1}:0] v;")
        L.append(f"reg [{yw - 1}:0] o_q;")
        L.append(f"wire en = !v[{lat - 1}] | o_ready;")
        L.append(f"{name}__mvm mvm(.clk(clk), .en(en), .x(i_data), .y(g));" if cuts else f"{name}__mvm mvm(.x(i_data), .y(g));")
    else:
        L.append(f"{name}__mvm mvm(.x(i_data), .y(g));")
    for m, (off, w, sg) in enumerate(gl):
        s = "signed " if sg else ""
        o = f"r[{m * ob} +: {ob}]"
        L.append(f"wire {s}[{w - 1}:0] g{m} = g[{off} +: {w}];")
        if thresholds is not None:
            T = thresholds[m]
            K = len(T)
            if K == 0:
                L.append(f"assign {o} = {ob}'d{base_code % (1 << ob)};")
                continue
            live, fixed = _clipped(graph, m, T)
            for k, t in live:
                L.append(f"wire t{m}_{k} = g{m} >= {_const(t, w, sg)};")
            t = {k: f"t{m}_{k}" for k, _ in live}
            t.update(fixed)
            cb = count_bits(K)
            bits = []
            for j in reversed(range(cb)):
                terms = [t[i * (1 << j) - 1] for i in range(1, K // (1 << j) + 1)]
                bits.append(" ^ ".join(terms))
            L.append(f"wire [{cb - 1}:0] c{m} = {{{', '.join(f'({b})' for b in bits)}}};")
            L.append(f"assign {o} = {ob}'d{base_code % (1 << ob)} + {ob}'d{step_code % (1 << ob)} * c{m};")
        else:
            L.append(f"wire {s}[{ob - 1}:0] e{m} = g{m};")
            a = f"(e{m} << 1)" if scale == 2 else f"e{m}"
            c = offsets[m] % (1 << ob)
            L.append(f"assign {o} = {a}" + (f" + {ob}'d{c};" if c else ";"))
    if lat:
        L.append("always @(posedge clk) begin")
        L.append(f"  if (rst) v <= {lat}'d0;")
        L.append(f"  else if (en) v <= {{v[{lat - 2}:0], i_valid}};" if lat > 1 else "  else if (en) v <= i_valid;")
        L.append("  if (en) o_q <= r;")
        L.append("end")
        L.append(f"assign o_valid = v[{lat - 1}];\nassign i_ready = en;\nassign o_data = o_q;")
    else:
        L.append("assign o_valid = i_valid;\nassign i_ready = o_ready;\nassign o_data = r;")
    L.append("endmodule\n")
    return mvm + "\n" + "\n".join(L), lat
