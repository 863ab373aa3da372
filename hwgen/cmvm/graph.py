"""The adder graph of a constant matrix–vector product, and its golden reference.

Problem (CMVM): given a constant integer matrix ``W`` (M outputs × N inputs) and the types of the
inputs, compute every ``y[m] = Σ_n W[m, n]·x[n]`` with as few (and as narrow) two-input adders as
possible. The method here, in three steps:

1. **Canonical signed digits.** Every weight is written in CSD (the non-adjacent form): a sum of
   ``±2^k`` with no two neighbouring digits non-zero, the signed-digit form with the fewest non-zero
   digits (on average a third of the bits). Output ``m`` becomes a set of *terms* ``±(x_n << k)``.
2. **Two-term common-subexpression elimination across the whole matrix** (the "pair counting"
   family of CMVM heuristics, Hartley's CSE for CSD filters generalised to matrices, as in Hcub-style
   and da4ml-style optimisers). Two terms of one output, ``g_a·(a << s_a)`` and ``g_b·(b << s_b)``,
   form the pattern ``(a << (s_a−s)) + g_a·g_b·(b << (s_b−s))`` with ``s = min(s_a, s_b)``, up to a
   common shift and a common sign. The pattern occurring most often over all outputs becomes a new
   graph node; each occurrence (non-overlapping, greedily from the low shifts up) is replaced by one
   term ``±(node << s)``, and the counts of the pairs touching the replaced terms are updated
   incrementally. Patterns between new nodes and inputs, or between new nodes, are counted the
   same way, so the shared subexpressions nest. It stops when no pattern occurs twice.
   (Two equal terms of one output merge into one shifted term, opposite ones cancel.)
3. **Balanced adder trees** for what is left of every output: repeatedly add the two terms of the
   smallest depth (ties: the lowest shift, then the narrower first — terms of neighbouring shifts
   are aligned, so their sum is barely wider than they are), so the depth grows with the logarithm
   of the number of terms; identical additions in different outputs are built once. The
   subtraction is arranged so a positive term comes first; only an output whose terms are all
   negative ends in a negation.

Every node ``k`` is a linear form ``Σ_n c[k, n]·x[n]`` with integer coefficients tracked exactly,
so its exact value range over all inputs is ``Σ_n min/max(c·lo_n, c·hi_n)`` (the inputs are
independent) and its wire is exactly as wide as that range needs: unsigned when it cannot be
negative, two's complement otherwise. Construction is deterministic (no hashing of objects, ties
broken on node numbers), so the same matrix gives the same graph and the same Verilog bytes.
"""

import heapq
import re
from dataclasses import dataclass

import numpy as np

from ..errors import HwgenError

MAX_IN_BITS = 32
MAX_WEIGHT_BITS = 32


@dataclass(frozen=True)
class InType:
    """The type of one input: ``bits`` wide, two's complement when ``signed`` (1-bit signed is {−1, 0})."""

    bits: int
    signed: bool

    @property
    def lo(self):
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self):
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def __str__(self):
        return f"{'INT' if self.signed else 'UINT'}{self.bits}"


_TYPE_RE = re.compile(r"^(U?)INT([0-9]+)$")


def _one_type(t, where):
    if isinstance(t, InType):
        bits, signed = t.bits, t.signed
    elif isinstance(t, str) and _TYPE_RE.match(t):
        m = _TYPE_RE.match(t)
        bits, signed = int(m.group(2)), m.group(1) == ""
    elif isinstance(t, tuple) and len(t) == 2 and isinstance(t[0], (int, np.integer)) and isinstance(t[1], (bool, np.bool_)):
        bits, signed = int(t[0]), bool(t[1])
    else:
        raise HwgenError(f"cmvm: input type {where} is {t!r}; accepted: 'UINTb' or 'INTb', an InType, or (bits, signed)")
    if not 1 <= bits <= MAX_IN_BITS:
        raise HwgenError(f"cmvm: input type {where} has {bits} bits; accepted: 1 to {MAX_IN_BITS} bits")
    return InType(bits, signed)


