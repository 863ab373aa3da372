"""Per-layer, per-bit-width sensitivity of a float model to quantisation (HAWQ-V2/V3 style), on a CPU.

For a layer ``l`` at ``b`` bits the weight sensitivity is

    Ω_w(l, b) = tr(H_W) / n_W · ‖Q_b(W) − W‖²

with ``H_W`` the Hessian of the mean training loss w.r.t. the layer's weight tensor
(``n_W`` entries), its trace estimated with Hutchinson's estimator (Rademacher
vectors, Hessian-vector products by double back-propagation), and ``Q_b`` the
per-tensor quantiser :func:`hwgen.mixed.quantize` gives the Brevitas model.  The
activation sensitivity is the same measure for the tensor the activation quantiser
after the layer sees (after BatchNorm and ReLU/Hardtanh), over the batch:

    Ω_a(l, b) = tr(H_A) / n_A · ‖Q_b(A) − A‖².

Both estimate (twice) the second-order increase of the mean loss, so they add:
the sensitivity of the pair ``(w, a)`` is ``Ω_w(l, w) + Ω_a(l, a)``.  A residual add (a
:class:`~hwgen.mixed.quantize.Join`, ``add0, …``) has no weights: its entry is ``(None, a)`` and
Ω_a is that of the tensor its quantiser sees (the sum after ``act``).  Quantisers that feed or
follow an add have power-of-two scales in the quantised model, and ``Q_b`` rounds their scale up
to a power of two likewise.
:func:`measured_drop` is the cross-check: the accuracy lost when only one layer is
quantised (post-training, no QAT).

Coarse activation grids are no small perturbation (at 1 bit a sign replaces the ReLU) and
the second-order model under-reads them (100× at 1 bit, 2–4× at 2 bits on the digits CNN):
Ω_a(l, b) is at least twice the loss increase measured with that activation alone
quantised to ``b`` bits.

Ω_w is not always monotone from 1 to 2 bits: the 1-bit sign × mean |W| quantiser
perturbs bell-shaped weights less than the 2-bit max-abs one (levels −max, 0, max),
and the measured drops agree.  A trace estimate, and so Ω, can come out negative
when the Hessian block is indefinite or ``n_samples`` too small for its noise; the
standard errors in :class:`Sensitivity` say how far to trust each trace.
"""

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from ..errors import HwgenError
from .quantize import BITS, Join, check_bits, power_of_two, segments

__all__ = ["Sensitivity", "sensitivity", "hutchinson_trace", "measured_drop", "weight_quant", "act_quant"]

ACT_PERCENTILE = 99.99


@dataclass
class Sensitivity:
    """Result of :func:`sensitivity`; ``table`` is ``{layer: {(w_bits, a_bits): Ω}}`` (``a_bits`` None for the last layer)."""

    table: dict
    weight: dict        # layer -> {bits: Ω_w}; residual adds have none
    act: dict           # layer -> {bits: Ω_a}; the last layer has none
    weight_trace: dict      # layer -> tr(H_W) / n_W
    act_trace: dict         # layer -> tr(H_A) / n_A
    weight_trace_err: dict  # layer -> standard error of weight_trace
    act_trace_err: dict     # layer -> standard error of act_trace
    seconds: float
    seed: int
    n_samples: int

    def format(self):
        """A text table: per layer, the mean Hessian traces and Ω_w / Ω_a at each bit width."""
        bits = sorted({b for d in self.weight.values() for b in d})
        lines = [f"sensitivity: {self.n_samples} Hutchinson samples, seed {self.seed}, {self.seconds:.2f} s",
                 "layer  kind  tr/n      " + "  ".join(f"{b}b".rjust(9) for b in bits)]
        for name in self.table:
            for kind, trace, omega in (("W", self.weight_trace, self.weight), ("A", self.act_trace, self.act)):
                if name in omega:
                    lines.append(f"{name:6s} {kind}     {trace[name]:9.3g} " +
                                 "  ".join(f"{omega[name][b]:9.3g}" for b in bits))
        return "\n".join(lines)


