"""The stitched top level: the layer components of a dataflow DAG behind AXI4-Stream ports.

:class:`Top` builds one component per layer of a
:class:`~hwgen.dataflow.DataflowGraph` (each instantiated as a submodule named
after its layer) and connects every stream a layer reads
(:meth:`~hwgen.dataflow.DataflowGraph.input_refs`: ``"@input"``, ``"name"`` or
``"name:k"``, output ``k`` of a multi-output layer such as a Duplicate) to its
producer. A plain chain (no explicit ``inputs``) connects each layer to the
previous one. Every stream has exactly one consumer: the graph input feeds
the flat slave port, the last layer's output 0 drives the master port, and
every other output is read by exactly one later layer (fan-out is a
Duplicate; FIFOs and width converters sit on edges as layers). Ports of ARCHITECTURE §3::

    s_axis_tdata  In(tdata_bits(in_lanes, idt))     m_axis_tdata  Out(tdata_bits(out_lanes, odt))
    s_axis_tvalid In(1)                             m_axis_tvalid Out(1)
    s_axis_tready Out(1)                            m_axis_tready In(1)

plus Amaranth's ``clk`` and ``rst`` (``sync`` domain, active-high synchronous
reset). ``tdata`` is padded to a multiple of 8 bits: the padding bits of
``s_axis_tdata`` are ignored and those of ``m_axis_tdata`` are zero.

Component ports: a layer with one input stream has ``i``, with several
``i0, i1, …``; one output ``o``, several ``o0, o1, …``.
"""

import math
from amaranth.back import rtlil, verilog
from amaranth.hdl import Elaboratable, Fragment, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..dataflow.graph import INPUT
from ..errors import HwgenError
from ..streams import tdata_bits
# the component modules register themselves with `implements` (COMPONENTS: IR class → component)
from . import branch, cmvau, dwc, fifo, labelselect, mvau, pool, requant, swg, thresholding, vvau  # noqa: F401
from .cmvau import VerilogModules
from .common import COMPONENTS, sanitize
from .rom import RomFiles

__all__ = ["COMPONENTS", "component_for", "input_port", "output_port", "Top", "to_verilog", "module_names",
           "submodule_names"]


def component_for(layer):
    """The hardware component of an IR layer (a new :class:`wiring.Component`)."""
    comp = next((COMPONENTS[c] for c in type(layer).__mro__ if c in COMPONENTS), None)
    if comp is None:
        kind = getattr(layer, "kind", None)
        raise HwgenError(f"layer {getattr(layer, 'name', layer)}: kind must be one of "
                         f"{sorted(c.kind for c in COMPONENTS)} to have hardware, not {kind!r}")
    return comp(layer)


def _n_inputs(layer):
    return int(getattr(layer, "n_inputs", 1))


def _n_outputs(layer):
    return int(getattr(layer, "n_outputs", 1))


def input_port(comp, layer, k=0):
    """Input stream ``k`` of ``comp`` (the component of ``layer``): ``i`` or ``i{k}``."""
    return comp.i if _n_inputs(layer) == 1 else getattr(comp, f"i{k}")


def output_port(comp, layer, k=0):
    """Output stream ``k`` of ``comp`` (the component of ``layer``): ``o`` or ``o{k}``."""
    return comp.o if _n_outputs(layer) == 1 else getattr(comp, f"o{k}")


def _parse_ref(ref):
    name, _, port = str(ref).partition(":")
    try:
        return name, int(port) if port else 0
    except ValueError:
        return name, None


def _in_shapes(layer):
    return list(getattr(layer, "in_shapes", None) or [layer.in_shape] * _n_inputs(layer))


def _idts(layer):
    return list(getattr(layer, "idts", None) or [layer.idt] * _n_inputs(layer))


