"""Hardware of the ConstMVAU layer: the constant-weight network as a Verilog module hwgen writes itself.

A fully unrolled layer with constant weights is thousands of small adders; built as an Amaranth
expression tree and expanded by the Verilog writer it took minutes and megabytes (issue 17: the
jet MLP fully unrolled as MVAUs was 142 k lines). So the component instantiates a module that
:func:`hwgen.cmvm.layer.emit_layer` writes directly, one ``assign`` per adder, and
:func:`hwgen.hdl.top.to_verilog` appends it to the top's Verilog (like the ROM files' modules)::

    <top>__<layer>        the stream layer: i_valid/i_ready/i_data, o_valid/o_ready/o_data
    <top>__<layer>__mvm   its shift-add network

The stream contract is the layer kind's (:class:`~hwgen.dataflow.cmvau.ConstMVAU`): one whole
input vector per word in, one whole output vector per word out, one per cycle, each output
``layer.latency()`` cycles after its input's handshake (0: the same cycle, combinational).
"""

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal

from ..cmvm.layer import emit_layer
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

    def elaborate(self, platform):
        m = Module()
        name = self.module_name()
        files = getattr(self, "verilog_modules", None)
        if files is not None:
            files.add(name, self.verilog())
        m.submodules.cmvm = Instance(
            name, i_clk=ClockSignal("sync"), i_rst=ResetSignal("sync"),
            i_i_valid=self.i.valid, o_i_ready=self.i.ready, i_i_data=self.i.payload,
            o_o_valid=self.o.valid, i_o_ready=self.o.ready, o_o_data=self.o.payload)
        return m
