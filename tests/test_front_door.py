"""The front door, fuzzed: malformed models and folding files through the CLI and the API.

Every case takes a small valid QONNX model (an MLP, a CNN, a binary net, a
residual add, hand-made so that a whole build takes well under a second; and
two Brevitas exports: TruncAvgPool, Concat + ArgMax), breaks it in one to
three seeded ways (truncated or random bytes, op types swapped, attributes
removed or changed, inputs rewired, initialisers' shapes, dtypes and values
changed, graph shapes changed, bit widths and scales out of range, empty
graphs, duplicate names, nodes shuffled…) or writes a random folding file
(wrong types, unknown layers, zero/negative/non-dividing PE/SIMD, bad
mem_style, non-JSON text, nested junk, and plausible divisor foldings), and runs
``hwgen build`` in-process (``hwgen.cli.main``) or ``hwgen.build``.  The oracle
(:func:`check_case`) accepts exactly two outcomes (ARCHITECTURE §6):

* exit 2 with one line ``hwgen: error: …`` (under 300 characters; the API: a
  one-line :class:`~hwgen.errors.HwgenError`), nothing else on stderr but
  progress lines, and no output directory;
* a correct build: the output directory holds the manifest and the Verilog,
  and (for a sample) the IR reproduces QONNX's ``execute_onnx`` on the same
  mutated model (a float32 difference must be a rounding tie: the strict
  float64 interpreter :func:`execute64` then agrees with the IR, ARCHITECTURE
  §2); where QONNX cannot run the mutated model the case is counted as
  "reference undefined" (hwgen is more lenient: e.g. a missing ``narrow``
  attribute defaults to 0, an integer-typed initializer is read as floats).

and never a traceback, any other exception, a hang (each case has a time
limit) or a file touched outside the output path (each case runs in its own
temporary working directory, with ``tempfile``'s directory inside it, both
compared before and after).  Warnings are shown as a command-line user would
see them (pytest would otherwise swallow them), so a numpy warning before the
error line is a failure too.  :func:`test_oracle_flags_planted_faults` checks
that each of these defects, planted, is reported.

Replay: each failure prints its case id, e.g. ``cli-onnx:0:17``; run
``HWGEN_FRONT_DOOR_CASE=cli-onnx:0:17 pytest tests/test_front_door.py -s`` to run
that case alone, ``HWGEN_FRONT_DOOR_SEED=N`` for another seed of the whole run and
``HWGEN_FRONT_DOOR_CASES=N`` for N cases per front (the default run: 200 cases;
``pytest -m slow -k front_door_more``: 400 more, of the next seed).  The case count and the
outcome counts are printed at the end of the session (conftest.py).
"""

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qonnx_builder import GraphBuilder

pytestmark = pytest.mark.filterwarnings("ignore")

SEED = int(os.environ.get("HWGEN_FRONT_DOOR_SEED", "0"))
CASES = int(os.environ.get("HWGEN_FRONT_DOOR_CASES", "0")) or None      # per front; None: the defaults below
ONLY = os.environ.get("HWGEN_FRONT_DOOR_CASE")                          # "front:seed:index"
TIME_LIMIT = float(os.environ.get("HWGEN_FRONT_DOOR_TIME_LIMIT", "30"))  # seconds per case
MAX_LINE = 300

SUMMARY = {"cases": 0, "outcomes": Counter(), "mutations": Counter(), "seconds": 0.0, "seed": SEED}


# ----------------------------------------------------------------------------- base models
def _mlp():
    rng = np.random.default_rng(0)
    b = GraphBuilder((1, 6), name="mlp")
    b.act(0.25, bits=4, signed=True)
    b.matmul(rng.normal(0, 0.3, (6, 5)), 0.05, 4, bias=rng.normal(0, 0.3, 5))
    b.relu()
    b.act(0.125, bits=3, signed=False)
    b.matmul(rng.normal(0, 0.3, (3, 5)), 0.05, 3, gemm=True, bias=rng.normal(0, 0.3, 3))
    b.mul(0.5)
    return b.model((1, 3))


