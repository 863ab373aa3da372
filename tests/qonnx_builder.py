"""Hand-made QONNX graphs (onnx.helper), for tests that need files no exporter writes.

:class:`GraphBuilder` appends nodes to a graph in the QONNX dialect: ``Quant``
/ ``BipolarQuant`` on activations and weights, ``MatMul``/``Gemm``, ``Mul`` /
``Add`` scaling (the hls4ml/QKeras style), ``BatchNormalization``, ``Relu``,
``MultiThreshold``… so that tests can produce foreign-looking models and
random networks quickly, without torch.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

__all__ = ["GraphBuilder", "QONNX_DOMAIN"]

QONNX_DOMAIN = "qonnx.custom_op.general"


class GraphBuilder:
    def __init__(self, in_shape, domain=QONNX_DOMAIN, opset=13, name="g"):
        self.nodes, self.inits = [], []
        self.domain, self.opset, self.name = domain, opset, name
        self.in_shape = tuple(in_shape)
        self.k = 0
        self.cur = "x"

    def _n(self, prefix):
        self.k += 1
        return f"{prefix}{self.k}"

    def const(self, value, prefix="c"):
        name = self._n(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(self, op, inputs, domain="", out=None, **attrs):
        out = out or self._n(op.lower() + "_")
        self.nodes.append(helper.make_node(op, inputs, [out], name=self._n(op + "_n"), domain=domain, **attrs))
        return out

    # ---------------------------------------------------------------- ops
    def quant(self, x, scale, zp=0.0, bits=4, signed=True, narrow=False, mode="ROUND", op="Quant"):
        if bits == 1 and op != "Quant":
            return self.node("BipolarQuant", [x, self.const(scale, "s")], domain=self.domain)
        return self.node(op, [x, self.const(scale, "s"), self.const(zp, "z"), self.const(bits, "b")], domain=self.domain,
                         signed=int(signed), narrow=int(narrow), rounding_mode=mode)

    def bipolar(self, x, scale=1.0):
        return self.node("BipolarQuant", [x, self.const(scale, "s")], domain=self.domain)

    def act(self, scale, zp=0.0, bits=4, signed=True, narrow=False, mode="ROUND"):
        self.cur = self.quant(self.cur, scale, zp, bits, signed, narrow, mode) if bits > 1 else self.bipolar(self.cur, scale)
        return self.cur

    def matmul(self, w_float, w_scale, bits, narrow=True, gemm=False, bias=None):
        """x @ Quant(W) with W of shape (in, out) (or (out, in) with Gemm transB)."""
        w = self.const(w_float, "w")
        wq = self.quant(w, w_scale, 0.0, bits, True, narrow) if bits > 1 else self.bipolar(w, w_scale)
        if gemm:
            ins = [self.cur, wq] + ([self.const(bias, "bias")] if bias is not None else [])
            self.cur = self.node("Gemm", ins, transB=1)
        else:
            self.cur = self.node("MatMul", [self.cur, wq])
            if bias is not None:
                self.cur = self.node("Add", [self.cur, self.const(bias, "bias")])
        return self.cur

    def mul(self, v):
        self.cur = self.node("Mul", [self.cur, self.const(v, "m")])
        return self.cur

    def add(self, v):
        self.cur = self.node("Add", [self.cur, self.const(v, "a")])
        return self.cur

    def relu(self):
        self.cur = self.node("Relu", [self.cur])
        return self.cur

    def batchnorm(self, gamma, beta, mean, var, eps=1e-5):
        ins = [self.cur] + [self.const(v, p) for v, p in ((gamma, "g"), (beta, "be"), (mean, "mu"), (var, "var"))]
        self.cur = self.node("BatchNormalization", ins, epsilon=eps)
        return self.cur

    def multithreshold(self, thresholds, out_dtype="UINT4", out_scale=1.0, out_bias=0.0):
        self.cur = self.node("MultiThreshold", [self.cur, self.const(thresholds, "thr")], domain=self.domain,
                             out_dtype=out_dtype, out_scale=float(out_scale), out_bias=float(out_bias))
        return self.cur

    def model(self, out_shape):
        g = helper.make_graph(self.nodes, self.name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.in_shape))],
                              [helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, list(out_shape))],
                              initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset), helper.make_opsetid(self.domain, 1)])
        m.ir_version = 8
        return m


def execute_float64(model, x):
    """A tiny float64 interpreter of the ops the fuzzer writes (the tie-breaker reference:
    QONNX's own custom ops compute in float32).  Returns every tensor by name."""
    from onnx import numpy_helper
    env = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    env[model.graph.input[0].name] = np.asarray(x, dtype=np.float64)

    def attr(node, name, default):
        for a in node.attribute:
            if a.name == name:
                return a.i if a.type == a.INT else (a.s.decode() if a.type == a.STRING else a.f)
        return default

    def rnd(v, mode):
        mode = mode.upper()
        return {"ROUND": np.round, "HALF_EVEN": np.round, "FLOOR": np.floor, "CEIL": np.ceil, "DOWN": np.trunc,
                "UP": lambda t: np.sign(t) * np.ceil(np.abs(t)),
                "HALF_UP": lambda t: np.sign(t) * np.floor(np.abs(t) + 0.5),
                "HALF_DOWN": lambda t: np.sign(t) * np.ceil(np.abs(t) - 0.5)}[mode](v)

    for node in model.graph.node:
        a = [env[i] for i in node.input if i]
        op = node.op_type
        if op in ("Quant", "IntQuant"):
            v, s, z, b = a
            signed, narrow = attr(node, "signed", 1), attr(node, "narrow", 0)
            b = int(b)
            lo = -(2 ** (b - 1)) + narrow if signed else 0
            hi = 2 ** (b - 1) - 1 if signed else 2 ** b - 1 - narrow
            q = np.clip(rnd(v / s + z, attr(node, "rounding_mode", "ROUND")), lo, hi)
            y = (q - z) * s
        elif op == "BipolarQuant":
            y = np.where(a[0] >= 0, 1.0, -1.0) * a[1]
        elif op == "MatMul":
            y = a[0] @ a[1]
        elif op == "Gemm":
            y = a[0] @ (a[1].T if attr(node, "transB", 0) else a[1]) + (a[2] if len(a) > 2 else 0)
        elif op == "Add":
            y = a[0] + a[1]
        elif op == "Sub":
            y = a[0] - a[1]
        elif op == "Mul":
            y = a[0] * a[1]
        elif op == "Relu":
            y = np.maximum(a[0], 0)
        elif op == "BatchNormalization":
            v, g, be, mu, var = a
            y = (v - mu) / np.sqrt(var + attr(node, "epsilon", 1e-5)) * g + be
        else:
            raise NotImplementedError(op)
        env[node.output[0]] = y
    return env
