"""Parameter ROMs: small ones as Amaranth memories, big ones as memory-initialisation files.

Amaranth emits a memory's initial contents through RTLIL one Python object per
bit, and yosys' ``write_verilog`` then spends as long again on them: about
5 µs and 100 bytes per bit, so a 1024×1024 W8A8 layer (8 Mbit of weights, 6 Mbit
of thresholds) took a minute and a 4096×4096 one 17 GB before yosys even started.
A ROM holding more than :data:`INLINE_MAX_BITS` bits is therefore emitted
differently: the component instantiates a small Verilog module that hwgen writes
itself, appended to the top's Verilog, whose memory ``$readmemh`` loads from a
file beside the Verilog (one hexadecimal word per line, address 0 first)::

    (* rom_style = "block" *)            // the layer's memory style, as on an inline ROM
    reg [W-1:0] mem [0:D-1];
    initial $readmemh("<module>.mem", mem);
    always @(posedge clk) if (en) data_q <= mem[addr];

The cost adds up over a design: MobileNet-v1's 60 ROMs, each under the limit,
hold 17 Mbit together and took Amaranth minutes. So a design also keeps at most
:data:`INLINE_TOTAL_BITS` bits inline in all: a ROM that would take the inline
total over it goes to a file too (ROMs are taken in elaboration order, the graph's).

The read port behaves as an Amaranth ``Memory`` read port in the ``sync``
domain (``data`` is the word at ``addr`` one clock after an enabled cycle, held
otherwise, not reset), so the two forms are the same hardware. Designs whose
ROMs all stay inline give the same Verilog bytes as before.

Only a component elaborated under :class:`RomFiles` (which :func:`hwgen.hdl.top.to_verilog`
sets up when asked for memory files) takes the file route; a component converted on
its own keeps every ROM inline.
"""

from amaranth.hdl import ClockSignal, Instance, Signal, unsigned
from amaranth.lib.memory import Memory

__all__ = ["INLINE_MAX_BITS", "INLINE_TOTAL_BITS", "RomFiles", "rom_read_port", "hex_words"]

#: ROMs with more bits than this become ``$readmemh`` files: 2 Mbit, about 10 s and 200 MB inline;
#: CNV-w2a2's biggest ROM (1.2 Mbit) and every ROM of the examples and tests stay inline.
INLINE_MAX_BITS = 1 << 21
#: the most ROM bits one design keeps inline in all (4 Mbit, about 20 s): the ROM that would take
#: the total over it, and every later one that would, becomes a file; CNV-w2a2 (3.1 Mbit of
#: weights and thresholds inline, CNV-w1a1 1.6 Mbit) and every design of the examples and tests
#: stay wholly inline.
INLINE_TOTAL_BITS = 1 << 22


class _Port:
    """The ``addr``/``en``/``data`` signals of an external ROM, like a memory read port."""

    def __init__(self, name, width, depth):
        self.addr = Signal(range(depth), name=f"{name}__addr")
        self.en = Signal(name=f"{name}__en")
        self.data = Signal(width, name=f"{name}__data")