def parse_in_types(in_types, n):
    """One type for all ``n`` inputs (a string, an :class:`InType` or ``(bits, signed)``) or a list of ``n`` types."""
    if isinstance(in_types, (str, InType)) or (isinstance(in_types, tuple) and len(in_types) == 2 and isinstance(in_types[1], bool)):
        t = _one_type(in_types, "for all inputs")
        return (t,) * n
    try:
        types = list(in_types)
    except TypeError:
        raise HwgenError(f"cmvm: input types are {in_types!r}; accepted: one type or a list of one type per input") from None
    if len(types) != n:
        raise HwgenError(f"cmvm: {len(types)} input types for a matrix of {n} inputs (columns); accepted: one type or exactly {n}")
    return tuple(_one_type(t, f"of input {i}") for i, t in enumerate(types))


def check_matrix(W):
    """``W`` as a 2-D int64 array (M outputs × N inputs), or a one-line :class:`HwgenError` saying what is wrong."""
    try:
        a = np.asarray(W)
    except (TypeError, ValueError):
        raise HwgenError("cmvm: the weight matrix is not an array; accepted: a 2-D integer matrix (outputs × inputs)") from None
    if a.ndim != 2:
        raise HwgenError(f"cmvm: the weight matrix has {a.ndim} dimensions (shape {a.shape}); accepted: a 2-D integer matrix (outputs × inputs)")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise HwgenError(f"cmvm: the weight matrix has shape {a.shape}; accepted: at least one output and one input")
    if a.dtype == bool or a.dtype.kind in "iu":
        ints = a.astype(object)
    elif a.dtype.kind in "fO":
        flat = a.ravel()
        for i, v in enumerate(flat):
            ok = isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            if not ok and isinstance(v, (float, np.floating)):
                ok = bool(np.isfinite(v)) and float(v) == int(v)
            if not ok:
                m, n = divmod(i, a.shape[1])
                shown = v.item() if isinstance(v, np.generic) else v
                raise HwgenError(f"cmvm: weight [{m}, {n}] is {shown!r}; accepted: integers only (a weight matrix of integer values)")
        ints = np.array([int(v) for v in flat], dtype=object).reshape(a.shape)
    else:
        raise HwgenError(f"cmvm: the weight matrix has dtype {a.dtype}; accepted: an integer matrix")
    big = [(i, int(v)) for i, v in enumerate(ints.ravel()) if abs(int(v)) >= 1 << MAX_WEIGHT_BITS]
    if big:
        m, n = divmod(big[0][0], a.shape[1])
        raise HwgenError(f"cmvm: weight [{m}, {n}] is {big[0][1]}; accepted: |weight| < 2^{MAX_WEIGHT_BITS}")
    return ints.astype(np.int64)


def csd(v):
    """The canonical signed digits of the integer ``v``: a list of ``(shift, ±1)``, lowest first, ``v = Σ d·2^shift``."""
    v = int(v)
    digits = []
    k = 0
    while v:
        if v & 1:
            d = 2 - (v & 3)  # +1 when v ≡ 1 (mod 4), −1 when v ≡ 3: the next bit becomes 0
            digits.append((k, d))
            v -= d
        v >>= 1
        k += 1
    return digits


def width_of(lo, hi):
    """Bits of the narrowest wire holding every value in ``[lo, hi]``: unsigned if ``lo ≥ 0``, else two's complement."""
    if lo >= 0:
        return max(1, int(hi).bit_length())
    return max((-int(lo) - 1).bit_length(), max(int(hi), 0).bit_length()) + 1


