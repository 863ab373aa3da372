"""Direct Verilog emission of an :class:`~hwgen.cmvm.graph.AdderGraph`: one flat module, one assign per adder.

The module has a flattened input bus ``x`` (input ``n`` at bits ``[off_n +: bits_n]``, inputs in
order), a flattened output bus ``y`` (output ``m`` at ``[off_m +: w_m]``, each output its exact
width or a common ``out_bits``, two's complement when the output can be negative) and, when
pipelined, ``input clk``. Every node is a ``wire`` exactly as wide as its range: unsigned when it
cannot be negative, ``signed`` otherwise. An addition whose operands are all unsigned is written in
unsigned arithmetic; one with a signed operand casts the unsigned ones with ``$signed({1'b0, n})``
(the constant 0 bit costs nothing after synthesis). Verilog extends every operand to the width of
the assignment before adding or shifting, and the result is exact modulo that width; since the true
value fits the destination, the truncation on assignment is exact too.

Pipelining cuts the graph at adder depths: with cuts ``c_1 < c_2 < …`` a node of depth ``d`` is
computed in stage ``#{c_i < d}``; a value used in a later stage passes through one register per
stage boundary it crosses (``nK_d1``, ``nK_d2``, … shared by all its users), and every output is
taken in the last stage, so the latency is the number of cuts. A cut at 0 registers the inputs, a
cut at the graph's depth registers the outputs.
"""

import re

from ..errors import HwgenError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def cuts_every(graph, k):
    """The cuts registering after every ``k`` adder levels: ``[k, 2k, …]`` up to the graph's depth."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise HwgenError(f"cmvm: register every {k!r} levels; accepted: a positive integer")
    return list(range(k, graph.max_depth + 1, k))


def _cuts(pipeline_stages):
    if pipeline_stages is None or (isinstance(pipeline_stages, int) and not isinstance(pipeline_stages, bool) and pipeline_stages == 0):
        return []
    try:
        cuts = list(pipeline_stages)
    except TypeError:
        raise HwgenError(f"cmvm: pipeline_stages is {pipeline_stages!r}; accepted: 0 (combinational) or a list of adder depths to register at") from None
    for c in cuts:
        if not isinstance(c, int) or isinstance(c, bool) or c < 0:
            raise HwgenError(f"cmvm: pipeline cut {c!r}; accepted: adder depths, integers ≥ 0")
    return sorted(set(cuts))


def latency(pipeline_stages):
    """Clock cycles from ``x`` to ``y`` for the given ``pipeline_stages`` (0 when combinational)."""
    return len(_cuts(pipeline_stages))


def stage_delays(graph, cuts):
    """``(stage, delays)``: each node's pipeline stage, and how many registered copies of each node its users need."""
    stage = [sum(1 for c in cuts if c < d) for d in graph.depth]
    delays = {}
    n = graph.n_inputs
    uses = [(n + j, nd) for j, (p, _, _, q, _) in enumerate(graph.ops) for nd in ((p,) if q is None else (p, q))]
    for user, nd in uses:
        if stage[user] > stage[nd]:
            delays[nd] = max(delays.get(nd, 0), stage[user] - stage[nd])
    for nd, _ in graph.outputs:
        if nd is not None and len(cuts) > stage[nd]:
            delays[nd] = max(delays.get(nd, 0), len(cuts) - stage[nd])
    return stage, delays


def register_bits(graph, pipeline_stages):
    """Flip-flops of the module :func:`emit_verilog` writes for ``pipeline_stages`` (0 when combinational)."""
    _, delays = stage_delays(graph, _cuts(pipeline_stages))
    return sum(graph.width(k) * d for k, d in delays.items())


def input_layout(graph):
    """``[(offset, bits, signed)]`` of every input on the ``x`` bus."""
    out, off = [], 0
    for t in graph.in_types:
        out.append((off, t.bits, t.signed))
        off += t.bits
    return out


def output_layout(graph, out_bits=None):
    """``[(offset, width, signed)]`` of every output on the ``y`` bus (exact widths, or ``out_bits`` each)."""
    if out_bits is not None:
        if not isinstance(out_bits, int) or isinstance(out_bits, bool) or out_bits < 1:
            raise HwgenError(f"cmvm: out_bits is {out_bits!r}; accepted: None (exact widths) or a positive integer")
        need = max(graph.out_width(m) for m in range(graph.n_outputs))
        if need > out_bits:
            m = max(range(graph.n_outputs), key=graph.out_width)
            lo, hi = graph.out_range(m)
            raise HwgenError(f"cmvm: output {m} ranges over [{lo}, {hi}] and needs {need} bits; accepted: out_bits ≥ {need}")
    out, off = [], 0
    for m in range(graph.n_outputs):
        w = graph.out_width(m) if out_bits is None else out_bits
        out.append((off, w, graph.out_signed(m)))
        off += w
    return out