class RomFiles:
    """The ROMs of one design emitted as Verilog modules with ``$readmemh`` files.

    ``prefix`` starts every module name (the top's name); ``inline_max_bits``
    (default :data:`INLINE_MAX_BITS`, read when the ROM is made) is the largest
    ROM kept inline, ``inline_total_bits`` (default :data:`INLINE_TOTAL_BITS`) the
    most bits kept inline in all."""

    def __init__(self, prefix, inline_max_bits=None, inline_total_bits=None):
        self.prefix = prefix
        self.inline_max_bits = inline_max_bits
        self.inline_total_bits = inline_total_bits
        self.inline_bits = 0           # bits of the ROMs kept inline so far
        self.roms = []                 # (module, width, depth, words, attrs), in elaboration order

    def limit(self):
        return INLINE_MAX_BITS if self.inline_max_bits is None else self.inline_max_bits

    def total_limit(self):
        return INLINE_TOTAL_BITS if self.inline_total_bits is None else self.inline_total_bits

    def keep_inline(self, bits):
        """Whether a ROM of ``bits`` bits stays inline (then counted in the inline total)."""
        if bits > self.limit() or self.inline_bits + bits > self.total_limit():
            return False
        self.inline_bits += bits
        return True

    def add(self, module, width, depth, words, attrs):
        if any(r[0] == module for r in self.roms):
            raise ValueError(f"ROM module {module} made twice")
        self.roms.append((module, width, depth, words, dict(attrs or {})))

    def files(self):
        """``{file name: text}``: the ``$readmemh`` file of every external ROM."""
        return {f"{module}.mem": hex_words(words, width, depth) for module, width, depth, words, _ in self.roms}

    def verilog(self):
        """The Verilog modules of the external ROMs (empty when there are none)."""
        return "".join(_module_text(*r) for r in self.roms)


def hex_words(words, width, depth):
    """``$readmemh`` text of ``depth`` words of ``width`` bits (missing words are 0)."""
    digits = max(1, (width + 3) // 4)
    words = list(words) + [0] * (depth - len(words))
    return "".join(f"{int(w):0{digits}x}\n" for w in words[:depth])


def _module_text(module, width, depth, words, attrs):
    abits = max(1, (depth - 1).bit_length())
    attr = "".join(f'  (* {k} = "{v}" *)\n' for k, v in sorted(attrs.items()))
    return (
        f"\nmodule {module}(clk, en, addr, data);\n"
        f"  input clk;\n  wire clk;\n"
        f"  input en;\n  wire en;\n"
        f"  input [{abits - 1}:0] addr;\n  wire [{abits - 1}:0] addr;\n"
        f"  output [{width - 1}:0] data;\n  wire [{width - 1}:0] data;\n"
        f"{attr}"
        f"  reg [{width - 1}:0] mem [0:{depth - 1}];\n"
        f'  initial $readmemh("{module}.mem", mem);\n'
        f"  reg [{width - 1}:0] data_q;\n"
        f"  always @(posedge clk) begin\n"
        f"    if (en) begin\n"
        f"      data_q <= mem[addr];\n"
        f"    end\n"
        f"  end\n"
        f"  assign data = data_q;\n"
        f"endmodule\n")


def rom_read_port(m, comp, name, *, width, depth, init, attrs=None):
    """A synchronous read port of a ROM of ``depth`` words of ``width`` bits holding ``init``
    (Python ints, or a callable returning them, called only when needed), as submodule
    ``name`` of ``m``: ``addr``, ``en`` and ``data`` as on ``Memory.read_port(domain="sync")``.

    Inline (an Amaranth :class:`Memory`, exactly as a component would make it itself) unless
    ``comp`` is elaborated under a :class:`RomFiles` (its ``rom_files`` attribute, with the
    component's instance name in ``rom_scope``) and the ROM holds more bits than its limit, or
    than the design's inline total has left (:meth:`RomFiles.keep_inline`)."""
    files = getattr(comp, "rom_files", None)
    words = init
    if files is None or files.keep_inline(width * depth):
        if callable(words):
            words = words()
        mem = m.submodules[name] = Memory(shape=unsigned(width), depth=depth, init=words, attrs=attrs)
        return mem.read_port(domain="sync", src_loc_at=1)
    if callable(words):
        words = words()
    module = f"{files.prefix}__{getattr(comp, 'rom_scope', 'layer')}__{name}"
    files.add(module, width, depth, words, attrs)
    port = _Port(name, width, depth)
    addr = port.addr
    if depth == 1:                      # a one-word ROM: a zero-width address, the module takes one bit
        addr = Signal(1, name=f"{name}__addr1")
    m.submodules[name] = Instance(module, i_clk=ClockSignal("sync"), i_en=port.en, i_addr=addr, o_data=port.data)
    return port