class AdderGraph:
    """A shift-add network computing ``y = W @ x``.

    Nodes ``0 … N−1`` are the inputs. Node ``N + i`` is ``ops[i] = (p, sp, g, q, sq)``, the value
    ``(node p << sp) + g·(node q << sq)`` with ``g = ±1``, or, when ``q`` is ``None``, the negation
    ``−(node p << sp)``. ``outputs[m] = (node, shift)`` means ``y[m] = node << shift``; ``node`` is
    ``None`` for an all-zero row. ``lo``/``hi`` are every node's exact range, ``depth`` its adder depth.
    """

    def __init__(self, W, in_types):
        self.W = W
        self.in_types = in_types
        self.n_inputs = len(in_types)
        self.ops = []
        self.lo = [t.lo for t in in_types]
        self.hi = [t.hi for t in in_types]
        self.depth = [0] * self.n_inputs
        self.outputs = []
        self._coef = [np.eye(self.n_inputs, dtype=np.int64)[i] for i in range(self.n_inputs)]

    @property
    def n_outputs(self):
        return len(self.outputs)

    def width(self, k):
        """The exact width of node ``k``'s wire."""
        return width_of(self.lo[k], self.hi[k])

    def signed(self, k):
        """Whether node ``k`` can be negative (its wire is two's complement)."""
        return self.lo[k] < 0

    def out_range(self, m):
        """The exact range of output ``m`` (``(0, 0)`` for an all-zero row)."""
        node, shift = self.outputs[m]
        if node is None:
            return 0, 0
        return self.lo[node] << shift, self.hi[node] << shift

    def out_width(self, m):
        return width_of(*self.out_range(m))

    def out_signed(self, m):
        return self.out_range(m)[0] < 0

    @property
    def adders(self):
        """Number of adders, subtractors and negations."""
        return len(self.ops)

    @property
    def adder_bits(self):
        """Σ of the adders' result widths: a LUT proxy (one LUT per result bit on a carry chain)."""
        n = self.n_inputs
        return sum(self.width(n + i) for i in range(len(self.ops)))

    def passthrough(self, i):
        """Low result bits of ``ops[i]`` that are wires, not adder bits: the other operand's bits below a shifted one."""
        p, sp, g, q, sq = self.ops[i]
        if q is None:
            return 0
        if sq > 0:  # p ± (q << sq): the low sq bits are p's
            return min(sq, self.width(self.n_inputs + i))
        if g > 0:  # (p << sp) + q: the low sp bits are q's
            return min(sp, self.width(self.n_inputs + i))
        return 0

    @property
    def carry_bits(self):
        """:attr:`adder_bits` less the pass-through low bits: the bits that need a LUT and a carry."""
        return self.adder_bits - sum(self.passthrough(i) for i in range(len(self.ops)))

    @property
    def max_depth(self):
        """The largest adder depth of any output (0 when every output is a wire)."""
        return max((self.depth[node] for node, _ in self.outputs if node is not None), default=0)

    def stats(self):
        return {"adders": self.adders, "adder_bits": self.adder_bits, "carry_bits": self.carry_bits, "depth": self.max_depth}

    # -- construction -------------------------------------------------------------------------
    def _add(self, p, sp, g, q, sq):
        n = self.n_inputs
        c = self._coef[p] * (1 << sp)
        if q is None:
            c = -c
            d = self.depth[p] + 1
        else:
            c = c + g * self._coef[q] * (1 << sq)
            d = max(self.depth[p], self.depth[q]) + 1
        co = c.astype(object)
        lo_in = np.array(self.lo[:n], dtype=object)
        hi_in = np.array(self.hi[:n], dtype=object)
        a, b = co * lo_in, co * hi_in
        self.lo.append(int(np.minimum(a, b).sum()))
        self.hi.append(int(np.maximum(a, b).sum()))
        self.depth.append(d)
        self._coef.append(c)
        self.ops.append((p, sp, g, q, sq))
        return len(self.lo) - 1