def resolve_edges(layers):
    """The streams of a layer list: ``(producer index or None for the graph input,
    output port, consumer index, input port)`` per consumed stream, in layer and
    input order.

    A layer without explicit ``inputs`` reads the previous layer's output 0
    (the graph input for the first layer). Raises :class:`HwgenError` (naming
    the layer) for an unknown or later producer, a wrong number of inputs, a
    stream read twice, an unread output (other than the last layer's output
    0, which leaves the accelerator) or a producer/consumer mismatch in
    size, type or lanes.
    """
    if not layers:
        raise HwgenError("graph has no hardware layers: nothing to generate")
    index = {}
    for n, l in enumerate(layers):
        index.setdefault(l.name, []).append(n)
    edges, reader = [], {}
    for b_i, b in enumerate(layers):
        explicit = tuple(getattr(b, "inputs", ()) or ())
        if explicit:
            refs = [str(r) for r in explicit]
        else:
            refs = [INPUT] if b_i == 0 else [f"{layers[b_i - 1].name}"]
        if len(refs) != _n_inputs(b):
            raise HwgenError(f"layer {b.name}: reads {len(refs)} stream(s) {refs}, needs {_n_inputs(b)}")
        for k, ref in enumerate(refs):
            name, port = _parse_ref(ref)
            if port is None or port < 0:
                raise HwgenError(f"layer {b.name}: input {ref!r} must be '@input', '<layer>' or '<layer>:<output>'")
            if not explicit:
                a_i = None if b_i == 0 else b_i - 1
            elif name == INPUT:
                if port:
                    raise HwgenError(f"layer {b.name}: input {ref!r}: the graph has one input, '@input'")
                a_i = None
            else:
                found = [n for n in index.get(name, []) if n < b_i]
                if not found:
                    raise HwgenError(f"layer {b.name}: input {ref!r} is not produced by an earlier layer")
                if len(index[name]) > 1:
                    raise HwgenError(f"layer {b.name}: input {ref!r} names {len(index[name])} layers")
                a_i = found[0]
            key = (a_i, port)
            if a_i is not None:
                a = layers[a_i]
                if port >= _n_outputs(a):
                    raise HwgenError(f"layer {b.name}: input {ref!r}: {a.name} has {_n_outputs(a)} output(s)")
            if key in reader:
                other = layers[reader[key]].name
                src = "the graph input" if a_i is None else f"stream {ref!r}"
                raise HwgenError(f"layer {b.name}: {src} is already read by layer {other} "
                                 f"(a stream has one consumer: fan-out needs a Duplicate)")
            reader[key] = b_i
            if a_i is not None:
                _check_edge(layers[a_i], port, b, k)
            edges.append((a_i, port, b_i, k))
    if (None, 0) not in reader:
        raise HwgenError(f"layer {layers[0].name}: no layer reads the graph input '@input'")
    for a_i, a in enumerate(layers):
        for port in range(_n_outputs(a)):
            if (a_i, port) in reader:
                continue
            if a_i == len(layers) - 1 and port == 0:
                continue
            what = "output" if _n_outputs(a) == 1 else f"output {port}"
            raise HwgenError(f"layer {a.name}: {what} is not read by any layer (only the last layer's "
                             f"output 0 leaves the accelerator)")
    return edges


def _check_edge(a, port, b, k):
    """Raise :class:`HwgenError` unless output ``port`` of ``a`` fits input ``k`` of ``b``."""
    what = "input" if _n_inputs(b) == 1 else f"input {k}"
    src = f"{a.name}'s output" if _n_outputs(a) == 1 else f"{a.name}'s output {port}"
    shape, idt = _in_shapes(b)[k], _idts(b)[k]
    if math.prod(a.out_shape) != math.prod(shape):     # a reshape (flatten) is free: same stream
        raise HwgenError(f"layer {b.name}: {what} shape {tuple(shape)} must hold as many values as "
                         f"{src} shape {tuple(a.out_shape)}")
    if a.odt != idt:
        raise HwgenError(f"layer {b.name}: {what} type {idt} must match {src} type {a.odt}")
    if a.out_lanes != b.in_lanes:
        raise HwgenError(f"layer {b.name}: {what} lanes {b.in_lanes} must match {src} "
                         f"lanes {a.out_lanes} (a WidthConverter is missing)")


def submodule_names(layers):
    """The submodule name of each of ``layers``, in order: the layer's name made a Verilog
    identifier (:func:`~hwgen.hdl.common.sanitize`), then ``_1``, ``_2`` … until unique."""
    used, names = set(), []
    for layer in layers:
        name = base = sanitize(layer.name)
        k = 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names.append(name)
    return names


def module_names(graph, top="hwgen_top"):
    """``{layer name: Verilog module name}`` of ``graph``'s layers in the emitted top ``top``
    (``hwgen_top.fc0``: the top's name, a dot, the layer's submodule name), as :class:`Top` names them."""
    layers = list(graph.layers)
    return {l.name: f"{top}.{n}" for l, n in zip(layers, submodule_names(layers))}


