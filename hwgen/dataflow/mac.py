"""What the two multiply–accumulate kinds (MVAU, VVAU) share: the XNOR case, the
accumulator type, the output latency of their datapath and their cost terms.

Cost terms (P = PE lanes, Q products per lane — SIMD for the MVAU, 1 for the VVAU —,
W/A = weight/input bits, pb = product bits, acc = accumulator bits, n = thresholds per
channel, tb = threshold bits; ``mem`` terms are the memory model's LUTs/FFs with
coefficient 1, everything else is fitted):

* LUT: const; ``ctrl`` step counters and ROM address bits; ``mul`` P·Q·W·A (soft
  multipliers, ``mul_wide`` beyond 9 operand-bit pairs; ``cmul`` when the weights are
  constants, one weight word); ``sel`` P·Q·pb (1-bit × multi-bit: a multiplexer);
  ``xnor`` P·Q and ``popcount`` P·(adder bits of a Q-input tree of 1-bit values) for XNOR;
  ``add`` P·(adder bits of a Q-input tree of pb-bit products; ``dsp_add`` with the products
  in DSP48s); ``acc`` P·acc; ``thr`` P·n·tb comparators (``cthr`` against constant
  thresholds); ``tmem`` threshold ROM; ``wmem`` weight ROM in soft logic (fitted: next to
  the product logic it costs more than a stand-alone ROM), ``wmem_xnor`` the same for XNOR
  layers; ``mem`` input buffer (LUTRAM); ``inbits`` the operand lanes.
* FF: const; ``ctrl``; ``regs`` (input/operand/accumulator/output registers and the weight
  ROM's read register); ``thr`` (threshold words and comparison bits); ``pipe`` (registered
  products and adder-tree cuts, :func:`hwgen.dataflow.pipeline.tree_split_points`).
* DSP48E1: P·Q when :func:`~hwgen.dataflow.estimate.dsp_multiplier`.
"""

from ..dtypes import smallest_dtype
from .base import Thresholded
from .estimate import dsp_multiplier, log2, mem_sum, memory, product_bits, threshold_columns, tree_bits, tree_pipe_bits
from .pipeline import pipeline_levels

__all__ = ["MACUnit"]