class _Builder:
    """Holds the terms of every output during construction (see the module docstring)."""

    def __init__(self, graph, share):
        self.g = graph
        self.share = share
        self.memo = {}

    def node(self, p, sp, g, q, sq):
        key = (p, sp, g, q, sq)
        if self.share and key in self.memo:
            return self.memo[key]
        k = self.g._add(p, sp, g, q, sq)
        self.memo[key] = k
        return k

    # ---- step 2: pair counting CSE ----
    @staticmethod
    def pattern(t, gt, u, gu):
        """The pattern of terms ``gt·t`` and ``gu·u`` (``t, u = (node, shift)``): ``(key, sign, shift)``."""
        if u < t:
            t, gt, u, gu = u, gu, t, gt
        s = min(t[1], u[1])
        return (t[0], t[1] - s, gt * gu, u[0], u[1] - s), gt, s

    def entry(self, c, k):
        """The heap entry of pattern ``k`` occurring ``c`` times: the most frequent first; ties: the shallower, then the narrower.

        (Weighting the count by the pattern's estimated carry bits was tried and gave wider graphs.)
        """
        g = self.g
        return (-c, max(g.depth[k[0]], g.depth[k[3]]), k[1] + k[4], k)

    def cse(self, terms):
        counts = {}
        occ = {}  # node -> {output: number of its terms there}
        for o, tm in enumerate(terms):
            items = list(tm.items())
            for i, (t, gt) in enumerate(items):
                occ.setdefault(t[0], {}).setdefault(o, 0)
                occ[t[0]][o] += 1
                for u, gu in items[i + 1 :]:
                    k = self.pattern(t, gt, u, gu)[0]
                    counts[k] = counts.get(k, 0) + 1
        pri = self.entry
        heap = [pri(c, k) for k, c in counts.items() if c >= 2]
        heapq.heapify(heap)

        def remove(o, t):
            gt = terms[o].pop(t)
            for u, gu in terms[o].items():
                k = self.pattern(t, gt, u, gu)[0]
                counts[k] -= 1
            occ[t[0]][o] -= 1
            if not occ[t[0]][o]:
                del occ[t[0]][o]
            return gt

        def add(o, t, gt):
            if t in terms[o]:  # x + x = x << 1; x − x = 0
                same = remove(o, t) == gt
                if same:
                    add(o, (t[0], t[1] + 1), gt)
                return
            for u, gu in terms[o].items():
                k = self.pattern(t, gt, u, gu)[0]
                c = counts.get(k, 0) + 1
                counts[k] = c
                if c >= 2:
                    heapq.heappush(heap, pri(c, k))
            terms[o][t] = gt
            occ.setdefault(t[0], {}).setdefault(o, 0)
            occ[t[0]][o] += 1

        while heap:
            top = heapq.heappop(heap)
            k, stored = top[-1], -top[0]
            c = counts.get(k, 0)
            if c != stored:
                if 2 <= c < stored:
                    heapq.heappush(heap, pri(c, k))
                continue
            a, da, g, b, db = k
            new = None
            for o in sorted(set(occ.get(a, ())) & set(occ.get(b, ()))):
                tm = terms[o]
                used, found = set(), []
                for s in sorted(s for (nd, s) in tm if nd == a):
                    base = s - da
                    t, u = (a, s), (b, base + db)
                    if base < 0 or t == u or t in used or u in used or u not in tm or tm[u] != g * tm[t]:
                        continue
                    used.update((t, u))
                    found.append((t, u, base, tm[t]))
                for t, u, base, gt in found:
                    if new is None:
                        new = self.node(a, da, g, b, db)
                    remove(o, t)
                    remove(o, u)
                    add(o, (new, base), gt)

    # ---- step 3: balanced trees ----
    def tree(self, tm):
        g = self.g
        heap = [(g.depth[nd], s, g.width(nd), nd, s, sg) for (nd, s), sg in tm.items()]
        heapq.heapify(heap)
        if not heap:
            return None, 0
        while len(heap) > 1:
            n1, s1, g1 = heapq.heappop(heap)[3:]
            n2, s2, g2 = heapq.heappop(heap)[3:]
            s = min(s1, s2)
            t1, t2 = (n1, s1 - s), (n2, s2 - s)
            if g1 == g2:
                (p, sp), (q, sq) = sorted((t1, t2))
                k, sg = self.node(p, sp, 1, q, sq), g1
            else:
                (p, sp), (q, sq) = (t1, t2) if g1 > 0 else (t2, t1)
                k, sg = self.node(p, sp, -1, q, sq), 1
            heapq.heappush(heap, (g.depth[k], s, g.width(k), k, s, sg))
        nd, s, sg = heap[0][3:]
        if sg < 0:
            nd = self.node(nd, 0, -1, None, 0)
        return nd, s


