"""Lowering of QONNX quantisers: Quant / IntQuant / BipolarQuant."""

import math

import numpy as np
import onnx

from ..dataflow import MVAU, VVAU, AddStreams, Requant, Thresholding
from .requant import MAX_THRESHOLDS
from ..dtypes import DType, smallest_dtype
from ..errors import HwgenError, UnsupportedError
from ..host import ROUNDING_MODES, eval_ops, quantise
from .context import channel_vector
from .thresholds import segment_thresholds
from .values import Acc, Const, FloatInput, IntConst, IntTensor, PendingConcat

__all__ = ["lower_quant", "MAX_ACT_BITS", "MAX_WEIGHT_BITS"]

MAX_ACT_BITS = 16
MAX_WEIGHT_BITS = 16
MAX_CONST_BITS = 64         # a quantised bias (Brevitas Int32Bias …): integers exact in the host's int64


_KINDS = {int: "an integer", float: "a number", str: "a string"}


def _attr(node, name, default):
    """Attribute ``name`` of ``node`` (``default`` when absent), of the kind of ``default`` when it has one:
    an integer, a finite number (an integer is accepted) or a string; anything else is an UnsupportedError."""
    for a in node.attribute:
        if a.name != name:
            continue
        if a.type == a.INT:
            v = a.i
        elif a.type == a.FLOAT:
            v = a.f
        elif a.type == a.STRING:
            v = a.s.decode(errors="replace")
        else:
            v = onnx.helper.get_attribute_value(a)
            if default is None:
                return v
        want = type(default) if isinstance(default, (int, float, str)) and not isinstance(default, bool) else None
        if want is float and isinstance(v, int):
            v = float(v)
        if want is not None and not isinstance(v, want):
            shown = v if isinstance(v, (int, float, str)) else onnx.AttributeProto.AttributeType.Name(a.type)
            raise UnsupportedError(f"node {node.name} ({node.op_type}): attribute {name} must be {_KINDS[want]}, "
                                   f"not {str(shown)[:40]!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise UnsupportedError(f"node {node.name} ({node.op_type}): attribute {name} must be a finite number, not {v}")
        return v
    return default


def _bit_width(ctx, node, i, what="bit width"):
    """Input ``i`` of ``node``: a whole number of bits from 1 to MAX_CONST_BITS."""
    bw = np.asarray(ctx.const(node.input[i], node, what), dtype=np.float64)
    if bw.size != 1 or not np.isfinite(bw).all() or float(bw.reshape(())) != int(bw.reshape(())):
        raise UnsupportedError(f"node {node.name} ({node.op_type}): {what} must be a whole number, not {bw.ravel()[:4].tolist()}")
    bits = int(bw.reshape(()))
    if bits < 1 or bits > MAX_CONST_BITS:
        raise UnsupportedError(f"node {node.name} ({node.op_type}): {what} {bits} is out of range; accepted: 1 to "
                               f"{MAX_ACT_BITS} (up to {MAX_CONST_BITS} for a quantised bias)")
    return bits


def _trunc_desc(ctx, node, x):
    """QONNX Trunc (v1: 5 inputs, v2: 6 inputs) as a quantiser dict."""
    where = f"node {node.name} (Trunc)"
    scale = ctx.const(node.input[1], node, "scale")
    zp = ctx.const(node.input[2], node, "zero point")
    for what, v in (("scale", scale), ("zero point", zp)):
        if not np.all(np.isfinite(v)) or (what == "scale" and np.any(v <= 0)):
            raise UnsupportedError(f"{where}: {what} must be finite{' and positive' if what == 'scale' else ''}, "
                                   f"not {np.asarray(v).ravel()[:4].tolist()}")
    in_bw = _bit_width(ctx, node, 3, "input bit width")
    mode = str(_attr(node, "rounding_mode", "FLOOR")).upper()
    if mode not in ROUNDING_MODES:
        raise UnsupportedError(f"{where}: rounding_mode must be one of {', '.join(ROUNDING_MODES)}, not {mode[:40]!r}")
    if len(node.input) >= 6:
        out_scale = ctx.const(node.input[4], node, "output scale")
        if not np.all(np.isfinite(out_scale)) or np.any(out_scale <= 0):
            raise UnsupportedError(f"{where}: output scale must be finite and positive, not {np.asarray(out_scale).ravel()[:4].tolist()}")
        out_bw = _bit_width(ctx, node, 5, "output bit width")
        signed = bool(_attr(node, "signed", 1))
        narrow = bool(_attr(node, "narrow", 0))
        ts = 2.0 ** np.round(np.log2(np.asarray(out_scale, dtype=np.float64) / np.asarray(scale, dtype=np.float64)))
        if signed:
            qmin, qmax = -(1 << (out_bw - 1)) + (1 if narrow else 0), (1 << (out_bw - 1)) - 1
        else:
            qmin, qmax = 0, (1 << out_bw) - 1 - (1 if narrow else 0)
        desc = {"trunc": 2, "scale": scale, "zero_point": zp, "trunc_scale": ts, "qmin": qmin, "qmax": qmax,
                "rounding_mode": mode}
        return desc, out_bw, out_scale, np.asarray(zp, dtype=np.float64) / ts
    out_bw = _bit_width(ctx, node, 4, "output bit width")
    ts = 2.0 ** (in_bw - out_bw)
    desc = {"trunc": 1, "scale": scale, "zero_point": zp, "trunc_scale": ts, "rounding_mode": mode}
    return desc, out_bw, scale, np.asarray(zp, dtype=np.float64)


def lower_trunc(ctx, node):
    """Trunc of an integer tensor (after average pooling): a monotone requantisation."""
    x = ctx.get(node.input[0], node)
    if isinstance(x, IntTensor):
        x = int_to_acc(x)
    if not isinstance(x, Acc):
        raise UnsupportedError(f"node {node.name} (Trunc): input must be an integer tensor (average pooling of a quantised tensor), not a {type(x).__name__}")
    q, bits, out_scale, out_zp = _trunc_desc(ctx, node, x)
    if "qmin" not in q:          # Trunc v1 does not clamp: its range follows from the input's
        qc = {k: channel_vector(v, x.shape, f"node {node.name}: {k}") if k in ("scale", "zero_point", "trunc_scale") else v
              for k, v in q.items()}
        ends = quantise(eval_ops(x.ops, np.stack([x.lo, x.hi]).astype(np.float64)), qc)
        q["qmin"], q["qmax"] = int(ends.min()), int(ends.max())
    dt = smallest_dtype(q["qmin"], q["qmax"])
    _check_bits(node, dt.bits, MAX_ACT_BITS, "activation")
    ctx.values[node.output[0]] = finish_segment(ctx, node, x, q, dt, out_scale=out_scale, out_zp=out_zp)


def lower_multithreshold(ctx, node):
    """A MultiThreshold node (FINN-streamlined QONNX): ``out_scale · #{T ≤ x} + out_bias``."""
    where = f"node {node.name} (MultiThreshold)"
    x = ctx.get(node.input[0], node)
    if isinstance(x, IntTensor):
        x = int_to_acc(x)
    if not isinstance(x, (Acc, PendingConcat)):
        raise UnsupportedError(f"{where}: input must be a computed tensor, not a {type(x).__name__}")
    layout = str(_attr(node, "data_layout", "") or ("NCHW" if len(x.shape) == 4 else "NC"))
    if layout not in ("NCHW", "NC"):
        raise UnsupportedError(f"{where}: data_layout must be NCHW or NC, not {layout!r}")
    T = np.asarray(ctx.const(node.input[1], node, "thresholds"), dtype=np.float64)
    C = x.shape[1]
    if T.ndim != 2 or T.shape[0] not in (1, C):
        raise UnsupportedError(f"{where}: thresholds must have shape ({C}, N) or (1, N), not {T.shape}")
    T = np.sort(np.broadcast_to(T, (C, T.shape[1])), axis=1)
    try:
        odt = DType(str(_attr(node, "out_dtype", "")))
    except HwgenError:
        raise UnsupportedError(f"{where}: out_dtype must be an integer type (UINTn, INTn, BIPOLAR), not {_attr(node, 'out_dtype', '')!r}") from None
    out_scale = float(_attr(node, "out_scale", 1.0))
    out_bias = float(_attr(node, "out_bias", 0.0))
    n = T.shape[1]
    if odt.name == "BIPOLAR":
        if n != 1 or out_scale != 2.0 or out_bias != -1.0:
            raise UnsupportedError(f"{where}: a BIPOLAR output needs one threshold, out_scale 2 and out_bias -1")
        q = {"thresholds": T, "base": -1, "step": 2, "qmin": -1, "qmax": 1, "bipolar": False}
        scale, zp = 1.0, 0.0
    else:
        if out_scale == 0 or out_bias / out_scale != round(out_bias / out_scale):
            raise UnsupportedError(f"{where}: out_bias/out_scale must be a whole number, not {out_bias}/{out_scale}")
        base = int(round(out_bias / out_scale))
        if base < odt.min or base + n > odt.max:
            raise UnsupportedError(f"{where}: {n} thresholds from {base} do not fit {odt}")
        q = {"thresholds": T, "base": base, "step": 1, "qmin": base, "qmax": base + n}
        scale, zp = out_scale, 0.0
    _check_bits(node, odt.bits, MAX_ACT_BITS, "activation")
    q["scale"], q["zero_point"] = scale, zp
    ctx.values[node.output[0]] = finish_segment(ctx, node, x, q, odt)


def _quant_desc(ctx, node):
    """The quantiser as a dict usable by hwgen.host.quantise, plus its DType."""
    where = f"node {node.name} ({node.op_type})"
    scale = ctx.const(node.input[1], node, "scale")
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise UnsupportedError(f"{where}: scale must be finite and positive, not {np.asarray(scale).ravel()[:4].tolist()}")
    if node.op_type == "BipolarQuant":
        return {"bipolar": True, "scale": scale, "zero_point": 0.0, "qmin": -1, "qmax": 1}, DType("BIPOLAR"), 1
    zp = ctx.const(node.input[2], node, "zero point")
    bits = _bit_width(ctx, node, 3)
    signed = bool(_attr(node, "signed", 1))
    narrow = bool(_attr(node, "narrow", 0))
    mode = str(_attr(node, "rounding_mode", "ROUND")).upper()
    if mode not in ROUNDING_MODES:
        raise UnsupportedError(f"{where}: rounding_mode must be one of {', '.join(ROUNDING_MODES)}, not {mode[:40]!r}")
    if not np.all(np.isfinite(zp)) or np.any(zp != np.round(zp)):
        raise UnsupportedError(f"{where}: zero point must be a whole number, not {np.asarray(zp).ravel()[:4].tolist()}")
    if signed:
        qmin, qmax = -(1 << (bits - 1)) + (1 if narrow else 0), (1 << (bits - 1)) - 1
        dt = DType(f"INT{bits}")
    else:
        qmin, qmax = 0, (1 << bits) - 1 - (1 if narrow else 0)
        dt = DType(f"UINT{bits}")
    if qmax < qmin or (qmax == qmin):
        raise UnsupportedError(f"node {node.name} (Quant): a {bits}-bit {'signed' if signed else 'unsigned'}{' narrow' if narrow else ''} quantiser has fewer than two levels")
    desc = {"scale": scale, "zero_point": zp, "qmin": qmin, "qmax": qmax, "rounding_mode": mode, "bipolar": False}
    return desc, dt, bits


def _check_bits(node, bits, limit, what):
    if bits > limit:
        raise UnsupportedError(f"node {node.name} ({node.op_type}): {what} bit width {bits} is out of range; accepted: 1 to {limit}")


def _check_param_shapes(node, q, x):
    """Scale and zero point must broadcast to the quantised tensor without growing it."""
    shape = tuple(x.shape)
    for k in ("scale", "zero_point"):
        p = np.shape(q[k])
        try:
            ok = np.broadcast_shapes(p, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            what = "zero point" if k == "zero_point" else k
            raise UnsupportedError(f"node {node.name} ({node.op_type}): {what} of shape {p} does not broadcast to "
                                   f"its input of shape {shape}; accepted: a scalar or one value per channel")


def lower_quant(ctx, node):
    x = ctx.get(node.input[0], node)
    q, dt, bits = _quant_desc(ctx, node)
    out = node.output[0]
    if x is not None and hasattr(x, "shape"):
        _check_param_shapes(node, q, x)

    if isinstance(x, Const):                         # weights, quantised bias
        if x.value.size == 0:
            raise UnsupportedError(f"node {node.name} ({node.op_type}): the constant {node.input[0]} it quantises is "
                                   f"empty (shape {tuple(x.value.shape)})")
        if not np.all(np.isfinite(x.value)):
            bad = x.value[~np.isfinite(x.value)].ravel()[:3].tolist()
            raise UnsupportedError(f"node {node.name} ({node.op_type}): the constant {node.input[0]} it quantises "
                                   f"must be finite, not {bad}")
        iq = quantise(x.value, q)
        zp = np.asarray(q["zero_point"], dtype=np.float64)
        ctx.values[out] = IntConst(iq, np.asarray(q["scale"], dtype=np.float64), zp, dt, node.name)
        return

    if isinstance(x, FloatInput):                    # the head
        _check_bits(node, bits, MAX_ACT_BITS, "activation")
        if ctx.head is not None:
            raise UnsupportedError(f"node {node.name}: the model input is quantised twice; accepted: one input quantiser")
        scale = np.asarray(q["scale"], dtype=np.float64)
        zp = np.asarray(q["zero_point"], dtype=np.float64)
        # the quantiser's constants broadcast against the input as given, or against the result of the pre ops
        against = tuple(x.shape) if x.ops else ctx.input_shape
        if not x.ops and x.shape != ctx.input_shape and (scale.size > 1 or zp.size > 1):
            raise UnsupportedError(f"node {node.name}: a per-channel input quantiser after a reshape is not supported; accepted: per-tensor scale")
        pshape = list(np.broadcast_shapes(scale.shape, zp.shape))
        pshape = pshape[1:] if len(pshape) == len(against) else pshape
        ctx.head = {
            "input_name": ctx.input_name, "input_shape": list(ctx.input_shape), "node": node.name,
            "quant": {"scale": scale.ravel().tolist(), "zero_point": zp.ravel().tolist(),
                      "qmin": q["qmin"], "qmax": q["qmax"], "rounding_mode": q.get("rounding_mode", "ROUND"),
                      "bipolar": bool(q.get("bipolar", False)), "dtype": dt.name},
            "quant_param_shape": pshape if scale.size > 1 or zp.size > 1 else [],
            "transpose": list(x.transpose) if x.transpose else None,
        }
        if x.ops:
            ctx.head["pre"] = [{k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in op.items()}
                               for op in x.ops]
        ctx.values[out] = IntTensor(tuple(x.shape), dt, scale, zp, None, node.name)
        return

    _check_bits(node, bits, MAX_ACT_BITS, "activation")
    if isinstance(x, IntTensor):                     # requantisation of integers
        x = int_to_acc(x)
    if not isinstance(x, (Acc, PendingConcat)):
        raise UnsupportedError(f"node {node.name}: cannot quantise a {type(x).__name__}")
    ctx.values[out] = finish_segment(ctx, node, x, q, dt)


def quantised_weights(ctx, node, name):
    """The quantised constant ``name`` that node ``node`` (MatMul, Gemm, Conv) multiplies by: an
    :class:`IntConst` of at most :data:`MAX_WEIGHT_BITS` bits with zero point 0, else a one-line error."""
    w = ctx.get(name, node)
    where = f"node {node.name} ({node.op_type})"
    if isinstance(w, Const):
        raise UnsupportedError(f"{where}: weights must be quantised (a Quant/BipolarQuant on the weight), not float")
    if not isinstance(w, IntConst):
        raise UnsupportedError(f"{where}: weights must be a quantised constant, not a computed tensor")
    if w.dt.bits > MAX_WEIGHT_BITS:
        raise UnsupportedError(f"node {w.node} (Quant): weight bit width {w.dt.bits} is out of range; accepted: 1 to {MAX_WEIGHT_BITS}")
    if np.any(w.zero_point != 0):
        raise UnsupportedError(f"node {w.node} (Quant): weight zero point must be 0, not {np.asarray(w.zero_point).ravel()[:4].tolist()}")
    return w


def _signed_rows(layer, sign):
    """The output-stage attributes that make ``layer`` compute ``sign`` (±1 per channel) times its
    accumulator, so that a decreasing requantisation becomes an increasing one: an add's two
    multipliers negated (``sign`` all −1), or an MVAU's/VVAU's weight rows (their type one bit
    wider when −(−2^(b−1)) needs it)."""
    if not np.any(sign < 0):
        return {}
    if isinstance(layer, AddStreams):
        return {"ka": -layer.ka, "kb": -layer.kb}
    w = layer.weights * sign[:, None]
    wdt = layer.wdt if layer.wdt.allowed(w) else smallest_dtype(int(w.min()), int(w.max()))
    return {"weights": w, "wdt": wdt}


def _requantise(ctx, node, acc, T, sign, base, dt, scale, zp, slope=None):
    """Many output levels: the producer emits its raw integers and a proven-exact Requant follows."""
    from .requant import fit_requant
    where = f"node {node.name} ({node.op_type})"
    src = acc.base
    if isinstance(src, (MVAU, VVAU, AddStreams)):
        if np.any(sign < 0) and isinstance(src, AddStreams) and not np.all(sign < 0):
            raise UnsupportedError(f"{where}: mixed-direction requantisation after an add is not supported")
        ctx.close_layer(src, where, thresholds=None, out_dt="raw", **_signed_rows(src, sign))
        if isinstance(src, AddStreams):
            lo, hi = np.full(T.shape[0], src.acc_range[0]), np.full(T.shape[0], src.acc_range[1])
        elif isinstance(src, VVAU):
            lo, hi = src.channel_acc_range
        else:
            from ..dataflow import accumulator_range
            lo, hi = accumulator_range(src.weights, src.idt)
        in_dt, reads = src.out_dt, src
        spatial = tuple(src.spatial) if getattr(src, "spatial", None) else (tuple(src.shape[:-1]) if isinstance(src, AddStreams) else ())
    else:
        if np.any(sign < 0):
            raise UnsupportedError(f"{where}: a decreasing requantisation of an integer activation is not supported")
        lo, hi = acc.lo, acc.hi
        in_dt, reads = src.dt, src
        spatial = tuple(src.ir_shape[:-1])
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    max_abs = int(max(abs(int(lo.min())), abs(int(hi.max())), 1))
    M, B, S, ylo, yhi = fit_requant(T, lo, hi, base, where, max_abs, slope)
    C = T.shape[0]
    layer = Requant(ctx.new_name("rq"), channels=C, in_dt=in_dt, out_dt=dt, mult=tuple(int(v) for v in M),
                    bias=tuple(int(v) for v in B), shift=int(S),
                    lo=max(ylo, dt.min), hi=min(yhi, dt.max), spatial=spatial)
    layer.validate()
    ctx.add_layer(layer, node.name, reads)
    ctx.int_outputs[layer.name] = node.output[0]
    return IntTensor(tuple(acc.shape), dt, scale, zp, layer, node.name, perm=getattr(reads, "perm", None))


def int_to_acc(t):
    """View an integer tensor as an Acc whose chain dequantises it."""
    C = t.channels
    zp = channel_vector(t.zero_point, t.shape, "zero point")
    sc = channel_vector(t.scale, t.shape, "scale")
    lo = np.full(C, t.dt.min, dtype=np.int64)
    hi = np.full(C, t.dt.max, dtype=np.int64)
    return Acc(tuple(t.shape), t, lo, hi, [{"op": "dequant", "scale": sc, "zero_point": zp}], t.node)


def finish_segment(ctx, node, acc, q, dt, out_scale=None, out_zp=None):
    """Turn ``quant(ops(acc))`` into thresholds on the producing hardware."""
    if isinstance(acc, PendingConcat):      # each input requantised on its own (lower/branch.py)
        return acc.finish(ctx, node, acc, q, dt, out_scale, out_zp)
    shape = acc.shape
    qc = dict(q)
    for k in ("scale", "zero_point", "trunc_scale"):
        if k in q:
            qc[k] = channel_vector(q[k], shape, f"node {node.name}: quantiser {k}")
    T, sign, base, step = segment_thresholds(acc.ops, qc, acc.lo, acc.hi)
    scale = np.asarray(q["scale"] if out_scale is None else out_scale, dtype=np.float64)
    zp = np.asarray(q["zero_point"] if out_zp is None else out_zp, dtype=np.float64)
    if T.shape[1] > MAX_THRESHOLDS:
        from .requant import chain_slope
        return _requantise(ctx, node, acc, T, sign, base, dt, scale, zp, chain_slope(acc.ops, qc, T.shape[0]))
    if isinstance(acc.base, (AddStreams, MVAU, VVAU)):
        layer = acc.base
        if np.any(sign < 0) and isinstance(layer, AddStreams) and not np.all(sign < 0):
            raise UnsupportedError(f"node {node.name}: a requantisation after an add that decreases for some channels and increases for others is not supported")
        ctx.close_layer(layer, f"node {node.name} ({node.op_type})", thresholds=T, out_dt=dt, out_base=int(base),
                        **_signed_rows(layer, sign))
        ctx.int_outputs[layer.name] = node.output[0]
        return IntTensor(tuple(shape), dt, scale, zp, layer, node.name)
    src = acc.base                                      # an IntTensor: standalone thresholding
    if np.any(sign < 0):
        raise UnsupportedError(f"node {node.name}: a decreasing function of an integer activation (negative scale without a preceding MatMul) is not supported")
    # an identity requantisation needs no hardware
    xs = np.array([-1, 1]) if src.dt.name == "BIPOLAR" else np.arange(src.dt.min, src.dt.max + 1, dtype=np.int64)
    ys = base + step * (xs[:, None, None] >= T[None, :, :]).sum(-1)      # (X, C)
    if dt == src.dt and np.all(ys == xs[:, None]):
        return IntTensor(tuple(shape), dt, scale, zp, src.producer, node.name, perm=src.perm)
    C = T.shape[0]
    if src.perm is not None and not all(np.ndim(op.get(k, 0)) == 0 for op in acc.ops for k in ("value", "scale", "zero_point")):
        raise UnsupportedError(f"node {node.name}: per-channel requantisation of a flattened feature map is not supported")
    layer = Thresholding(ctx.new_name("thr"), channels=C, in_dt=src.dt, out_dt=dt, thresholds=T,
                         out_base=int(base), spatial=tuple(shape[2:]) if len(shape) > 2 else ())
    ctx.add_layer(layer, node.name, src)
    ctx.int_outputs[layer.name] = node.output[0]
    return IntTensor(tuple(shape), dt, scale, zp, layer, node.name, perm=src.perm)
