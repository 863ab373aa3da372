"""ConstMVAU: a fully unrolled MVAU whose weights are constants of a shared shift-add network.

The same function as the :class:`~hwgen.dataflow.mvau.MVAU` (its ``execute`` is the MVAU's):
``acc = W @ x`` per pixel, then the thresholds (or the accumulator itself). The hardware is
different: no weight ROM, no multipliers; the whole matrix is one constant-matrix–vector network
(:mod:`hwgen.cmvm`: canonical signed digits, common subexpressions shared across the matrix,
balanced adder trees, every wire as wide as its exact range), the thresholds constant comparisons,
and one whole input vector (``SIMD = MW`` lanes) becomes one whole output vector (``PE = MH``
lanes) per cycle. Registers sit only where the ``pipeline`` setting asks: ``k`` adder levels per
register stage, ``"none"``/0 purely combinational (latency 0).

A BIPOLAR input enters the network as its 0/1 code ``b``: ``W·x = 2·W·b − Σ_j W[c, j]``, so the
thresholds are moved to ``⌈(T + Σ W)/2⌉`` (no adder) or, without thresholds, the accumulator is
``2·g − Σ W`` (one adder per output).

Facts of the kind (each on this class): cycles per frame = pixels (one vector per cycle); latency
:meth:`latency`; schedule: one word in, one word out per cycle, each :meth:`latency` cycles after
its input; cost terms (coefficients in :mod:`hwgen.dataflow.estimate`):

* LUT: ``carry`` the network's adder bits that need a LUT and a carry (its adder bits less the
  low bits that are wires), ``cmp`` Σ widths of the non-constant threshold comparisons, ``enc``
  the thermometer-to-binary XOR inputs, ``post`` the bits of the affine output adders (BIPOLAR
  inputs without thresholds), ``const``;
* FF: ``regs`` the pipeline's register bits (network cuts, output register, valid bits), ``const``.

:func:`const_weights` says whether an MVAU becomes a ConstMVAU (its ``impl``: ``"const"``, or
``"auto"`` and fully unrolled with at most :data:`AUTO_MAX_WEIGHTS` weights), :func:`as_const`
makes the ConstMVAU of an MVAU.
"""

import hashlib
from dataclasses import dataclass, fields

import numpy as np

from ..cmvm.graph import InType, build as build_graph
from ..cmvm.layer import comparators, count_bits, layer_cuts, layer_latency, post_levels
from ..cmvm.verilog import register_bits
from ..errors import HwgenError
from .base import IMPLEMENTED, register
from .maxplus import step_through
from .mvau import IMPLS, MVAU
from .pipeline import pipeline_levels

__all__ = ["ConstMVAU", "IMPLS", "AUTO_MAX_WEIGHTS", "DEFAULT_LEVELS", "const_weights", "as_const", "levels_for_clock",
           "adder_graph"]

#: the most weights (MH·MW) an ``impl="auto"`` MVAU turns into constants when fully unrolled
AUTO_MAX_WEIGHTS = 1 << 14
#: adder levels per register stage of a ConstMVAU whose ``pipeline`` is "auto" when no clock says otherwise
DEFAULT_LEVELS = 3
#: nanoseconds one adder level (carry chain and routing) takes, and the register-to-register overhead,
#: on the slowest family the flows implement (ECP5, nextpnr); :func:`levels_for_clock`
LEVEL_NS = 3.0
STAGE_NS = 2.0

_GRAPHS = {}


def adder_graph(weights, idt):
    """The :class:`~hwgen.cmvm.graph.AdderGraph` of ``weights`` on inputs of type ``idt`` (built once per
    matrix and type: the folding search and the build ask many times)."""
    W = np.ascontiguousarray(np.asarray(weights, dtype=np.int64))
    t = in_type(idt)
    key = (hashlib.sha1(W.tobytes()).hexdigest(), W.shape, t)
    g = _GRAPHS.get(key)
    if g is None:
        if len(_GRAPHS) >= 64:
            _GRAPHS.pop(next(iter(_GRAPHS)))
        g = _GRAPHS[key] = build_graph(W, [t] * W.shape[1])
    return g


def in_type(idt):
    """The network's input type of a lane of ``idt`` (BIPOLAR and BINARY: the 0/1 code)."""
    if idt.name in ("BIPOLAR", "BINARY"):
        return InType(1, False)
    return InType(idt.bits, idt.signed)


