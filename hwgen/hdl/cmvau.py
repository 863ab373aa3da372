"""Hardware of the ConstMVAU layer: the constant-weight network as a Verilog module hwgen writes itself.

A fully unrolled layer with constant weights is thousands of small adders; built as an Amaranth
expression tree and expanded by the Verilog writer it took minutes and megabytes (issue 17: the
jet MLP fully unrolled as MVAUs was 142 k lines). So the component instantiates a module that
:func:`hwgen.cmvm.layer.emit_layer` writes directly, one ``assign`` per adder, and
:func:`hwgen.hdl.top.to_verilog` appends it to the top's Verilog (like the ROM files' modules)::

    <top>__<layer>        the stream layer: i_valid/i_ready/i_data, o_valid/o_ready/o_data
    <top>__<layer>__mvm   its shift-add network

Elaborated outside :func:`~hwgen.hdl.top.to_verilog` (no ``verilog_modules`` collector: a component
or a :class:`~hwgen.hdl.top.Top` in the Amaranth simulator), the component builds the same network,
stage for stage, from Amaranth statements instead (:meth:`ConstMVAUComponent.native`): slower to
generate, but simulable, and a second implementation the Verilog is tested against.

The stream contract is the layer kind's (:class:`~hwgen.dataflow.cmvau.ConstMVAU`): one whole
input vector per word in, one whole output vector per word out, one per cycle, each output
``layer.latency()`` cycles after its input's handshake (0: the same cycle, combinational).
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, ResetSignal, Signal, signed, unsigned

from ..cmvm.layer import count_bits, emit_layer
from ..cmvm.verilog import stage_delays
from ..dataflow.cmvau import ConstMVAU
from .common import LayerComponent, implements, sanitize

__all__ = ["ConstMVAUComponent", "VerilogModules", "layer_verilog"]


def layer_verilog(layer, name):
    """``(text, latency)``: the Verilog modules ``name`` and ``name__mvm`` of ConstMVAU ``layer``."""
    p = layer.post()
    return emit_layer(layer.graph, name, levels=layer.levels, out_bits=layer.odt.bits, thresholds=p["thresholds"],
                      base_code=p["base_code"], step_code=p["step_code"], scale=p["scale"], offsets=p["offsets"])


class VerilogModules:
    """The Verilog modules a design's components write themselves, in elaboration order; ``prefix``
    starts every module name (the top's name)."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.modules = []              # (name, text)

    def add(self, name, text):
        if any(n == name for n, _ in self.modules):
            raise ValueError(f"Verilog module {name} made twice")
        self.modules.append((name, text))

    def verilog(self):
        return "".join("\n" + text for _, text in self.modules)


@implements(ConstMVAU)
class ConstMVAUComponent(LayerComponent):
    """The constant-weight layer of an IR :class:`~hwgen.dataflow.cmvau.ConstMVAU`: an ``Instance`` of the
    module :meth:`verilog` writes (collected by the design's :class:`VerilogModules`, the component's
    ``verilog_modules`` attribute, with its instance name in ``module_scope``)."""

    WHAT = "a ConstMVAU"

    def module_name(self):
        files = getattr(self, "verilog_modules", None)
        prefix = files.prefix if files is not None else "hwgen"
        return f"{prefix}__{getattr(self, 'module_scope', sanitize(self.layer.name))}"

    def verilog(self):
        """The Verilog text of the layer's modules (the layer and its network)."""
        text, lat = layer_verilog(self.layer, self.module_name())
        assert lat == self.LATENCY, (lat, self.LATENCY)
        return text

    def native(self, m):
        """The layer in Amaranth statements on ``m``: the same nodes, stages and output stage as the Verilog."""
        l = self.layer
        g, p, cuts, lat = l.graph, l.post(), l.cuts(), self.LATENCY
        stage, delays = stage_delays(g, cuts)
        last = len(cuts)
        en = Signal()
        if lat:
            v = Signal(lat)
            m.d.comb += [en.eq(~v[lat - 1] | self.o.ready), self.i.ready.eq(en), self.o.valid.eq(v[lat - 1])]
            with m.If(en):
                m.d.sync += v.eq(Cat(self.i.valid, v[:-1]))
        else:
            m.d.comb += [self.i.ready.eq(self.o.ready), self.o.valid.eq(self.i.valid)]

        def shape(k):
            return signed(g.width(k)) if g.signed(k) else unsigned(g.width(k))
        node, copies = [], {}
        off = 0
        for k, t in enumerate(g.in_types):
            s = Signal(shape(k), name=f"n{k}")
            m.d.comb += s.eq(self.i.payload[off:off + t.bits])
            off += t.bits
            node.append(s)

        def ref(k, st):
            return node[k] if st == stage[k] else copies[k][st - stage[k] - 1]
        node += [Signal(shape(g.n_inputs + j), name=f"n{g.n_inputs + j}") for j in range(len(g.ops))]
        for k in sorted(delays):                # a value used in later stages: one register per boundary crossed
            regs = [Signal(shape(k), name=f"n{k}_d{d + 1}") for d in range(delays[k])]
            with m.If(en):
                m.d.sync += [r.eq(prev) for r, prev in zip(regs, [node[k]] + regs[:-1])]
            copies[k] = regs
        for j, (a, sa, sign, b, sb) in enumerate(g.ops):
            k = g.n_inputs + j
            x = ref(a, stage[k]) << sa
            m.d.comb += node[k].eq(-x if b is None else (x + (ref(b, stage[k]) << sb) if sign > 0 else x - (ref(b, stage[k]) << sb)))
        ob = l.odt.bits
        codes = []
        for c, (nd, sh) in enumerate(g.outputs):
            gv = Const(0, 1) if nd is None else ref(nd, last) << sh
            if p["thresholds"] is not None:
                T = [int(t) for t in p["thresholds"][c]]
                t = [gv >= th for th in T]
                bits = [Const(0, 1)] if not T else \
                    [_xor([t[i * (1 << j) - 1] for i in range(1, len(T) // (1 << j) + 1)]) for j in range(count_bits(len(T)))]
                value = p["base_code"] + p["step_code"] * Cat(*bits)
            else:
                value = gv * p["scale"] + p["offsets"][c]
            code = Signal(ob, name=f"y{c}")         # the lane code: the value modulo 2^ob
            m.d.comb += code.eq(value)
            codes.append(code)
        r = Cat(*codes)
        if lat:
            o_q = Signal(len(r))
            with m.If(en):
                m.d.sync += o_q.eq(r)
            m.d.comb += self.o.payload.eq(o_q)
        else:
            m.d.comb += self.o.payload.eq(r)

    def elaborate(self, platform):
        m = Module()
        name = self.module_name()
        files = getattr(self, "verilog_modules", None)
        if files is None:                       # not written as Verilog by to_verilog: Amaranth statements
            self.native(m)
            return m
        files.add(name, self.verilog())
        m.submodules.cmvm = Instance(
            name, i_clk=ClockSignal("sync"), i_rst=ResetSignal("sync"),
            i_i_valid=self.i.valid, o_i_ready=self.i.ready, i_i_data=self.i.payload,
            o_o_valid=self.o.valid, i_o_ready=self.o.ready, o_o_data=self.o.payload)
        return m


def _xor(bits):
    out = bits[0]
    for b in bits[1:]:
        out = out ^ b
    return out