class Top(wiring.Component):
    """The accelerator: every layer of ``graph`` connected along its streams, AXI4-Stream in and out.

    Parameters
    ----------
    graph : :class:`hwgen.dataflow.DataflowGraph`
        A chain or DAG (layers in topological order) whose plumbing (Duplicates,
        FIFOs, width converters) is already inserted.
    rom_files : :class:`hwgen.hdl.rom.RomFiles`, optional
        Collects the layers' ROMs too big to emit inline (``$readmemh`` modules); without it
        every ROM is an inline Amaranth memory.
    modules : :class:`hwgen.hdl.cmvau.VerilogModules`, optional
        Collects the Verilog modules that layers write themselves (constant-weight layers); without
        it their modules are named after the layer alone and not collected.
    on_layer : callable, optional
        ``on_layer(index, name, done)`` before (``done`` False) and after each layer's
        component is elaborated (progress reports).

    Attributes
    ----------
    components : list of (name, :class:`wiring.Component`)
        The layer components in layer order, with their submodule names.
    edges : list of (producer index or None, output port, consumer index, input port)
        The streams between components (None: the graph input).
    """

    def __init__(self, graph, *, rom_files=None, on_layer=None, modules=None):
        layers = list(graph.layers)
        self.graph = graph
        self.components = []
        self._on_layer = on_layer
        try:
            self.edges = resolve_edges(layers)
            for layer, name in zip(layers, submodule_names(layers)):
                comp = component_for(layer)
                if rom_files is not None:         # big ROMs of this layer become $readmemh files
                    comp.rom_files, comp.rom_scope = rom_files, name
                if modules is not None:           # layers that write their own Verilog modules
                    comp.verilog_modules, comp.module_scope = modules, name
                self.components.append((name, comp))
        except Exception:
            # a rejected top (and the components made so far) must not also warn
            # that it was never elaborated
            self._MustUse__silence = True
            for _, comp in self.components:
                comp._MustUse__silence = True
            raise
        (first_i, first_k), = [(b_i, k) for a_i, _, b_i, k in self.edges if a_i is None]
        self._input = (first_i, first_k)
        first, last = layers[first_i], layers[-1]
        super().__init__({
            "s_axis_tdata": In(tdata_bits(first.in_lanes, _idts(first)[first_k])),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "m_axis_tdata": Out(tdata_bits(last.out_lanes, last.odt)),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        layers = self.graph.layers
        for i, (name, comp) in enumerate(self.components):
            m.submodules[name] = comp if self._on_layer is None else _Reported(comp, name, i, self._on_layer)
        for a_i, port, b_i, k in self.edges:
            if a_i is None:
                continue
            a, b = self.components[a_i][1], self.components[b_i][1]
            wiring.connect(m, output_port(a, layers[a_i], port), input_port(b, layers[b_i], k))
        first_i, first_k = self._input
        head = input_port(self.components[first_i][1], layers[first_i], first_k)
        tail = output_port(self.components[-1][1], layers[-1], 0)
        m.d.comb += [
            head.payload.eq(self.s_axis_tdata[:len(head.payload)]),
            head.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(head.ready),
            self.m_axis_tdata.eq(tail.payload),
            self.m_axis_tvalid.eq(tail.valid),
            tail.ready.eq(self.m_axis_tready),
        ]
        return m


class _Reported(Elaboratable):
    """Elaborates ``comp`` in place of it, calling ``on_layer(index, name, done)`` before and after."""

    def __init__(self, comp, name, index, on_layer):
        self.comp, self.name, self.index, self.on_layer = comp, name, index, on_layer

    def elaborate(self, platform):
        self.on_layer(self.index, self.name, False)
        fragment = Fragment.get(self.comp, platform)
        self.on_layer(self.index, self.name, True)
        return fragment


def to_verilog(graph, name="hwgen_top", *, progress=False, memfiles=None):
    """Verilog text of :class:`Top` for ``graph`` (deterministic: same graph, same bytes).

    ``memfiles``: a dict that receives, as ``{file name: text}``, the ``$readmemh`` files of
    the ROMs too big to emit inline (:mod:`hwgen.hdl.rom`); they must be written beside the
    Verilog. When None, every ROM is inline (slow and memory-hungry for big layers).
    ``progress``: report each layer as it is elaborated and the backend stages
    (:func:`hwgen.progress.task`)."""
    from .. import progress as _progress

    layers = list(graph.layers)
    files = RomFiles(name) if memfiles is not None else None
    with _progress.task("generate Verilog", enabled=bool(progress), total=len(layers), unit="layers") as t:
        def on_layer(i, layer, done):
            if done:
                t.advance()
            else:
                t.update(t.done, stage=f"elaborating {layer}")
            if done and i == len(layers) - 1:
                t.set_stage("netlist and RTLIL")

        mods = VerilogModules(name)
        top = Top(graph, rom_files=files, on_layer=on_layer, modules=mods)
        backend = getattr(verilog, "_convert_rtlil_text", None)
        if backend is None:                   # another amaranth: one step, same result
            text = verilog.convert(top, name=name, emit_src=False)
        else:
            il = rtlil.convert(top, name=name, emit_src=False)
            t.set_stage("yosys write_verilog")
            text = backend(il)
        if mods.modules:
            t.set_stage(f"{len(mods.modules)} constant-weight layer(s)")
            text += mods.verilog()
        if files is not None and files.roms:
            t.set_stage(f"{len(files.roms)} ROM file(s)")
            text += files.verilog()
            memfiles.update(files.files())
    return text
