"""The stitched top level: a chain of layer components behind AXI4-Stream ports.

:class:`Top` builds one component per layer of a
:class:`~hwgen.dataflow.DataflowGraph` (each instantiated as a submodule named
after its layer), connects them output to input, and exposes the flat ports
of ARCHITECTURE §3::

    s_axis_tdata  In(tdata_bits(in_lanes, idt))     m_axis_tdata  Out(tdata_bits(out_lanes, odt))
    s_axis_tvalid In(1)                             m_axis_tvalid Out(1)
    s_axis_tready Out(1)                            m_axis_tready In(1)

plus Amaranth's ``clk`` and ``rst`` (``sync`` domain, active-high synchronous
reset). ``tdata`` is padded to a multiple of 8 bits: the padding bits of
``s_axis_tdata`` are ignored and those of ``m_axis_tdata`` are zero.
"""

import math
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwgenError
from ..streams import tdata_bits
from .common import sanitize
from .dwc import WidthConverterComponent
from .fifo import FIFOComponent
from .mvau import MVAUComponent
from .pool import GlobalPoolComponent, PoolComponent
from .swg import SlidingWindowComponent
from .thresholding import ThresholdingComponent
from .vvau import VVAUComponent

__all__ = ["COMPONENTS", "component_for", "Top", "to_verilog"]

#: Layer kind → component class.
COMPONENTS = {
    "MVAU": MVAUComponent,
    "Thresholding": ThresholdingComponent,
    "FIFO": FIFOComponent,
    "WidthConverter": WidthConverterComponent,
    "SlidingWindow": SlidingWindowComponent,
    "VVAU": VVAUComponent,
    "Pool": PoolComponent,
    "GlobalPool": GlobalPoolComponent,
}


def component_for(layer):
    """The hardware component of an IR layer (a new :class:`wiring.Component`)."""
    kind = getattr(layer, "kind", None)
    if kind not in COMPONENTS:
        raise HwgenError(f"layer {getattr(layer, 'name', layer)}: kind must be one of "
                         f"{sorted(COMPONENTS)} to have hardware, not {kind!r}")
    return COMPONENTS[kind](layer)


def check_chain(layers):
    """Raise :class:`HwgenError` unless each layer's output stream fits the next one's input."""
    if not layers:
        raise HwgenError("graph has no hardware layers: nothing to generate")
    for a, b in zip(layers, layers[1:]):
        if math.prod(a.out_shape) != math.prod(b.in_shape):     # a reshape (flatten) is free: same stream
            raise HwgenError(f"layer {b.name}: input shape {tuple(b.in_shape)} must hold as many values as "
                             f"{a.name}'s output shape {tuple(a.out_shape)}")
        if a.odt != b.idt:
            raise HwgenError(f"layer {b.name}: input type {b.idt} must match {a.name}'s output type {a.odt}")
        if a.out_lanes != b.in_lanes:
            raise HwgenError(f"layer {b.name}: input lanes {b.in_lanes} must match {a.name}'s output "
                             f"lanes {a.out_lanes} (a WidthConverter is missing)")


class Top(wiring.Component):
    """The accelerator: every layer of ``graph`` in a chain, AXI4-Stream in and out.

    Parameters
    ----------
    graph : :class:`hwgen.dataflow.DataflowGraph`
        A chain whose plumbing (FIFOs, width converters) is already inserted.

    Attributes
    ----------
    components : list of (name, :class:`wiring.Component`)
        The layer components in stream order, with their submodule names.
    """

    def __init__(self, graph):
        layers = list(graph.layers)
        self.graph = graph
        self.components = []
        try:
            check_chain(layers)
            used = set()
            for layer in layers:
                name = base = sanitize(layer.name)
                k = 1
                while name in used:
                    name, k = f"{base}_{k}", k + 1
                used.add(name)
                self.components.append((name, component_for(layer)))
        except Exception:
            # a rejected top (and the components made so far) must not also warn
            # that it was never elaborated
            self._MustUse__silence = True
            for _, comp in self.components:
                comp._MustUse__silence = True
            raise
        first, last = layers[0], layers[-1]
        super().__init__({
            "s_axis_tdata": In(tdata_bits(first.in_lanes, first.idt)),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "m_axis_tdata": Out(tdata_bits(last.out_lanes, last.odt)),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        for name, comp in self.components:
            m.submodules[name] = comp
        for (_, a), (_, b) in zip(self.components, self.components[1:]):
            wiring.connect(m, a.o, b.i)
        head, tail = self.components[0][1], self.components[-1][1]
        m.d.comb += [
            head.i.payload.eq(self.s_axis_tdata[:len(head.i.payload)]),
            head.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(head.i.ready),
            self.m_axis_tdata.eq(tail.o.payload),
            self.m_axis_tvalid.eq(tail.o.valid),
            tail.o.ready.eq(self.m_axis_tready),
        ]
        return m


def to_verilog(graph, name="hwgen_top"):
    """Verilog text of :class:`Top` for ``graph`` (deterministic: same graph, same bytes)."""
    return verilog.convert(Top(graph), name=name, emit_src=False)