def _check_bits(bits):
    bits = tuple(bits)
    bad = [b for b in bits if isinstance(b, bool) or not isinstance(b, int) or b not in BITS]
    if not bits or bad:
        raise HwgenError(f"sensitivity: bits must be whole numbers 1..8, not {bad or list(bits)}")
    return bits


def weight_quant(w, bits):
    """Q_b(W) as the Brevitas model computes it: sign × mean |W| at 1 bit, else narrow-range
    symmetric per-tensor with scale max |W| / (2^(b−1) − 1)."""
    import torch
    if bits == 1:
        return torch.where(w >= 0, 1.0, -1.0).to(w.dtype) * w.abs().mean()
    top = 2 ** (bits - 1) - 1
    scale = w.abs().max().clamp_min(1e-12) / top
    return torch.clamp(torch.round(w / scale), -top, top) * scale


def act_quant(a, bits, unsigned, ref, po2=False):
    """Q_b(A) for an activation.  ``unsigned`` (after ReLU): levels 0..2^b − 1 with scale ref / (2^b − 1);
    at 1 bit, ``c · [A > 0]`` with c the mean positive activation (a bipolar sign of the pre-activation, up to
    the affine map the next layer absorbs).  Signed: scale ref / (2^(b−1) − 1); at 1 bit sign × mean |A|.
    ``ref`` is the clipping value (a high percentile of |A|); ``po2``: the scale rounded up to a power of two."""
    import torch
    if bits == 1:
        if unsigned:
            pos = a > 0
            return pos.to(a.dtype) * (a[pos].mean() if pos.any() else a.new_zeros(()))
        return torch.where(a >= 0, 1.0, -1.0).to(a.dtype) * a.abs().mean()
    lo, top = (0, 2 ** bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    scale = max(float(ref), 1e-12) / top
    if po2:
        scale = 2.0 ** np.ceil(np.log2(scale))
    return torch.clamp(torch.round(a / scale), lo, top) * scale


def _rademacher(t, g):
    import torch
    return (torch.randint(0, 2, t.shape, generator=g, dtype=t.dtype) * 2 - 1)


def hutchinson_trace(loss, tensors, n_samples, generator):
    """Hutchinson estimates of tr(∂²loss/∂t²) for each tensor ``t`` (weights or intermediate activations).

    Each sample draws a Rademacher vector ``v`` per tensor and computes ``H_tt v`` by back-propagating
    ``∂loss/∂t · v`` to ``t`` alone, so the estimate ``v · H_tt v`` carries no cross-tensor noise (for the
    activations of a piecewise-linear network with a cross-entropy loss ``H_tt`` is positive
    semi-definite and every sample is ≥ 0).  Returns ``(means, standard errors)`` as float lists.
    """
    import torch
    grads = torch.autograd.grad(loss, tensors, create_graph=True)
    samples = np.zeros((n_samples, len(tensors)))
    for i in range(n_samples):
        for j, (t, g) in enumerate(zip(tensors, grads)):
            v = _rademacher(t, generator)
            (hv,) = torch.autograd.grad(g, t, grad_outputs=v, retain_graph=True)
            samples[i, j] = float((hv * v).sum())
    err = samples.std(axis=0, ddof=1) / np.sqrt(n_samples) if n_samples > 1 else np.full(len(tensors), np.inf)
    return samples.mean(axis=0).tolist(), err.tolist()


@contextlib.contextmanager
def _capture(model, segs):
    """Within the block, forward passes keep each non-last segment's quantised tensor in the yielded dict."""
    seen, handles = {}, []
    for s in segs[:-1]:
        def hook(_module, _inputs, out, name=s.name):
            seen[name] = out
        handles.append(s.quant_point.register_forward_hook(hook))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def _tensors(x, y=None):
    import torch
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    return x if y is None else (x, torch.as_tensor(np.asarray(y), dtype=torch.long))


def _ref(a, percentile):
    return float(np.percentile(a.detach().abs().numpy(), percentile))


def sensitivity(float_model, x, y, bits=(1, 2, 3, 4, 5, 6, 8), n_samples=64, seed=0, act_percentile=ACT_PERCENTILE):
    """Ω of every layer at every ``(w_bits, a_bits)`` of ``bits`` from one batch ``(x, y)`` of training data.

    ``float_model`` is evaluated in eval mode (BatchNorm on running statistics) with the mean
    cross-entropy loss; ``n_samples`` Hutchinson samples from a ``torch.Generator`` seeded with
    ``seed``.  Returns a :class:`Sensitivity` (with the run time in ``seconds``).
    """
    import torch
    import torch.nn.functional as F

    bits = _check_bits(bits)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise HwgenError(f"sensitivity: n_samples must be a whole number ≥ 1, not {n_samples!r}")
    t0 = time.perf_counter()
    _, segs = segments(float_model)
    x, y = _tensors(x, y)
    was_training = float_model.training
    float_model.eval()
    try:
        with _capture(float_model, segs) as seen:
            loss = F.cross_entropy(float_model(x), y)
    finally:
        float_model.train(was_training)
    weights = {s.name: s.layer.weight for s in segs if not isinstance(s, Join)}
    acts = {s.name: seen[s.name] for s in segs[:-1]}
    keys = [("W", n) for n in weights] + [("A", n) for n in acts]
    tensors = [*weights.values(), *acts.values()]
    traces, errs = hutchinson_trace(loss, tensors, n_samples, torch.Generator().manual_seed(seed))
    mean = {k: v / t.numel() for k, v, t in zip(keys, traces, tensors)}
    err = {k: v / t.numel() for k, v, t in zip(keys, errs, tensors)}
    w_trace, w_err = ({n: d["W", n] for n in weights} for d in (mean, err))
    a_trace, a_err = ({n: d["A", n] for n in acts} for d in (mean, err))
    po2 = power_of_two(segs)
    with torch.no_grad():
        omega_w = {n: {b: w_trace[n] * _sq(weight_quant(w, b) - w) for b in bits} for n, w in weights.items()}
        omega_a = {s.name: _act_omega(acts[s.name], a_trace[s.name], s.act_kind == "relu", bits, act_percentile,
                                      s.name in po2)
                   for s in segs[:-1]}
    _measured_floor(float_model, segs, acts, omega_a, x, y, float(loss.detach()), act_percentile, po2)
    table = {s.name: ({(None, a): omega_a[s.name][a] for a in bits} if isinstance(s, Join) else
                      {(w, a): omega_w[s.name][w] + (omega_a[s.name][a] if a is not None else 0.0)
                       for w in bits for a in (bits if s.name in omega_a else (None,))}) for s in segs}
    return Sensitivity(table, omega_w, omega_a, w_trace, a_trace, w_err, a_err, time.perf_counter() - t0, seed, n_samples)


def _quantise_output(seg, bits, ref, po2):
    """A forward hook on ``seg``'s quantisation point replacing its output by ``Q_bits`` (clipping value
    ``ref``); returns the handle to remove."""
    unsigned = seg.act_kind == "relu"
    return seg.quant_point.register_forward_hook(lambda _m, _i, out: act_quant(out, bits, unsigned, ref, po2))


def _measured_floor(float_model, segs, acts, omega_a, x, y, loss0, percentile, po2):
    """Ω_a(l, b) := max(its Hessian estimate, 2 × the loss increase measured with activation ``l`` alone
    quantised to ``b`` bits).  Coarse activation grids are no small perturbation and the second-order
    model under-reads them: on the trained digits CNN binarising conv0's or conv1's output raises the
    loss by 1.3–1.5 where the model reads 0.01–0.02, and at 2 bits by 3.6× / 1.9× its reading — the
    allocation then chose A1/A2 layers QAT could not recover (93–97 % against 97.7 % for W3A3).  Ω
    estimates twice the loss increase, hence the factor.  Weights keep the second-order estimate:
    their post-training rise is dominated by the max-abs scale QAT re-fits (W2 reads 20–100× higher
    measured, yet uniform W2A2 trains to 93–96 %)."""
    import torch
    import torch.nn.functional as F
    was = float_model.training
    float_model.eval()
    try:
        for s in segs[:-1]:
            a = acts[s.name]
            ref = _ref(a, percentile)
            for b in omega_a[s.name]:
                h = _quantise_output(s, b, ref, s.name in po2)
                try:
                    with torch.no_grad():
                        rise = float(F.cross_entropy(float_model(x), y)) - loss0
                finally:
                    h.remove()
                omega_a[s.name][b] = max(omega_a[s.name][b], 2.0 * rise)
            # a finer grid never costs more than a coarser one (measured rises at fine grids are noise)
            finer = 0.0
            for b in sorted(omega_a[s.name], reverse=True):
                finer = omega_a[s.name][b] = max(omega_a[s.name][b], finer)
    finally:
        float_model.train(was)


def _sq(d):
    return float((d ** 2).sum())


def _act_omega(a, trace, unsigned, bits, percentile, po2=False):
    """{bits: Ω_a} of one activation tensor with mean Hessian trace ``trace``."""
    ref = _ref(a, percentile)
    return {b: trace * _sq(act_quant(a, b, unsigned, ref, po2) - a) for b in bits}


def _segment(segs, layer):
    for s in segs:
        if s.name == layer:
            return s
    raise HwgenError(f"layer {layer!r} is not in the model; layers are {', '.join(s.name for s in segs)}")


def _accuracy(model, x, y):
    import torch
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def measured_drop(float_model, x, y, layer, w_bits, a_bits, calib=None, act_percentile=ACT_PERCENTILE):
    """Accuracy on ``(x, y)`` of the float model minus that with only ``layer`` quantised, post-training.

    The layer's weights go through ``Q_{w_bits}`` and the activation after it through ``Q_{a_bits}``
    (scale from ``calib``, default ``x``); ``None`` leaves that part float (a residual add has no
    weights: ``w_bits`` must be None).  Every other layer stays float; the model is restored afterwards.
    """
    import torch

    _, segs = segments(float_model)
    seg = _segment(segs, layer)
    join = isinstance(seg, Join)
    if join and w_bits is not None:
        raise HwgenError(f"layer {layer}: weight bits must be None (a residual add has no weights), not {w_bits!r}")
    if w_bits is not None:
        check_bits("weight", w_bits, layer)
    if a_bits is not None:
        check_bits("activation", a_bits, layer)
        if seg is segs[-1]:
            raise HwgenError(f"layer {layer}: activation bits must be None for the last layer (it has no activation "
                             f"quantiser), not {a_bits}")
    x, y = _tensors(x, y)
    was_training, handle = float_model.training, None
    saved = None if join else seg.layer.weight.detach().clone()
    float_model.eval()
    try:
        base = _accuracy(float_model, x, y)
        if a_bits is not None:
            with _capture(float_model, segs) as seen, torch.no_grad():
                float_model(x if calib is None else _tensors(calib))
            handle = _quantise_output(seg, a_bits, _ref(seen[layer], act_percentile), layer in power_of_two(segs))
        if w_bits is not None:
            with torch.no_grad():
                seg.layer.weight.copy_(weight_quant(saved, w_bits))
        return base - _accuracy(float_model, x, y)
    finally:
        if saved is not None:
            with torch.no_grad():
                seg.layer.weight.copy_(saved)
        if handle is not None:
            handle.remove()
        float_model.train(was_training)
