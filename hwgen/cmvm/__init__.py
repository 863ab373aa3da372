"""Constant-matrix–vector multiplication (CMVM) as a shared shift-add network.

A fully unrolled layer ``y = W @ x`` with constant integer ``W`` needs no multipliers: every
weight is a sum of signed powers of two, so every output is a sum of shifted, signed inputs, and
sums that recur across the matrix are built once and shared. This package is the self-contained
core (issue 17, first block):

* :mod:`.graph` — :func:`build` turns ``W`` and the input types into an :class:`AdderGraph`
  (canonical signed digits, greedy two-term common-subexpression elimination across the whole
  matrix, balanced adder trees for the rest; every wire sized from its exact value range) and
  :func:`evaluate` is its golden reference;
* :mod:`.verilog` — :func:`emit_verilog` writes the graph as one flat Verilog module, one
  ``assign`` per adder, combinational or registered at chosen adder depths.

Nothing in :mod:`hwgen.dataflow` imports this package; the build integration is a later block.
"""

from .graph import AdderGraph, InType, build, csd, evaluate
from .verilog import cuts_every, emit_verilog

__all__ = ["AdderGraph", "InType", "build", "csd", "cuts_every", "emit_verilog", "evaluate"]