def _cnn():
    rng = np.random.default_rng(1)
    b = GraphBuilder((1, 2, 6, 6), name="cnn")
    b.act(0.25, bits=4, signed=True)
    wq = b.quant(b.const(rng.normal(0, 0.3, (4, 2, 3, 3)), "w"), 0.05, 0.0, 3, True, True)
    b.cur = b.node("Conv", [b.cur, wq], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    b.batchnorm(rng.uniform(0.5, 1.5, 4), rng.normal(0, .3, 4), rng.normal(0, .3, 4), rng.uniform(.5, 1.5, 4))
    b.relu()
    b.act(0.2, bits=3, signed=False)
    b.cur = b.node("MaxPool", [b.cur], kernel_shape=[2, 2], strides=[2, 2])
    b.cur = b.node("Flatten", [b.cur], axis=1)
    b.matmul(rng.normal(0, 0.3, (36, 3)), 0.05, 4)
    return b.model((1, 3))


def _binary():
    rng = np.random.default_rng(2)
    b = GraphBuilder((1, 8), name="bnn")
    b.cur = b.bipolar("x", 0.5)
    b.matmul(rng.normal(0, 1, (8, 6)), 1.0, 1)
    b.batchnorm(rng.uniform(0.5, 1.5, 6), rng.normal(0, .3, 6), rng.normal(0, .3, 6), rng.uniform(.5, 1.5, 6))
    b.cur = b.bipolar(b.cur)
    b.matmul(rng.normal(0, 1, (6, 4)), 1.0, 1)
    return b.model((1, 4))


def _residual():
    rng = np.random.default_rng(3)
    b = GraphBuilder((1, 6), name="res")
    b.act(0.25, bits=4, signed=True)
    b.matmul(rng.normal(0, 0.3, (6, 5)), 0.05, 4)
    b.relu()
    h = b.act(0.125, bits=4, signed=False)
    b.matmul(rng.normal(0, 0.3, (5, 5)), 0.05, 3)
    y = b.act(0.125, bits=4, signed=True)
    b.cur = b.node("Add", [h, y])
    b.act(0.25, bits=4, signed=True)
    b.matmul(rng.normal(0, 0.3, (5, 3)), 0.05, 4)
    return b.model((1, 3))


def _export(module, shape):
    import torch

    import hwgen
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            hwgen.export_brevitas(module, torch.randn(1, *shape), path)
        return onnx.load(path)


def _brevitas_avgpool():
    """Brevitas export: Conv, BatchNorm, QuantReLU, TruncAvgPool2d (AveragePool + Trunc), Reshape, Gemm."""
    from models import make_cnn          # torch and brevitas load here, once per session
    spec = {"in": (2, 6, 6), "in_bits": 4, "layers": [
        {"type": "conv", "out": 4, "k": 3, "p": 1, "w": 3, "bn": True, "act": "relu", "a": 3},
        {"type": "avgpool", "k": 2, "s": 2, "bits": 5}, {"type": "flatten"},
        {"type": "fc", "out": 3, "w": 4, "act": None}]}
    return _export(make_cnn(spec, 1), spec["in"])


def _brevitas_concat():
    """Brevitas export: a fork, two convolutions joined by Concat, a shared QuantReLU, ArgMax."""
    from models import make_branchy
    model, shape = make_branchy("concat_cnn", 0)
    return _export(model, shape)


# name -> (builder, fps that the model meets, the lowered layers' names: what a folding file names, weight)
BASES = {"mlp": (_mlp, 1e6, ("fc0", "fc1"), 1.0),
         "cnn": (_cnn, 1e5, ("swg0", "conv0", "swg1", "pool0", "fc0"), 1.0),
         "binary": (_binary, 1e6, ("fc0", "fc1"), 1.0),
         "residual": (_residual, 1e6, ("fc0", "fc1", "add0", "fc2"), 1.0),
         "brevitas_avgpool": (_brevitas_avgpool, 1e5, ("swg0", "conv0", "swg1", "pool0", "fc0"), 0.6),
         "brevitas_concat": (_brevitas_concat, 2e4, ("swg0", "conv0", "conv1", "concat0", "swg1", "conv2", "fc0", "topk0"), 0.4)}


def _pick_base(rng):
    names = list(BASES)
    p = np.array([BASES[n][3] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]
_BASE_BYTES = {}


def base_model(name):
    if name not in _BASE_BYTES:
        _BASE_BYTES[name] = BASES[name][0]().SerializeToString()
    m = onnx.ModelProto()
    m.ParseFromString(_BASE_BYTES[name])
    return m


# ----------------------------------------------------------------------------- mutations
NAN, INF = float("nan"), float("inf")
BIT_WIDTHS = [0, -1, 17, 4.5, NAN, INF, -INF, 1, 2, 16, 2 ** 31, 1e30, -0.0]
SCALES = [NAN, INF, -INF, 0.0, -0.0, -0.5, 1e-45, 1e-30, 1e30, 3e38]
OTHER_OPS = ["Sigmoid", "Softmax", "Gather", "Loop", "If", "Foo", "", "Quant", "BipolarQuant", "Trunc",
             "MultiThreshold", "IntQuant", "Conv", "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Relu", "Clip",
             "MaxPool", "AveragePool", "GlobalAveragePool", "Reshape", "Flatten", "Transpose", "Concat", "ArgMax",
             "BatchNormalization", "Identity", "Max", "Min", "Squeeze", "Unsqueeze", "ReduceMean", "Dropout"]
EXTRA_ATTRS = {
    "group": [0, -1, 2, 4, 3], "dilations": [[2, 2], [0, 0], [1]], "auto_pad": ["SAME_UPPER", "VALID", "bogus", ""],
    "transA": [1, 2], "transB": [0, 1, -1], "alpha": [0.0, NAN, -1.0], "beta": [0.0, INF], "ceil_mode": [1],
    "axis": [0, 2, -1, 7], "keepdims": [0], "kernel_shape": [[0, 0], [7, 7], [1, 1, 1], [-1, 3]],
    "strides": [[0, 0], [-1, 1], [7, 7], [2]], "pads": [[-1, 0, 0, 0], [9, 9, 9, 9], [1, 1]],
    "signed": [2, -1], "narrow": [1, 5], "rounding_mode": ["FLOOR", "bogus", "", "half_even"],
    "epsilon": [-1.0, NAN, 0.0], "perm": [[0, 2, 1], [1, 0]], "count_include_pad": [1],
    "out_dtype": ["INT4", "FLOAT32", "bogus"], "bogus_attribute": [1, "x"],
}


def _tensor_names(m):
    names = [i.name for i in m.graph.input] + [i.name for i in m.graph.initializer]
    names += [o for n in m.graph.node for o in n.output]
    return names


def _init(m, name):
    for i in m.graph.initializer:
        if i.name == name:
            return i
    return None


def _set_init(m, name, value):
    """Replace (or add) the initializer ``name`` by ``value`` (a numpy array)."""
    t = numpy_helper.from_array(np.asarray(value), name)
    old = _init(m, name)
    if old is not None:
        old.CopyFrom(t)
    else:
        m.graph.initializer.append(t)


def _pick(rng, seq):
    seq = list(seq)
    return seq[int(rng.integers(len(seq)))]


def _quant_nodes(m):
    return [n for n in m.graph.node if n.op_type in ("Quant", "IntQuant", "BipolarQuant")]


def m_swap_op(m, rng):
    n = _pick(rng, m.graph.node)
    old, n.op_type = n.op_type, _pick(rng, OTHER_OPS)
    return f"swap_op {n.name}: {old} -> {n.op_type!r}"


def m_domain(m, rng):
    n = _pick(rng, m.graph.node)
    n.domain = _pick(rng, ["", "ai.onnx", "bogus.domain", "qonnx.custom_op.general", "finn.custom_op.general"])
    return f"domain {n.name} ({n.op_type}) -> {n.domain!r}"


def m_drop_attr(m, rng):
    nodes = [n for n in m.graph.node if n.attribute]
    n = _pick(rng, nodes)
    k = int(rng.integers(len(n.attribute)))
    name = n.attribute[k].name
    del n.attribute[k]
    return f"drop_attr {n.name} ({n.op_type}).{name}"


def _attr_value(a, rng):
    if a.type == onnx.AttributeProto.INT:
        return _pick(rng, [-1, 0, 1, 2, 3, 7, 2 ** 31, -(2 ** 40)])
    if a.type == onnx.AttributeProto.FLOAT:
        return _pick(rng, [NAN, INF, -1.0, 0.0, 1e30, 0.5])
    if a.type == onnx.AttributeProto.STRING:
        return _pick(rng, ["", "BOGUS", "round", "FLOOR", "NCHW", "\u00e9\u4e2d", "x" * 500])
    if a.type == onnx.AttributeProto.INTS:
        k = len(a.ints)
        return _pick(rng, [[], [0] * max(k, 1), [-1] * max(k, 1), [3] * (k + 1), [2 ** 31] * max(k, 1), [1]])
    return _pick(rng, [1, "x"])


def m_change_attr(m, rng):
    nodes = [n for n in m.graph.node if n.attribute]
    n = _pick(rng, nodes)
    a = _pick(rng, n.attribute)
    v = _attr_value(a, rng) if rng.random() < 0.8 else _pick(rng, [1, 1.5, "s", [1, 2]])   # or another type
    name = a.name
    n.attribute.remove(a)
    n.attribute.append(helper.make_attribute(name, v))
    return f"change_attr {n.name} ({n.op_type}).{name} = {str(v)[:40]!r}"


def m_add_attr(m, rng):
    n = _pick(rng, m.graph.node)
    name = _pick(rng, EXTRA_ATTRS)
    v = _pick(rng, EXTRA_ATTRS[name])
    for a in list(n.attribute):
        if a.name == name:
            n.attribute.remove(a)
    n.attribute.append(helper.make_attribute(name, v))
    return f"add_attr {n.name} ({n.op_type}).{name} = {v!r}"


def m_rewire(m, rng):
    n = _pick(rng, [n for n in m.graph.node if n.input])
    k = int(rng.integers(len(n.input)))
    later = [o for node in m.graph.node[list(m.graph.node).index(n):] for o in node.output]
    new = _pick(rng, _tensor_names(m) + ["", "nonexistent"] + later)
    old, n.input[k] = n.input[k], new
    return f"rewire {n.name} ({n.op_type}).input[{k}]: {old} -> {new!r}"


def m_drop_input(m, rng):
    n = _pick(rng, [n for n in m.graph.node if n.input])
    k = int(rng.integers(len(n.input)))
    old = n.input[k]
    del n.input[k]
    return f"drop_input {n.name} ({n.op_type}).input[{k}] ({old})"


def m_add_input(m, rng):
    n = _pick(rng, m.graph.node)
    new = _pick(rng, _tensor_names(m))
    n.input.append(new)
    return f"add_input {n.name} ({n.op_type}) + {new}"


def m_delete_node(m, rng):
    k = int(rng.integers(len(m.graph.node)))
    n = m.graph.node[k]
    desc = f"delete_node {n.name} ({n.op_type})"
    del m.graph.node[k]
    return desc


def m_duplicate_node(m, rng):
    k = int(rng.integers(len(m.graph.node)))
    c = onnx.NodeProto()
    c.CopyFrom(m.graph.node[k])
    m.graph.node.insert(k + 1, c)
    return f"duplicate_node {c.name} ({c.op_type})"


def m_shuffle_nodes(m, rng):
    nodes = list(m.graph.node)
    order = rng.permutation(len(nodes))
    del m.graph.node[:]
    m.graph.node.extend([nodes[i] for i in order])
    return "shuffle_nodes"


def m_dup_names(m, rng):
    what = _pick(rng, ["node", "output", "initializer", "input_as_init", "init_twice"])
    if what == "node":
        a, b = rng.choice(len(m.graph.node), 2, replace=False)
        m.graph.node[int(a)].name = m.graph.node[int(b)].name
        return f"dup_names node {m.graph.node[int(b)].name}"
    if what == "output":
        a, b = rng.choice(len(m.graph.node), 2, replace=False)
        m.graph.node[int(a)].output[0] = m.graph.node[int(b)].output[0]
        return f"dup_names output {m.graph.node[int(b)].output[0]}"
    inits = list(m.graph.initializer)
    if what == "initializer":
        a, b = rng.choice(len(inits), 2, replace=False)
        inits[int(a)].name = inits[int(b)].name
        return f"dup_names initializer {inits[int(b)].name}"
    if what == "init_twice":
        i = _pick(rng, inits)
        arr = numpy_helper.to_array(i)
        m.graph.initializer.append(numpy_helper.from_array((arr * 3 + 1).astype(arr.dtype), i.name))
        return f"dup_names initializer twice {i.name}"
    i = _pick(rng, inits)
    m.graph.input[0].name = i.name
    return f"dup_names graph input named as initializer {i.name}"


def m_empty(m, rng):
    what = _pick(rng, ["nodes", "initializers", "outputs", "inputs", "all_but_first"])
    if what == "nodes":
        del m.graph.node[:]
    elif what == "initializers":
        del m.graph.initializer[:]
    elif what == "outputs":
        del m.graph.output[:]
    elif what == "inputs":
        del m.graph.input[:]
    else:
        del m.graph.node[1:]
    return f"empty {what}"


def _new_shape(shape, rng):
    shape = list(shape)
    choice = int(rng.integers(7))
    if choice == 0:
        return []
    if choice == 1:
        return shape + [1]
    if choice == 2:
        return shape[:-1] if shape else [2]
    if choice == 3:
        return shape[::-1]
    if choice == 4:
        return [0] + shape[1:]
    if choice == 5:
        return [int(d) + 1 for d in shape] or [3]
    return [1] + shape


def m_init_shape(m, rng):
    i = _pick(rng, m.graph.initializer)
    arr = numpy_helper.to_array(i)
    shape = _new_shape(arr.shape, rng)
    n = int(np.prod(shape)) if shape else 1
    flat = np.resize(arr.ravel(), n) if arr.size else np.zeros(n, arr.dtype)
    _set_init(m, i.name, flat.reshape(shape).astype(arr.dtype))
    return f"init_shape {i.name}: {arr.shape} -> {tuple(shape)}"


def m_init_dtype(m, rng):
    i = _pick(rng, m.graph.initializer)
    arr = numpy_helper.to_array(i)
    dt = _pick(rng, ["int8", "uint8", "int32", "int64", "float16", "float64", "bool", "str"])
    if dt == "str":
        new = np.array([str(v) for v in arr.ravel()], dtype=object).reshape(arr.shape)
    else:
        with np.errstate(all="ignore"):
            new = arr.astype(dt)
    _set_init(m, i.name, new)
    return f"init_dtype {i.name}: {arr.dtype} -> {dt}"


def m_init_values(m, rng):
    i = _pick(rng, m.graph.initializer)
    arr = numpy_helper.to_array(i).astype(np.float32).copy()
    v = _pick(rng, [NAN, INF, -INF, 1e30, -1e30, 0.0, 1e-40])
    if arr.size:
        idx = rng.integers(arr.size, size=max(1, arr.size // int(rng.integers(1, 4))))
        arr.flat[idx] = v
    _set_init(m, i.name, arr)
    return f"init_values {i.name}: some = {v}"


def m_bit_width(m, rng):
    q = [n for n in m.graph.node if n.op_type in ("Quant", "IntQuant") and len(n.input) > 3]
    n = _pick(rng, q)
    v = _pick(rng, BIT_WIDTHS)
    shape = _pick(rng, [(), (), (), (1,), (2,)])
    _set_init(m, n.input[3], np.full(shape, v, dtype=np.float32))
    return f"bit_width {n.name} = {v} shape {shape}"


def m_scale(m, rng):
    n = _pick(rng, _quant_nodes(m))
    v = _pick(rng, SCALES)
    arr = np.array(v, dtype=np.float32)
    if rng.random() < 0.3:               # per-channel, possibly of a wrong length, one value bad
        k = int(rng.integers(1, 9))
        arr = np.full((k,), 0.1, dtype=np.float32)
        arr[int(rng.integers(k))] = v
    _set_init(m, n.input[1], arr)
    return f"scale {n.name} = {arr.tolist()}"


def m_zero_point(m, rng):
    q = [n for n in m.graph.node if n.op_type in ("Quant", "IntQuant") and len(n.input) > 2]
    n = _pick(rng, q)
    v = _pick(rng, [NAN, INF, 0.5, 1e9, -3.0, 2.0, 7.0])
    _set_init(m, n.input[2], np.array(v, dtype=np.float32))
    return f"zero_point {n.name} = {v}"


def _io_shape_mutation(vi, rng):
    tt = vi.type.tensor_type
    what = _pick(rng, ["dim_zero", "dim_neg", "dim_big", "add_dim", "drop_dim", "symbolic", "elem_type", "no_shape"])
    dims = tt.shape.dim
    if what == "elem_type":
        tt.elem_type = _pick(rng, [TensorProto.INT8, TensorProto.DOUBLE, TensorProto.STRING, TensorProto.BOOL, 0])
    elif what == "no_shape":
        tt.ClearField("shape")
    elif what == "add_dim":
        dims.add().dim_value = int(rng.integers(1, 4))
    elif what == "drop_dim" and len(dims):
        del dims[len(dims) - 1]
    elif len(dims):
        d = dims[int(rng.integers(len(dims)))]
        if what == "symbolic":
            d.dim_param = "N"
        else:
            d.dim_value = {"dim_zero": 0, "dim_neg": -1, "dim_big": 100000}[what]
    return what


def m_input_shape(m, rng):
    return f"input_shape {_io_shape_mutation(m.graph.input[0], rng)}"


def m_output_shape(m, rng):
    if rng.random() < 0.3:
        m.graph.output[0].name = _pick(rng, _tensor_names(m) + ["nonexistent"])
        return f"output renamed {m.graph.output[0].name}"
    return f"output_shape {_io_shape_mutation(m.graph.output[0], rng)}"


def m_opset(m, rng):
    what = _pick(rng, ["default", "drop", "ir_version"])
    if what == "drop":
        del m.opset_import[:]
        return "opset dropped"
    if what == "ir_version":
        m.ir_version = _pick(rng, [0, 1, 3, 100])
        return f"ir_version {m.ir_version}"
    for o in m.opset_import:
        if o.domain == "":
            o.version = _pick(rng, [0, 1, 7, 9, 99])
            return f"opset {o.version}"
    return "opset (none)"


def m_quant_attr(m, rng):
    n = _pick(rng, _quant_nodes(m))
    name = _pick(rng, ["signed", "narrow", "rounding_mode"])
    v = _pick(rng, {"signed": [0, 1, 2, -1], "narrow": [0, 1, 3],
                    "rounding_mode": ["ROUND", "FLOOR", "CEIL", "HALF_UP", "bogus", "", "round"]}[name])
    for a in list(n.attribute):
        if a.name == name:
            n.attribute.remove(a)
    n.attribute.append(helper.make_attribute(name, v))
    return f"quant_attr {n.name}.{name} = {v!r}"


MODEL_MUTATIONS = {
    "swap_op": m_swap_op, "domain": m_domain, "drop_attr": m_drop_attr, "change_attr": m_change_attr,
    "add_attr": m_add_attr, "rewire": m_rewire, "drop_input": m_drop_input, "add_input": m_add_input,
    "delete_node": m_delete_node, "duplicate_node": m_duplicate_node, "shuffle_nodes": m_shuffle_nodes,
    "dup_names": m_dup_names, "empty": m_empty, "init_shape": m_init_shape, "init_dtype": m_init_dtype,
    "init_values": m_init_values, "bit_width": m_bit_width, "scale": m_scale, "zero_point": m_zero_point,
    "input_shape": m_input_shape, "output_shape": m_output_shape, "opset": m_opset, "quant_attr": m_quant_attr,
}
# bit widths, scales and values: the checks that matter most for the numerics, drawn more often
WEIGHTS = {k: 1.0 for k in MODEL_MUTATIONS}
WEIGHTS.update(bit_width=2.5, scale=2.5, zero_point=1.5, init_values=1.5, change_attr=2.0, swap_op=1.5)


def f_truncate(data, rng):
    k = int(rng.integers(0, len(data)))
    return data[:k], f"truncate to {k} of {len(data)} bytes"


def f_random(data, rng):
    k = int(rng.integers(0, 300))
    return rng.bytes(k), f"random bytes ({k})"


def f_flip(data, rng):
    b = bytearray(data)
    k = int(rng.integers(1, 8))
    for i in rng.integers(0, len(b), size=k):
        b[int(i)] = int(rng.integers(256))
    return bytes(b), f"flip {k} bytes"


def f_text(data, rng):
    return _pick(rng, [b"", b"{}", b"not an onnx file\n", "\u00e9t\u00e9".encode(), b"\x00" * 64]), "text instead of ONNX"


FILE_MUTATIONS = {"truncate": f_truncate, "random_bytes": f_random, "flip_bytes": f_flip, "text": f_text}


def mutate(base, rng):
    """(model bytes, ModelProto or None when the bytes are not a model, description)."""
    m = base_model(base)
    descs = []
    if rng.random() < 0.15:
        name = _pick(rng, FILE_MUTATIONS)
        data, d = FILE_MUTATIONS[name](m.SerializeToString(), rng)
        SUMMARY["mutations"][name] += 1
        return data, None, [d]
    names = list(MODEL_MUTATIONS)
    p = np.array([WEIGHTS[k] for k in names])
    for _ in range(int(rng.choice([1, 1, 1, 2, 3]))):
        name = names[int(rng.choice(len(names), p=p / p.sum()))]
        try:
            descs.append(MODEL_MUTATIONS[name](m, rng))
        except (ValueError, IndexError):        # nothing to mutate that way (e.g. no node left)
            continue
        SUMMARY["mutations"][name] += 1
    return m.SerializeToString(), m, descs


# ----------------------------------------------------------------------------- folding
FOLD_VALUES = [0, -1, 1, 2, 3, 4, 5, 6, 8, 1.5, 2.0, "4", True, False, None, [4], {"pe": 1}, 2 ** 40, 1e300,
               NAN, INF]
FOLD_KEYS = ["pe", "simd", "pe", "simd", "mem_style", "pipeline", "bogus", "", "PE"]
MEM_STYLES = ["auto", "distributed", "block", "ultra", "", 3, None, ["block"]]
PIPELINES = ["auto", "none", 0, 1, 2, -1, 2 ** 40, 1.5, "3"]


_LAYER_DIMS = {}


def layer_dims(base):
    """layer name -> {folding key: the size it must divide} of the lowered base model."""
    if base not in _LAYER_DIMS:
        import hwgen
        from hwgen.lower import lower
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            g = lower(hwgen.load(base_model(base)))
        dims = {}
        for l in g.layers:
            sizes = {"pe": getattr(l, "mh", None) or getattr(l, "channels", None),
                     "simd": getattr(l, "mw", None) or getattr(l, "channels", None)}
            dims[l.name] = {k: sizes[k] for k in (l.folding or {}) if sizes.get(k)}
        _LAYER_DIMS[base] = dims
    return _LAYER_DIMS[base]


def plausible_folding(base, rng):
    """PE/SIMD mostly dividing their layer's sizes (so that many such builds succeed), sometimes not."""
    doc = {}
    for name, sizes in layer_dims(base).items():
        if rng.random() < 0.5:
            continue
        params = {}
        for k, n in sizes.items():
            divs = [d for d in range(1, n + 1) if n % d == 0]
            params[k] = _pick(rng, divs) if rng.random() < 0.85 else int(rng.integers(1, 2 * n + 2))
        if rng.random() < 0.3:
            params["mem_style"] = _pick(rng, ["auto", "distributed", "block"])
        doc[name] = params
    return doc


def random_folding(base, rng):
    """A folding document: a dict, some other JSON value, or (as text) not JSON at all."""
    layers = BASES[base][2]
    r = rng.random()
    if r > 0.6:
        return plausible_folding(base, rng)
    if r < 0.08:
        return _pick(rng, ["", "{", "not json", "[1, 2", "{'fc0': {'pe': 2}}", "\x00\xff", "{\"fc0\": {\"pe\": 2},}",
                           "{\"fc0\": " * 200])
    if r < 0.15:
        return _pick(rng, [[], [1, 2], 3, "fc0", None, True, {"fc0": 4}, {"fc0": [2]}, {"fc0": None},
                           {"fc0": "pe=2"}, {"a": {"b": {"c": {}}}}])
    doc = {}
    for _ in range(int(rng.integers(1, 4))):
        name = _pick(rng, list(layers) * 3 + ["nonexistent", "", "FC0", "fifo0", "dwc0", "\u00e9"])
        params = {}
        for _ in range(int(rng.integers(0, 4))):
            k = _pick(rng, FOLD_KEYS)
            if k == "mem_style":
                params[k] = _pick(rng, MEM_STYLES)
            elif k == "pipeline":
                params[k] = _pick(rng, PIPELINES)
            else:
                params[k] = _pick(rng, FOLD_VALUES)
        doc[name] = params
    return doc


# ----------------------------------------------------------------------------- the oracle
class CaseTimeout(BaseException):
    """Raised by the per-case alarm (a BaseException, so no ``except Exception`` in hwgen swallows it)."""


@contextlib.contextmanager
def time_limit(seconds):
    def on_alarm(signum, frame):
        raise CaseTimeout(f"no result after {seconds:g} s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def snapshot(root, skip=None):
    """Every file and directory under ``root`` (except ``skip``) -> (kind, size, mtime, sha1)."""
    out = {}
    for d, dirs, files in os.walk(root):
        if skip is not None and os.path.abspath(d).startswith(skip):
            dirs[:] = []
            continue
        for name in dirs:
            p = os.path.join(d, name)
            if skip is None or os.path.abspath(p) != skip:
                out[os.path.relpath(p, root)] = ("dir",)
        for name in files:
            p = os.path.join(d, name)
            if skip is not None and os.path.abspath(p) == skip:
                continue
            st = os.lstat(p)
            with open(p, "rb") as f:
                h = hashlib.sha1(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = ("file", st.st_size, st.st_mtime_ns, h)
    return out


@contextlib.contextmanager
def sandbox():
    """A fresh working directory holding ``tempfile``'s directory too; restores both afterwards."""
    root = tempfile.mkdtemp(prefix="hwgen-front-door-")
    tmp = os.path.join(root, "systmp")
    os.mkdir(tmp)
    cwd, old_tmp = os.getcwd(), tempfile.tempdir
    os.chdir(root)
    tempfile.tempdir = tmp
    try:
        yield root
    finally:
        tempfile.tempdir = old_tmp
        os.chdir(cwd)
        shutil.rmtree(root, ignore_errors=True)


class Case:
    """One fuzz case: what to run, and its description for the failure report."""

    def __init__(self, front, seed, index):
        self.front, self.seed, self.index = front, seed, index
        self.id = f"{front}:{seed}:{index}"
        self.rng = np.random.default_rng([seed, index, sum(map(ord, front))])
        self.desc = []


# ----------------------------------------------------------------------------- float64 tie-breaker
ROUNDING = {"ROUND": np.round, "FLOOR": np.floor, "CEIL": np.ceil, "DOWN": np.trunc,
            "UP": lambda t: np.sign(t) * np.ceil(np.abs(t)),
            "HALF_UP": lambda t: np.sign(t) * np.floor(np.abs(t) + 0.5),
            "HALF_DOWN": lambda t: np.sign(t) * np.ceil(np.abs(t) - 0.5)}


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _windows(x, kernel, stride, pads, fill):
    """(N, C, OH, OW, KH, KW) windows of an NCHW array."""
    kh, kw = kernel
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=fill)
    oh, ow = (x.shape[2] - kh) // stride[0] + 1, (x.shape[3] - kw) // stride[1] + 1
    out = np.empty(x.shape[:2] + (oh, ow, kh, kw), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
    return out


def execute64(model, x):
    """A strict float64 interpreter of the ops of the base models (the tie-breaker of ARCHITECTURE §2:
    QONNX computes in float32).  Anything outside the plain forms it knows raises NotImplementedError."""
    env = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    env[model.graph.input[0].name] = np.asarray(x, dtype=np.float64)
    for node in model.graph.node:
        a, at, op = [env[i] for i in node.input if i], _attrs(node), node.op_type
        known = {"Quant": {"signed", "narrow", "rounding_mode"}, "Gemm": {"transA", "transB", "alpha", "beta"},
                 "BatchNormalization": {"epsilon", "momentum"}, "Conv": {"kernel_shape", "pads", "strides", "group", "dilations"},
                 "MaxPool": {"kernel_shape", "pads", "strides"}, "Flatten": {"axis"},
                 "AveragePool": {"kernel_shape", "pads", "strides", "count_include_pad", "ceil_mode"},
                 "Trunc": {"signed", "narrow", "rounding_mode"}, "Concat": {"axis"}, "ArgMax": {"axis", "keepdims", "select_last_index"},
                 "Reshape": {"allowzero"}}.get(op, set())
        if op in ("Conv", "MaxPool", "AveragePool"):
            known = known | {"auto_pad"}
        if op in ("Quant", "BipolarQuant", "Trunc"):     # QONNX's custom ops ignore attributes they do not know
            at = {k: v for k, v in at.items() if k in known}
        if set(at) - known or at.get("auto_pad", b"NOTSET") != b"NOTSET":
            raise NotImplementedError(f"{op} with {sorted(set(at) - known)} {at.get('auto_pad')}")
        if op == "Quant":
            v, sc, z, b = a
            mode = at.get("rounding_mode", b"ROUND").decode().upper()
            if mode not in ROUNDING or b.size != 1 or b != np.round(b) or b < 1:
                raise NotImplementedError(f"Quant {mode} {b}")
            b, signed, narrow = int(b), at.get("signed", 1), at.get("narrow", 0)
            lo = -(2 ** (b - 1)) + narrow if signed else 0
            hi = 2 ** (b - 1) - 1 if signed else 2 ** b - 1 - narrow
            y = (np.clip(ROUNDING[mode](v / sc + z), lo, hi) - z) * sc
        elif op == "BipolarQuant":
            y = np.where(a[0] >= 0, 1.0, -1.0) * a[1]
        elif op == "MatMul":
            y = a[0] @ a[1]
        elif op == "Gemm":
            A = a[0].T if at.get("transA", 0) else a[0]
            B = a[1].T if at.get("transB", 0) else a[1]
            y = at.get("alpha", 1.0) * (A @ B) + (at.get("beta", 1.0) * a[2] if len(a) > 2 else 0)
        elif op in ("Add", "Sub", "Mul", "Div"):
            y = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](a[0], a[1])
        elif op == "Relu":
            y = np.maximum(a[0], 0)
        elif op == "Identity":
            y = a[0]
        elif op == "BatchNormalization":
            v, g, be, mu, var = a
            c = (1, -1) + (1,) * (v.ndim - 2)
            y = (v - mu.reshape(c)) / np.sqrt(var.reshape(c) + at.get("epsilon", 1e-5)) * g.reshape(c) + be.reshape(c)
        elif op == "Conv":
            v, w = a[0], a[1]
            if at.get("dilations", [1, 1]) != [1, 1] or at.get("group", 1) != 1 or len(at.get("kernel_shape", w.shape[2:])) != 2:
                raise NotImplementedError("Conv")
            win = _windows(v, list(w.shape[2:]), at.get("strides", [1, 1]), at.get("pads", [0] * 4), 0.0)
            y = np.einsum("nchwij,ocij->nohw", win, w) + (a[2].reshape(1, -1, 1, 1) if len(a) > 2 else 0)
        elif op == "MaxPool":
            y = _windows(a[0], at["kernel_shape"], at.get("strides", [1, 1]), at.get("pads", [0] * 4), -np.inf).max(axis=(4, 5))
        elif op == "AveragePool":
            if any(at.get("pads", [0])) or at.get("ceil_mode", 0):
                raise NotImplementedError("AveragePool with padding")
            y = _windows(a[0], at["kernel_shape"], at.get("strides", [1, 1]), [0] * 4, 0.0).mean(axis=(4, 5))
        elif op == "Trunc":                  # QONNX Trunc v1 (5 inputs) and v2 (6 inputs)
            mode = at.get("rounding_mode", b"FLOOR").decode().upper()
            if mode not in ROUNDING:
                raise NotImplementedError(f"Trunc {mode}")
            v, sc, z, ibw = a[:4]
            t = np.round(v / sc + z)
            if len(a) == 5:
                ts = 2.0 ** (ibw - a[4])
                y = (ROUNDING[mode](t / ts) - z) * sc
            else:
                osc, obw = a[4], int(a[5])
                ts = 2.0 ** np.round(np.log2(osc / sc))
                signed, narrow = at.get("signed", 1), at.get("narrow", 0)
                lo = -(2 ** (obw - 1)) + narrow if signed else 0
                hi = 2 ** (obw - 1) - 1 if signed else 2 ** obw - 1 - narrow
                y = (ROUNDING[mode](np.clip(t / ts, lo, hi)) - z / ts) * osc
        elif op == "Reshape":
            shape = [int(d) for d in a[1]]
            shape = [a[0].shape[i] if d == 0 and not at.get("allowzero", 0) else d for i, d in enumerate(shape)]
            y = a[0].reshape(shape)
        elif op == "Concat":
            y = np.concatenate(a, axis=at["axis"])
        elif op == "ArgMax":
            if at.get("select_last_index", 0):
                raise NotImplementedError("ArgMax select_last_index")
            y = np.argmax(a[0], axis=at.get("axis", 0))
            y = np.expand_dims(y, at.get("axis", 0)) if at.get("keepdims", 1) else y
        elif op == "Flatten":
            ax = at.get("axis", 1)
            y = a[0].reshape(int(np.prod(a[0].shape[:ax])), -1)
        else:
            raise NotImplementedError(op)
        env[node.output[0]] = y
    return env


def _ref_check(model, graph, rng):
    """IR (with head and tail) against QONNX's execute_onnx on the same (mutated) model.

    Returns a string naming the disagreement, "undefined" when QONNX cannot run the model, or None."""
    from qonnx.core.onnx_exec import execute_onnx

    import hwgen
    from hwgen.host import apply_head, apply_tail, random_inputs
    x = random_inputs(graph.head, 8, rng).astype(np.float32)
    ir = apply_tail(graph.tail, graph.execute(apply_head(graph.head, x)))
    try:
        w = hwgen.load(model)
        ref = np.concatenate([execute_onnx(w, {graph.head["input_name"]: x[i:i + 1]})[graph.tail["output_name"]]
                              for i in range(len(x))])
    except Exception:  # noqa: BLE001 - the reference is undefined for this model (QONNX cannot run it)
        return "undefined"
    ref = np.asarray(ref, dtype=np.float64).reshape(ir.shape) if ref.size == ir.size else ref
    if ref.shape != ir.shape:
        return f"IR output shape {ir.shape} != QONNX output shape {ref.shape}"
    tol = 1e-5 * max(1.0, float(np.nanmax(np.abs(ref))) if np.isfinite(ref).any() else 1.0)
    bad = np.nonzero(~np.all(np.isclose(ir, ref, rtol=0, atol=tol, equal_nan=True), axis=tuple(range(1, ir.ndim))))[0]
    if not len(bad):
        return None
    try:                                     # a float32 rounding tie? float64 must agree with the IR
        r64 = np.concatenate([execute64(w.model, x[i:i + 1])[graph.tail["output_name"]] for i in bad])
    except Exception:  # noqa: BLE001 - ops the float64 interpreter does not know
        return f"frames {bad.tolist()} differ from QONNX (max {np.nanmax(np.abs(ir[bad] - ref[bad])):g}) and no float64 reference"
    if np.allclose(ir[bad], r64.reshape(ir[bad].shape), rtol=0, atol=tol):
        SUMMARY["outcomes"]["float32 ties (float64 agrees)"] += 1
        return None
    return f"frames {bad.tolist()} differ from QONNX and from float64 (max {np.nanmax(np.abs(ir[bad] - r64)):g})"


def check_case(case, run, model=None, check_ref=False):
    """Run ``run(root) -> (kind, payload)`` in a sandbox; return (outcome, problem or None).

    ``run`` writes its inputs under the sandbox root and returns ("cli", (code, stdout, stderr, quiet, out))
    or ("api", (exception or None, Build or None, out))."""
    with sandbox() as root:
        problems = []
        try:
            with time_limit(TIME_LIMIT):
                kind, payload, before = run(root)
        except CaseTimeout as e:
            return "hang", f"hang: {e}"
        except Exception as e:  # noqa: BLE001 - the oracle reports any escape from hwgen
            return "crash", "crash: " + "".join(traceback.format_exception(type(e), e, e.__traceback__))[-3000:]
        out = payload[-1]
        after = snapshot(root, skip=os.path.abspath(out))
        touched = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if touched:
            problems.append(f"touched outside the output path: {touched[:6]}")
        if kind == "cli":
            code, stdout, stderr, quiet, _ = payload
            if code == 2:
                lines = stderr.splitlines()
                errs = [l for l in lines if l.startswith("hwgen: error:")]
                others = [l for l in lines if not l.startswith("hwgen: error:") and not (not quiet and l.startswith("[hwgen]"))]
                if len(errs) != 1:
                    problems.append(f"exit 2 with {len(errs)} error lines: {stderr[-2000:]!r}")
                elif len(errs[0]) >= MAX_LINE:
                    problems.append(f"error line of {len(errs[0])} characters: {errs[0][:400]!r}…")
                if others:
                    problems.append(f"stderr holds more than the error line: {others[:5]!r}")
                if "Traceback" in stderr:
                    problems.append("a traceback on stderr")
                if os.path.exists(out):
                    problems.append(f"a failed build left {out}")
                outcome = "error"
            elif code == 0:
                outcome = "build"
            else:
                problems.append(f"exit code {code!r}: {stderr[-2000:]!r}")
                outcome = "bad exit"
            if code == 0 and "Traceback" in stderr:
                problems.append("a traceback on stderr")
            build = None
        else:
            exc, build, _ = payload
            if exc is not None:
                msg = str(exc)
                if "\n" in msg or len(msg) + len("hwgen: error: ") >= MAX_LINE:
                    problems.append(f"error message not one short line ({len(msg)} characters): {msg[:400]!r}")
                if os.path.exists(out):
                    problems.append(f"a failed build left {out}")
                outcome = "error"
            else:
                outcome = "build"
        if outcome == "build":
            for f in ("manifest.json", os.path.join("rtl", "hwgen_top.v")):
                if not os.path.isfile(os.path.join(out, f)):
                    problems.append(f"the build has no {f}")
            if not problems and check_ref and model is not None:
                from hwgen.dataflow.graph import DataflowGraph
                graph = build.graph if build is not None else DataflowGraph.load(out)
                with time_limit(TIME_LIMIT):
                    why = _ref_check(model, graph, np.random.default_rng(case.seed))
                if why == "undefined":
                    SUMMARY["outcomes"]["build, reference undefined"] += 1
                elif why:
                    problems.append(f"wrong build: {why}")
                else:
                    SUMMARY["outcomes"]["build, checked against QONNX"] += 1
        return outcome, ("; ".join(problems) or None)


@contextlib.contextmanager
def user_warnings(err):
    """Warnings as a user of the command line sees them (Python's default filters: not the deprecations), written
    to ``err`` as Python would; pytest's own capture of warnings would otherwise hide them from the oracle."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        for cat in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", cat)
        yield
    for w in caught:
        err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, ""))


def run_cli(argv):
    from hwgen.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), user_warnings(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def run_api(*args, **kw):
    import hwgen
    from hwgen.errors import HwgenError
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return None, hwgen.build(*args, **kw)
    except HwgenError as e:
        return e, None


# ----------------------------------------------------------------------------- fronts
def case_onnx(case, via):
    """A mutated model through the CLI (``via="cli"``) or the API (a path or a ModelProto)."""
    rng = case.rng
    base = _pick_base(rng)
    data, model, descs = mutate(base, rng)
    fps = BASES[base][1]
    case.desc = [f"base {base}"] + descs
    quiet = bool(rng.random() < 0.7)
    as_proto = via == "api" and model is not None and rng.random() < 0.4
    case.desc.append(f"{via}{' (ModelProto)' if as_proto else ''}{'' if quiet else ' with progress'}")

    def run(root):
        path = os.path.join(root, "model.onnx")
        with open(path, "wb") as f:
            f.write(data)
        out = os.path.join(root, "out")
        before = snapshot(root)
        if via == "cli":
            code, so, se = run_cli(["build", "model.onnx", "-o", "out", "--fps", fps] + (["-q"] if quiet else []))
            return "cli", (code, so, se, quiet, out), before
        exc, b = run_api(model if as_proto else path, out, fps=fps, progress=not quiet)
        return "api", (exc, b, out), before

    check_ref = model is not None and rng.random() < 0.5
    return check_case(case, run, model=model, check_ref=check_ref)


def case_folding(case, via):
    rng = case.rng
    base = _pick_base(rng)
    doc = random_folding(base, rng)
    model = base_model(base)
    fps = BASES[base][1] if rng.random() < 0.5 else None
    case.desc = [f"base {base}", f"folding {json.dumps(doc)[:300] if not isinstance(doc, str) else repr(doc[:60])}",
                 f"fps {fps}", via]

    def run(root):
        path = os.path.join(root, "model.onnx")
        onnx.save(model, path)
        out = os.path.join(root, "out")
        fpath = os.path.join(root, "folding.json")
        with open(fpath, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        before = snapshot(root)
        if via == "cli":
            code, so, se = run_cli(["build", "model.onnx", "-o", "out", "--folding", "folding.json", "-q"]
                                   + ([] if fps is None else ["--fps", fps]))
            return "cli", (code, so, se, True, out), before
        folding = fpath if isinstance(doc, str) or rng.random() < 0.3 else doc
        exc, b = run_api(path, out, folding=folding, fps=fps, progress=False)
        return "api", (exc, b, out), before

    return check_case(case, run, model=model, check_ref=rng.random() < 0.3)


# front -> (its case, cases per run): 200 in the default run; test_front_door_more (slow) runs 400 more
FRONTS = {"cli-onnx": (lambda c: case_onnx(c, "cli"), 75),
          "api-onnx": (lambda c: case_onnx(c, "api"), 65),
          "cli-folding": (lambda c: case_folding(c, "cli"), 30),
          "api-folding": (lambda c: case_folding(c, "api"), 30)}


def run_front(front, n, seed=SEED, indices=None):
    fn = FRONTS[front][0]
    failures = []
    t0 = time.perf_counter()
    for i in (indices if indices is not None else range(n)):
        case = Case(front, seed, i)
        try:
            outcome, problem = fn(case)
        except Exception as e:  # noqa: BLE001 - a defect of the fuzzer itself: report it as the case's failure
            outcome, problem = "fuzzer error", "".join(traceback.format_exception(type(e), e, e.__traceback__))[-2000:]
        SUMMARY["cases"] += 1
        SUMMARY["outcomes"][outcome] += 1
        if problem:
            SUMMARY["outcomes"]["FAILED"] += 1
            failures.append(f"case {case.id} [{'; '.join(case.desc)}]: {problem}\n"
                            f"    replay: HWGEN_FRONT_DOOR_CASE={case.id} pytest tests/test_front_door.py -s")
    SUMMARY["seconds"] += time.perf_counter() - t0
    return failures


def _only(front):
    if ONLY is None:
        return None
    f, s, i = ONLY.rsplit(":", 2)
    return (int(s), [int(i)]) if f == front else (None, [])


@pytest.mark.parametrize("front", sorted(FRONTS))
def test_front_door(front, record_property):
    before = {k: Counter(SUMMARY[k]) for k in ("outcomes", "mutations")}
    cases, seconds = SUMMARY["cases"], SUMMARY["seconds"]
    try:
        _front_door(front)
    finally:     # for the session summary (conftest.py), from the test reports: this works under xdist too
        record_property("front_door", json.dumps({
            "front": front, "seed": SEED if ONLY is None else ONLY, "cases": SUMMARY["cases"] - cases, "seconds": SUMMARY["seconds"] - seconds,
            **{k: dict(SUMMARY[k] - before[k]) for k in before}}))


@pytest.mark.slow
@pytest.mark.parametrize("front", sorted(FRONTS))
def test_front_door_more(front):
    """Twice the default run's cases, of the next seed."""
    failures = run_front(front, 2 * FRONTS[front][1], seed=SEED + 1)
    assert not failures, f"{len(failures)} case(s) of {front} failed (seed {SEED + 1}):\n" + "\n".join(failures[:30])


def _front_door(front):
    only = _only(front)
    if only is not None:
        seed, indices = only
        if not indices:
            pytest.skip(f"HWGEN_FRONT_DOOR_CASE={ONLY} names another front")
        failures = run_front(front, None, seed=seed, indices=indices)
    else:
        failures = run_front(front, CASES or FRONTS[front][1])
    print(f"front door {front}: seed {SEED}, outcomes so far {dict(SUMMARY['outcomes'])}")
    assert not failures, f"{len(failures)} case(s) of {front} failed (seed {SEED}):\n" + "\n".join(failures[:30])


# ----------------------------------------------------------------------------- the oracle can fail
def test_oracle_flags_planted_faults(monkeypatch):
    """Each kind of defect the fuzzer looks for, planted once, is reported (a test that cannot fail is a defect)."""
    import hwgen.lower as lowering
    import hwgen.lower.linear as linear
    from hwgen.dataflow.mvau import MVAU

    def one(front="cli-onnx", index=0, base="mlp"):
        case = Case(front, 12345, index)

        def run(root):
            path = os.path.join(root, "model.onnx")
            onnx.save(base_model(base), path)
            before = snapshot(root)
            code, so, se = run_cli(["build", "model.onnx", "-o", "out", "-q", "--fps", BASES[base][1]])
            return "cli", (code, so, se, True, os.path.join(root, "out")), before
        return check_case(case, run, model=base_model(base), check_ref=True)

    monkeypatch.setitem(SUMMARY, "outcomes", Counter())              # keep the fuzz run's counts apart
    assert one() == ("build", None)                                  # the clean model builds and checks
    assert SUMMARY["outcomes"]["build, checked against QONNX"] == 1
    real = linear.lower_matmul

    def crash(ctx, node):
        raise ZeroDivisionError("planted")
    monkeypatch.setattr(lowering, "HANDLERS", dict(lowering.HANDLERS, MatMul=crash, Gemm=crash))
    outcome, problem = one()
    assert outcome == "crash" and "ZeroDivisionError: planted" in problem
    monkeypatch.undo()

    def litter(ctx, node):
        open("stray.txt", "w").close()                               # in the working directory
        return real(ctx, node)
    monkeypatch.setattr(lowering, "HANDLERS", dict(lowering.HANDLERS, MatMul=litter, Gemm=litter))
    outcome, problem = one()
    assert outcome == "build" and "touched outside the output path: ['stray.txt']" in problem
    monkeypatch.undo()

    def long_error(ctx, node):
        from hwgen.errors import UnsupportedError
        raise UnsupportedError("x" * 400)
    monkeypatch.setattr(lowering, "HANDLERS", dict(lowering.HANDLERS, MatMul=long_error, Gemm=long_error))
    outcome, problem = one()
    assert outcome == "error" and "error line of 4" in problem
    monkeypatch.undo()

    def warn_then_fail(ctx, node):
        import warnings

        from hwgen.errors import UnsupportedError
        warnings.warn("planted", RuntimeWarning)
        raise UnsupportedError("planted")
    monkeypatch.setattr(lowering, "HANDLERS", dict(lowering.HANDLERS, MatMul=warn_then_fail, Gemm=warn_then_fail))
    outcome, problem = one()
    assert outcome == "error" and "stderr holds more than the error line" in problem and "RuntimeWarning: planted" in problem
    monkeypatch.undo()

    def hang(ctx, node):
        time.sleep(60)
    monkeypatch.setattr(lowering, "HANDLERS", dict(lowering.HANDLERS, MatMul=hang, Gemm=hang))
    monkeypatch.setattr(sys.modules[__name__], "TIME_LIMIT", 1.0)
    outcome, problem = one()
    assert outcome == "hang" and problem.startswith("hang: no result after 1 s")
    monkeypatch.undo()

    real_execute = MVAU.execute
    monkeypatch.setattr(MVAU, "execute", lambda self, x: real_execute(self, x) + (self.name == "fc1"))
    outcome, problem = one()
    assert outcome == "build" and problem.startswith("wrong build: frames [0, 1, 2, 3, 4, 5, 6, 7] differ from QONNX"), problem


# ----------------------------------------------------------------------------- regressions: what the fuzzer found
def _node(m, name):
    return next(n for n in m.graph.node if n.name == name)


def _set_attr(n, name, value):
    for a in list(n.attribute):
        if a.name == name:
            n.attribute.remove(a)
    n.attribute.append(helper.make_attribute(name, value))


def _bad_build(tmp_path, base, mutate_fn, folding_text=None):
    """Build ``base`` mutated by ``mutate_fn`` through the CLI: the one error line (the out dir must not exist)."""
    m = base_model(base)
    mutate_fn(m)
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    argv = ["build", p, "-o", tmp_path / "out", "-q", "--fps", BASES[base][1]]
    if folding_text is not None:
        (tmp_path / "f.json").write_text(folding_text)
        argv += ["--folding", tmp_path / "f.json"]
    code, _, err = run_cli(argv)
    assert code == 2 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwgen: error: ") and len(lines[0]) < MAX_LINE, err
    return lines[0][len("hwgen: error: "):]


def _w21_with_nan(m):
    w = numpy_helper.to_array(_init(m, "w21")).copy()
    w[0, 3] = np.nan
    _set_init(m, "w21", w)


def _duplicate_gemm(m):
    c = onnx.NodeProto()
    c.CopyFrom(_node(m, "Gemm_n32"))
    m.graph.node.insert(8, c)


def _cycle(m):
    _node(m, "MatMul_n13").input[0] = "relu_17"


def _dead_gemm(m):
    m.graph.node.insert(7, helper.make_node("Gemm", ["quant_22", "quant_28"], ["dead"], name="Dead_Gemm", transB=1))


def _channels(m):
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 7


REGRESSIONS = {
    # arity: a handler read node.input[k] that was not there (IndexError)
    "quant_missing_input": ("mlp", lambda m: _node(m, "Quant_n11").input.pop(),
                            "node Quant_n11 (Quant): takes 4 inputs (x, scale, zero point, bit width), not 3"),
    "quant_empty_input": ("mlp", lambda m: _node(m, "Quant_n11").input.__setitem__(1, ""),
                          "node Quant_n11 (Quant): input 1 (scale) is empty; accepted: x, scale, zero point, bit width"),
    "batchnorm_missing_input": ("binary", lambda m: _node(m, "BatchNormalization_n15").input.pop(),
                                "node BatchNormalization_n15 (BatchNormalization): takes 5 inputs (x, scale, bias, mean, "
                                "variance), not 4"),
    "mul_one_input": ("mlp", lambda m: _node(m, "Mul_n35").input.pop(), "node Mul_n35 (Mul): takes 2 inputs (two operands), not 1"),
    # bit widths: int(inf) / int(nan) / 1 << 1e30 raised OverflowError / ValueError
    "bit_width_inf": ("mlp", lambda m: _set_init(m, "b3", np.array(INF, np.float32)),
                      "node Quant_n5 (Quant): bit width must be a whole number, not [inf]"),
    "bit_width_nan": ("mlp", lambda m: _set_init(m, "b3", np.array(NAN, np.float32)),
                      "node Quant_n5 (Quant): bit width must be a whole number, not [nan]"),
    "bit_width_huge": ("mlp", lambda m: _set_init(m, "b9", np.array(1e30, np.float32)),
                       "node Quant_n11 (Quant): bit width 1000000015047466219876688855040 is out of range; accepted: 1 to 16 "
                       "(up to 64 for a quantised bias)"),
    "bit_width_zero": ("mlp", lambda m: _set_init(m, "b3", np.array(0, np.float32)),
                       "node Quant_n5 (Quant): bit width 0 is out of range; accepted: 1 to 16 (up to 64 for a quantised bias)"),
    # an unknown rounding mode was accepted, and failed only when the host head ran
    "rounding_mode": ("residual", lambda m: _set_attr(_node(m, "Quant_n5"), "rounding_mode", "s"),
                      "node Quant_n5 (Quant): rounding_mode must be one of ROUND, HALF_EVEN, CEIL, FLOOR, UP, DOWN, "
                      "ROUND_TO_ZERO, HALF_UP, HALF_DOWN, not 'S'"),
    # BipolarQuant scales were not checked: an infinite weight scale built a wrong accelerator
    "bipolar_scale_inf": ("binary", lambda m: _set_init(m, "s5", np.array(INF, np.float32)),
                          "node BipolarQuant_n7 (BipolarQuant): scale must be finite and positive, not [inf]"),
    # a scale of the wrong length failed in numpy broadcasting inside the MatMul lowering
    "scale_shape": ("binary", lambda m: _set_init(m, "s20", np.array([0.1, 0.2], np.float32)),
                    "node BipolarQuant_n22 (BipolarQuant): scale of shape (2,) does not broadcast to its input of shape "
                    "(6, 4); accepted: a scalar or one value per channel"),
    # NaN weights became int64 garbage and overflowed the resource estimate
    "nan_weight": ("residual", _w21_with_nan,
                   "node Quant_n26 (Quant): the constant w21 it quantises must be finite, not [nan]"),
    # a tensor produced twice left an MVAU without an output type (AttributeError in validate)
    "duplicate_producer": ("mlp", _duplicate_gemm,
                           "tensor gemm_31: produced by both node Gemm_n32 (Gemm) and node Gemm_n32 (Gemm); "
                           "accepted: one producer per tensor"),
    "duplicate_initializer": ("mlp", lambda m: m.graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "s7")),
                              "tensor s7: two initializers have this name; accepted: one producer per tensor"),
    "dangling_accumulator": ("mlp", _dead_gemm,
                             "node Dead_Gemm (Gemm): its result reaches neither a quantiser nor the graph output; accepted: "
                             "every MatMul/Conv/Add followed by a quantiser, or the last one by the output"),
    # input channels that the weights do not read: numpy reshape error
    "conv_channels": ("cnn", _channels,
                      "node Conv_n13 (Conv): weights of shape (4, 2, 3, 3) read 2 input channels, but the input "
                      "quant_4 has 7 (shape (1, 7, 6, 6))"),
    # a declared output shape the graph does not compute: the build succeeded, the host tail could not reshape
    "output_shape": ("mlp", lambda m: setattr(m.graph.output[0].type.tensor_type.shape.dim[1], "dim_value", 5),
                     "output mul_34: declared of shape (1, 5), but the graph computes (1, 3)"),
    # a zero (or symbolic) dimension was read as 1
    "empty_dimension": ("mlp", lambda m: setattr(m.graph.output[0].type.tensor_type.shape.dim[1], "dim_value", 0),
                        "tensor mul_34: shape (1, 0) has an unknown, empty or negative dimension; accepted: positive "
                        "sizes (only the batch axis may be symbolic)"),
    # an empty weight tensor: IndexError reading its scale
    "empty_weights": ("cnn", lambda m: _set_init(m, "w6", np.zeros((0, 2, 3, 3), np.float32)),
                      "node Quant_n11 (Quant): the constant w6 it quantises is empty (shape (0, 2, 3, 3))"),
    # window attributes of the wrong length: ValueError unpacking in SlidingWindow.validate, IndexError on pads
    "strides_length": ("cnn", lambda m: _set_attr(_node(m, "Conv_n13"), "strides", [3, 3, 3]),
                       "node Conv_n13 (Conv): strides must be 2 positive integers, not [3, 3, 3]"),
    "pads_type": ("cnn", lambda m: _set_attr(_node(m, "Conv_n13"), "pads", "s"),
                  "node Conv_n13 (Conv): pads must be 4 non-negative integers (top, left, bottom, right), not []"),
    "kernel_shape": ("cnn", lambda m: _set_attr(_node(m, "Conv_n13"), "kernel_shape", [1, 1]),
                     "node Conv_n13 (Conv): kernel_shape [1, 1] does not match the weights of shape (4, 2, 3, 3)"),

    # attributes of the wrong type: float('s')
    "attribute_type": ("binary", lambda m: _set_attr(_node(m, "BatchNormalization_n15"), "epsilon", "s"),
                       "node BatchNormalization_n15 (BatchNormalization): attribute epsilon must be a number, not 's'"),
    "attribute_nan": ("mlp", lambda m: _set_attr(_node(m, "Gemm_n32"), "alpha", NAN),
                      "node Gemm_n32 (Gemm): attribute alpha must be a finite number, not nan"),
    # non-finite element-wise constants and an impossible BatchNorm
    "operand_nan": ("mlp", lambda m: _set_init(m, "m33", np.array(NAN, np.float32)),
                    "node Mul_n35 (Mul): operand must be finite, not [nan]"),
    "negative_variance": ("binary", lambda m: _set_init(m, "var13", np.array([1, -1, 2, -2, -4, -8], np.float32)),
                          "node BatchNormalization_n15 (BatchNormalization): variance + epsilon must be positive, not "
                          "[-0.99999, -1.99999, -3.99999]"),
    # the unsupported-op message listed all 32 ops: 358 characters
    "unsupported_op": ("mlp", lambda m: setattr(_node(m, "Relu_n18"), "op_type", "Foo"),
                       "node Relu_n18: op Foo is not supported; accepted: quantisers, MatMul, Gemm, Conv, per-channel element-wise "
                       "ops (Add, Mul, BatchNormalization, Relu, …), pooling, reshapes, Concat, ArgMax"),
    "cycle": ("mlp", _cycle, "node MatMul_n13 (MatMul): is on a cycle (its inputs depend on its own output); "
                             "accepted: an acyclic graph"),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regression(tmp_path, name):
    base, fn, message = REGRESSIONS[name]
    assert _bad_build(tmp_path, base, fn) == message


@pytest.mark.parametrize("text,message", [
    ("[1, 2]", 'must map layer names to objects like {"fc0": {"pe": 4, "simd": 8}}, not a list'),
    ('{"fc0": 4}', 'must map layer names to objects like {"fc0": {"pe": 4, "simd": 8}}, not a number for layer \'fc0\''),
])
def test_regression_folding_file(tmp_path, text, message):
    assert _bad_build(tmp_path, "mlp", lambda m: None, folding_text=text) == f"folding file {tmp_path / 'f.json'}: {message}"


@pytest.mark.parametrize("folding,message", [
    ({"fc0": 4}, "not a number for layer 'fc0'"), ({3: {"pe": 1}}, "not a key 3 of type int"),
    ({"fc0": None}, "not null for layer 'fc0'"),
])
def test_regression_folding_dict(tmp_path, folding, message):
    """The API's folding dict was iterated unchecked: AttributeError: 'list' object has no attribute 'items'."""
    import hwgen
    from hwgen.errors import FoldingError
    with pytest.raises(FoldingError) as e:
        hwgen.build(base_model("mlp"), tmp_path / "out", folding=folding, progress=False)
    assert str(e.value) == f'folding: must map layer names to objects like {{"fc0": {{"pe": 4, "simd": 8}}}}, {message}'
    assert not (tmp_path / "out").exists()


def test_unsorted_graph_builds_like_the_sorted_one(tmp_path):
    """Nodes out of topological order: hwgen built them while shape inference had skipped tensors; now they are
    sorted at load, so the build (and QONNX's reference on the loaded model) are those of the sorted file."""
    import hwgen
    m = base_model("mlp")
    nodes = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes[::-1])
    a = hwgen.build(m, tmp_path / "a", progress=False)
    b = hwgen.build(base_model("mlp"), tmp_path / "b", progress=False)
    assert Path(a.verilog_path).read_text() == Path(b.verilog_path).read_text()
    assert _ref_check(m, a.graph, np.random.default_rng(0)) is None


def test_regression_cleanup_message_clipped(tmp_path, monkeypatch):
    """onnxruntime's InvalidGraph message, quoted in the clean-up's error, ran to 437 characters: it is clipped."""
    import qonnx.util.cleanup

    def fail(model, **kw):
        raise RuntimeError("[ONNXRuntimeError] : 10 : INVALID_GRAPH : This is an invalid model. " + "x" * 400)
    monkeypatch.setattr(qonnx.util.cleanup, "cleanup_model", fail)
    message = _bad_build(tmp_path, "mlp", lambda m: None)
    assert message == ("graph mlp: QONNX clean-up failed (RuntimeError: [ONNXRuntimeError] : 10 : INVALID_GRAPH : This is "
                       "an invalid model. " + "x" * (160 - 68) + "…)")


def test_regression_pinned_depthwise_window(tmp_path):
    """A folding file pinning a pooling window's SIMD to other than its pool's PE built an accelerator (and an IR)
    whose outputs differ from the model's (the window streams channel blocks of its SIMD, the pool reads PE lanes)."""
    import hwgen
    message = _bad_build(tmp_path, "cnn", lambda m: None, folding_text='{"conv0": {"pe": 4, "simd": 1}, "swg1": {"simd": 2}, '
                                                                     '"pool0": {"pe": 4}}')
    assert message == (f"folding file {tmp_path / 'f.json'}: layer swg1: SIMD=2 must equal the PE of its consumer pool0 (4); "
                       "set pool0's pe to 2 too, or leave swg1 out (it follows pool0)")
    b = hwgen.build(base_model("cnn"), tmp_path / "ok", folding={"conv0": {"pe": 4, "simd": 1}, "swg1": {"simd": 4},
                                                            "pool0": {"pe": 4}}, progress=False)
    assert [l.folding for l in b.graph.layers if l.name in ("swg1", "pool0")] == [{"simd": 4}, {"pe": 4}]
    assert _ref_check(base_model("cnn"), b.graph, np.random.default_rng(0)) is None