class MACUnit(Thresholded):
    """Mixin of MVAU and VVAU (fields ``wdt``, ``in_dt``, ``weights``, ``thresholds``, ``pe``,
    ``mem_style``, ``pipeline``; property ``acc_range``)."""

    #: Cycles from the step that completes an output word to that word being valid,
    #: unpipelined (weight ROM read, products and adder tree, accumulator/threshold output).
    BASE_LATENCY = 3

    @property
    def xnor(self):
        """True for a binarised layer (BIPOLAR weights and inputs): products are XNORs and
        the adder tree a popcount."""
        return self.wdt.name == "BIPOLAR" and self.idt.name == "BIPOLAR"

    @property
    def acc_dt(self):
        """Smallest type holding the accumulator range."""
        return smallest_dtype(*self.acc_range)

    def pipeline_stages(self):
        """Register stages the pipelined datapath adds before its output (0 unpipelined):
        operand and product registers, adder-tree cuts (:meth:`tree_splits`) and, with
        thresholds, the comparison stage."""
        if not pipeline_levels(self):
            return 0
        return 2 + len(self.tree_splits()) + (self.thresholds is not None)

    def tree_splits(self):
        """Adder-tree levels after which the dot products are registered (none for the VVAU,
        whose lanes have a single product)."""
        return set()

    def latency(self):
        """Cycles from the step that completes an output word to it being valid: 3 unpipelined,
        plus the stages of :meth:`pipeline_stages`."""
        return self.BASE_LATENCY + self.pipeline_stages()

    def mac_terms(self, Q, in_lanes, depth_w, w_rom_width, groups, ibuf=None):
        """``(LUT terms, FF terms, BRAM18, DSP)`` of ``pe`` lanes of ``Q`` products each, fed
        ``in_lanes`` input lanes, from a weight ROM of ``depth_w`` words of ``w_rom_width``
        bits and ``groups`` threshold words; ``ibuf``: the :func:`memory` of an input buffer."""
        P = self.pe
        W, A = self.wdt, self.idt
        acc = self.acc_dt.bits
        xnor = self.xnor
        dsp = dsp_multiplier(W, A)
        pb = product_bits(W, A)
        n = self.n_thresholds
        tb = acc + 1
        style = getattr(self, "mem_style", "auto")
        wmem = memory(w_rom_width, depth_w, style)
        # distinct varying ROM columns; share of the comparators against a varying threshold
        tvar, tfrac = threshold_columns(self, P) if n else (0, 0.0)
        tmem = memory(P * n * tb, groups, style, cols=tvar) if n else memory(0, 0)
        mem = mem_sum(*([ibuf] if ibuf else [memory(0, 0)]))
        k = pipeline_levels(self)
        one_bit = (W.bits == 1) != (A.bits == 1)
        const_w = depth_w == 1            # one weight word: the weights are constants
        mul = 0 if (dsp or W.bits == 1 or A.bits == 1) else P * Q * W.bits * A.bits
        ctrl = log2(depth_w) + log2(groups) + log2(max(1, depth_w // groups))    # step counters, ROM address
        lut = {
            "const": 1,
            "ctrl": ctrl,
            # products in LUTs: the cost per operand-bit pair grows with the operand widths (a 2×2
            # product fits one LUT6 per output bit, a 4×4 one needs partial-product adders)
            "mul": 0 if const_w or W.bits * A.bits > 9 else mul,
            "mul_wide": 0 if const_w or W.bits * A.bits <= 9 else mul,
            "cmul": mul if const_w else 0,
            "sel": P * Q * pb if one_bit else 0,
            "xnor": P * Q if xnor else 0,
            "add": 0 if xnor or dsp else P * tree_bits(Q, pb),
            # products in DSP48s: the adder tree is still soft logic (the "mul" terms price it otherwise)
            "dsp_add": P * tree_bits(Q, pb) if dsp else 0,
            "popcount": P * tree_bits(Q, 1) if xnor else 0,
            "acc": P * acc,
            "thr": P * n * tb * tfrac,
            "cthr": P * n * tb * (1 - tfrac),
            "tmem": tmem["LUT"] + tmem["LUTRAM"],
            "wmem": 0 if xnor else wmem["LUT"],
            "wmem_xnor": wmem["LUT"] if xnor else 0,
            "mem": mem["LUT"],
            # the operand lanes (input word into every PE's products and adder tree): measured to grow
            # with SIMD × input bits beyond what the product and adder terms explain (PE = 1, wide SIMD)
            "inbits": in_lanes * A.bits,
        }
        # FFs: operand/accumulator/output registers and the weight ROM's read register; the threshold
        # words (ROM read register and, pipelined, their copy: yosys keeps one or both); products and
        # adder-tree cuts when pipelined
        regs = in_lanes * A.bits + P * acc + P * self.odt.bits + wmem["FF"] + (ibuf["FF"] if ibuf else 0)
        pipe = 0
        if k:
            # (a DSP48E1 absorbs the operand and product registers of its multiplier)
            regs += 0 if dsp else P * Q * W.bits + in_lanes * A.bits
            pipe = (0 if dsp else P * Q * pb) + P * tree_pipe_bits(Q, pb, k, 2 if xnor else 1)
        if tmem["style"] == "logic":      # read register (+ its pipelined copy) of the distinct columns
            thr = tmem["FF"] * (2 if k else 1)
        else:
            thr = P * n * tb if (n and k) else 0
        thr += P * n if k else 0          # the registered comparison bits (thermometer code)
        ff = {"const": 1, "ctrl": ctrl, "regs": regs, "thr": thr, "pipe": pipe}
        return lut, ff, mem["BRAM18"] + wmem["BRAM18"] + tmem["BRAM18"], (P * Q if dsp else 0)