def _decl(signed, w):
    return f"{'signed ' if signed else ''}[{w - 1}:0]"


def emit_verilog(graph, name, *, pipeline_stages=0, out_bits=None, enable=False):
    """The Verilog text of one module ``name`` computing ``y = W @ x`` with ``graph`` (see the module docstring).

    ``pipeline_stages``: 0 for a purely combinational module, or a list of adder depths to register
    at (:func:`cuts_every` gives "every k levels"); ``out_bits``: a common output width instead of
    each output's exact width; ``enable``: the registers (when pipelined) load only while
    ``input en`` is high (a stalled stream pipeline holds its data). Deterministic: the same graph
    gives the same bytes.
    """
    if not isinstance(name, str) or not _IDENT.match(name):
        raise HwgenError(f"cmvm: module name {name!r}; accepted: a Verilog identifier ([A-Za-z_][A-Za-z0-9_$]*)")
    cuts = _cuts(pipeline_stages)
    lat = len(cuts)
    ins = input_layout(graph)
    outs = output_layout(graph, out_bits)
    n_in = graph.n_inputs
    xw = sum(b for _, b, _ in ins)
    yw = sum(w for _, w, _ in outs)

    stage, delays = stage_delays(graph, cuts)

    def ref(k, st):
        lag = st - stage[k]
        return f"n{k}" if lag == 0 else f"n{k}_d{lag}"

    body = []
    for i, (off, b, sg) in enumerate(ins):
        body.append(f"wire {_decl(sg, b)} n{i} = x[{off} +: {b}];")
    for j, (p, sp, g, q, sq) in enumerate(graph.ops):
        k = n_in + j
        st = stage[k]
        opnds = [(p, sp)] if q is None else [(p, sp), (q, sq)]
        mixed = any(graph.signed(nd) for nd, _ in opnds)
        parts = []
        for nd, s in opnds:
            e = ref(nd, st)
            if mixed and not graph.signed(nd):
                e = f"$signed({{1'b0, {e}}})"
            parts.append(f"({e} << {s})" if s else e)
        rhs = f"-{parts[0]}" if q is None else f"{parts[0]} {'+' if g > 0 else '-'} {parts[1]}"
        body.append(f"wire {_decl(graph.signed(k), graph.width(k))} n{k} = {rhs};")
    assigns = []
    for m, (off, w, _) in enumerate(outs):
        nd, s = graph.outputs[m]
        if nd is None:
            rhs = f"{{{w}{{1'b0}}}}"
        else:
            e = ref(nd, lat)
            rhs = f"{e} << {s}" if s else e
        assigns.append(f"assign y[{off} +: {w}] = {rhs};")
    regs, seq = [], []
    for k in sorted(delays):
        dcl = _decl(graph.signed(k), graph.width(k))
        for j in range(1, delays[k] + 1):
            regs.append(f"reg {dcl} n{k}_d{j};")
            prev = f"n{k}" if j == 1 else f"n{k}_d{j - 1}"
            seq.append(f"  n{k}_d{j} <= {prev};")
    ports = (["input clk"] + (["input en"] if enable else []) if lat else []) + [f"input [{xw - 1}:0] x", f"output [{yw - 1}:0] y"]
    st = graph.stats()
    lines = [
        f"// {name}: y = W @ x, {graph.n_outputs} outputs x {n_in} inputs as a shift-add network",
        f"// {st['adders']} adders, {st['adder_bits']} adder bits, depth {st['depth']}, latency {lat} cycles,"
        f" {sum(graph.width(k) * d for k, d in delays.items())} register bits"
        + (f" (registers after adder depths {', '.join(map(str, cuts))})" if cuts else " (combinational)"),
        f"module {name}(" + ", ".join(ports) + ");",
        *regs,  # declared before the wires that read them
        *body,
    ]
    if seq:
        lines += ["always @(posedge clk) begin"] + (["  if (en) begin", *("  " + q for q in seq), "  end"] if enable else seq) + ["end"]
    lines += [*assigns, "endmodule", ""]
    return "\n".join(lines)