def levels_for_clock(clock_mhz):
    """Adder levels per register stage that meet ``clock_mhz`` (:data:`LEVEL_NS`, :data:`STAGE_NS`), at least 1."""
    period = 1000.0 / float(clock_mhz)
    return max(1, int((period - STAGE_NS) // LEVEL_NS))


def const_weights(layer):
    """Whether MVAU ``layer`` is built as a :class:`ConstMVAU` (see the module docstring)."""
    if not isinstance(layer, MVAU) or isinstance(layer, ConstMVAU):
        return isinstance(layer, ConstMVAU)
    impl = getattr(layer, "impl", "auto")
    if impl == "const":
        return True
    if impl != "auto" or layer.pe != layer.mh or layer.simd != layer.mw or layer.mh * layer.mw > AUTO_MAX_WEIGHTS:
        return False
    return supported(layer) is None


def supported(layer):
    """None when ``layer`` can have constant weights, else why not (one phrase)."""
    if layer.thresholds is None and layer.odt.name == "BIPOLAR":
        return "a BIPOLAR output without thresholds"
    return None


def as_const(layer, levels=None):
    """The :class:`ConstMVAU` of MVAU ``layer`` (fully unrolled); ``levels`` sets its ``pipeline`` when the
    layer's is "auto"."""
    why = supported(layer)
    if why:
        raise HwgenError(f"layer {layer.name}: constant weights do not support {why}; use impl 'rom'")
    kw = {f.name: getattr(layer, f.name) for f in fields(MVAU)}
    kw.update(pe=layer.mh, simd=layer.mw, impl="const")
    if levels is not None and kw.get("pipeline") in (None, "auto"):
        kw["pipeline"] = int(levels)
    c = ConstMVAU(**kw)
    c.validate()
    return c


@register
@dataclass
class ConstMVAU(MVAU):
    kind = "ConstMVAU"

    # -- the network and its output stage ------------------------------------------------------
    @property
    def graph(self):
        return adder_graph(self.weights, self.idt)

    @property
    def levels(self):
        """Adder levels per register stage (0: combinational; "auto": :data:`DEFAULT_LEVELS`)."""
        return pipeline_levels(self, DEFAULT_LEVELS)

    @property
    def bipolar_in(self):
        return self.idt.name == "BIPOLAR"

    def post(self):
        """``{"thresholds": T' or None, "base_code", "step_code", "scale", "offsets"}``: the output stage on
        the network's outputs ``g`` (ARCHITECTURE §3 codes; see the module docstring)."""
        rs = self.weights.sum(axis=1) if self.bipolar_in else np.zeros(self.mh, dtype=np.int64)
        a = 2 if self.bipolar_in else 1
        b = self.odt.bits
        if self.thresholds is not None:
            T = np.asarray(self.thresholds, dtype=np.int64) + rs[:, None]     # a·g ≥ T + ΣW
            T = -((-T) // a)                                                 # ⌈·/a⌉
            if self.odt.name == "BIPOLAR":
                base, step = 0, 1                    # code = count: −1 + 2·count ↦ count (K ≤ 1)
            else:
                base, step = self.out_base % (1 << b), self.out_step
            return {"thresholds": T, "base_code": base, "step_code": step, "scale": 1, "offsets": None}
        return {"thresholds": None, "base_code": 0, "step_code": 1, "scale": a, "offsets": [-int(v) for v in rs]}

    def post_levels(self, post=None):
        """Adder levels of the output stage (0 or 1) of ``post`` (default: :meth:`post`)."""
        p = self.post() if post is None else post
        return post_levels(p["thresholds"], p["scale"], p["offsets"])

    def cuts(self, post=None):
        """The network's register cuts (adder depths)."""
        return layer_cuts(self.graph, self.levels, self.post_levels(post))

    # -- facts of the kind ---------------------------------------------------------------------
    def rom_words(self):
        return {}

    def validate(self):
        super().validate()
        if self.pe != self.mh or self.simd != self.mw:
            raise HwgenError(f"layer {self.name}: a constant-weight layer is fully unrolled: PE must be MH={self.mh} and "
                             f"SIMD MW={self.mw}, not PE={self.pe}, SIMD={self.simd}")
        why = supported(self)
        if why:
            raise HwgenError(f"layer {self.name}: constant weights do not support {why}")
        self.levels         # noqa: B018 - checks the pipeline setting

    def cycles(self):
        return self.pixels

    def latency(self):
        """Cycles from the handshake of an input word to its output word being valid (0: combinational)."""
        return layer_latency(self.graph, self.levels, self.post_levels())

    def schedule(self, arrivals, frames):
        """One word in and one out per cycle, each output :meth:`latency` cycles after its input."""
        return step_through(arrivals, self.latency())

    def cost_terms(self):
        g, p = self.graph, self.post()
        pl = self.post_levels(p)
        lat = layer_latency(g, self.levels, pl)
        cmp_bits, enc = 0, 0
        if p["thresholds"] is not None:
            _, cmp_bits = comparators(g, p["thresholds"])
            K = p["thresholds"].shape[1]
            enc = self.mh * sum(K >> j for j in range(count_bits(K))) if K > 1 else 0
        post_bits = self.mh * self.odt.bits if p["thresholds"] is None and pl else 0
        regs = (register_bits(g, self.cuts(p)) + self.mh * self.odt.bits + lat) if lat else 0
        return {"LUT": {"const": 1.0, "carry": g.carry_bits, "cmp": cmp_bits, "enc": enc, "post": post_bits},
                "FF": {"const": 1.0, "regs": regs}, "BRAM18": 0, "DSP": 0}


def _implemented(layer):
    """What the build makes of MVAU ``layer``: its ConstMVAU when :func:`const_weights`, else the layer."""
    return as_const(layer) if const_weights(layer) else layer


IMPLEMENTED[MVAU] = _implemented