def build(W, in_types, *, share=True):
    """The :class:`AdderGraph` of ``y = W @ x`` for integer ``W`` (M × N) and inputs of ``in_types``.

    ``in_types``: one type for every input (``"UINT4"``, ``"INT8"``, an :class:`InType` or
    ``(bits, signed)``) or a list of N. ``share=False`` gives the baseline without sharing: every
    output its own CSD adder tree, nothing reused between outputs.
    """
    W = check_matrix(W)
    types = parse_in_types(in_types, W.shape[1])
    graph = AdderGraph(W, types)
    b = _Builder(graph, share)
    terms = []
    for m in range(W.shape[0]):
        tm = {}
        for n in range(W.shape[1]):
            for s, d in csd(W[m, n]):
                tm[(n, s)] = d
        terms.append(tm)
    if share:
        b.cse(terms)
    for m in range(W.shape[0]):
        graph.outputs.append(b.tree(terms[m]))
        node, shift = graph.outputs[m]
        got = np.zeros(W.shape[1], dtype=np.int64) if node is None else graph._coef[node] * (1 << shift)
        if not np.array_equal(got, W[m]):  # an internal invariant, not a user error
            raise AssertionError(f"cmvm: output {m} computes {got.tolist()}, not row {W[m].tolist()}")
    return graph


def evaluate(graph, x):
    """The golden reference: every node of ``graph`` computed on ``x`` (shape ``(N,)`` or ``(B, N)``); returns ``y``.

    Uses int64 when every wire fits in 62 bits, Python integers otherwise.
    """
    x = np.asarray(x)
    one = x.ndim == 1
    if one:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != graph.n_inputs:
        raise HwgenError(f"cmvm: input of shape {x.shape} for a graph of {graph.n_inputs} inputs; accepted: (N,) or (B, N) with N = {graph.n_inputs}")
    if x.dtype.kind not in "iuO":
        raise HwgenError(f"cmvm: input of dtype {x.dtype}; accepted: integers")
    for i, t in enumerate(graph.in_types):
        col = x[:, i]
        if col.size and (int(col.min()) < t.lo or int(col.max()) > t.hi):
            raise HwgenError(f"cmvm: input {i} holds values in [{int(col.min())}, {int(col.max())}]; accepted: {t} = [{t.lo}, {t.hi}]")
    def mag(k, s=0):
        return max(-graph.lo[k], graph.hi[k]) << s

    # every node, every shifted operand (it may exceed its node's range before cancelling) and every output
    big = max([mag(k) for k in range(len(graph.lo))]
              + [mag(p, sp) for p, sp, _, _, _ in graph.ops] + [mag(q, sq) for _, _, _, q, sq in graph.ops if q is not None]
              + [mag(nd, s) for nd, s in graph.outputs if nd is not None])
    wide = big.bit_length() > 61
    dt = object if wide else np.int64
    vals = [x[:, i].astype(dt) for i in range(graph.n_inputs)]
    for p, sp, g, q, sq in graph.ops:
        v = vals[p] * (1 << sp)
        vals.append(-v if q is None else v + g * (vals[q] * (1 << sq)))
    cols = [np.zeros(x.shape[0], dtype=dt) if nd is None else vals[nd] * (1 << s) for nd, s in graph.outputs]
    y = np.stack(cols, axis=1)
    return y[0] if one else y
