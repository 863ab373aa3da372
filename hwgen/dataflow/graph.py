"""The dataflow graph: an ordered chain of IR layers plus host head and tail.

Serialises to ``model.json`` (structure, types, folding, head, tail) and
``params.npz`` (integer arrays, keyed ``<layer>/<field>``); loading gives back
the same build.
"""

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import HwgenError
from .base import LAYER_KINDS

__all__ = ["DataflowGraph", "FORMAT", "INPUT", "parse_ref"]

FORMAT = "hwgen-dataflow/1"
INPUT = "@input"


def parse_ref(ref):
    """``"fc0"`` -> ("fc0", 0); ``"dup0:1"`` -> ("dup0", 1); ``"@input"`` -> ("@input", 0)."""
    name, _, port = str(ref).partition(":")
    return name, int(port) if port else 0


@dataclass
class DataflowGraph:
    layers: list
    head: dict = field(default_factory=dict)    # float input -> first integers (host)
    tail: dict = field(default_factory=dict)    # last integers -> float outputs (host)
    name: str = "model"

    # ------------------------------------------------------------------
    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def layer(self, name):
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    @property
    def compute_layers(self):
        return [l for l in self.layers if l.kind not in ("FIFO", "WidthConverter")]

    @property
    def in_shape(self):
        return self.layers[0].in_shape

    @property
    def out_shape(self):
        return self.layers[-1].out_shape

    @property
    def idt(self):
        return self.layers[0].idt

    @property
    def odt(self):
        return self.layers[-1].odt

    def validate(self):
        if not self.layers:
            raise HwgenError("graph has no hardware layers: nothing between the first quantiser and the output")
        names = set()
        for l in self.layers:
            if l.name in names:
                raise HwgenError(f"layer {l.name}: name used twice")
            names.add(l.name)
            l.validate()
        seen = {INPUT}
        for b in self.layers:
            refs = self.input_refs(b)
            if len(refs) != b.n_inputs:
                raise HwgenError(f"layer {b.name}: reads {len(refs)} streams, needs {b.n_inputs}")
            shapes = getattr(b, "in_shapes", None) or [b.in_shape] * len(refs)
            idts = getattr(b, "idts", None) or [b.idt] * len(refs)
            for r, shape, idt in zip(refs, shapes, idts):
                name, port = parse_ref(r)
                if name not in seen:
                    raise HwgenError(f"layer {b.name}: input {r!r} is not produced by an earlier layer")
                if name == INPUT:
                    continue
                a = self.layer(name)
                if port >= a.n_outputs:
                    raise HwgenError(f"layer {b.name}: input {r!r}: {name} has {a.n_outputs} output(s)")
                if int(np.prod(a.out_shape)) != int(np.prod(shape)):
                    raise HwgenError(f"layer {b.name}: input shape {tuple(shape)} does not match {a.name}'s output {tuple(a.out_shape)}")
                if a.odt != idt:
                    raise HwgenError(f"layer {b.name}: input type {idt} does not match {a.name}'s output {a.odt}")
            seen.add(b.name)

    def input_refs(self, layer):
        """The stream references ``layer`` reads (its ``inputs``, or the previous layer's output)."""
        if layer.inputs:
            return [str(r) for r in layer.inputs]
        i = self.layers.index(layer)
        return [INPUT] if i == 0 else [self.layers[i - 1].name]

    def make_edges_explicit(self):
        for l in self.layers:
            l.inputs = tuple(self.input_refs(l))
        return self

    def producer(self, ref):
        name, port = parse_ref(ref)
        return (None if name == INPUT else self.layer(name)), port

    def consumers(self, ref):
        """(layer, input index) pairs reading stream ``ref``."""
        out = []
        for l in self.layers:
            for k, r in enumerate(self.input_refs(l)):
                if parse_ref(r) == parse_ref(ref):
                    out.append((l, k))
        return out

    def execute(self, x):
        """Bit-exact integer reference of the whole graph: (N, *in_shape) -> (N, *out_shape)."""
        return self.execute_all(x)[(self.layers[-1].name, 0)]

    def execute_all(self, x, override=None):
        """Every stream's values: {(layer name, port): array}.  ``override(name, y) -> y``
        may replace a layer's output before its consumers see it."""
        x = np.asarray(x, dtype=np.int64)
        vals = {(INPUT, 0): x}
        y = x
        for l in self.layers:
            args = []
            shapes = getattr(l, "in_shapes", None) or [l.in_shape] * len(self.input_refs(l))
            for r, shape in zip(self.input_refs(l), shapes):
                v = vals[parse_ref(r)]
                args.append(v.reshape((v.shape[0],) + tuple(shape)))       # a flatten is free: same stream
            y = l.execute(*args)
            if override is not None and not isinstance(y, list):
                y = override(l.name, y)
            outs = y if isinstance(y, list) else [y]
            for k, o in enumerate(outs):
                vals[(l.name, k)] = o
        return vals

    def cycles(self):
        return max(l.cycles() for l in self.layers)

    def resources(self):
        tot = {"LUT": 0, "FF": 0, "BRAM18": 0, "DSP": 0}
        for l in self.layers:
            for k, v in l.resources().items():
                tot[k] += v
        return tot

    # ------------------------------------------------------------------
    def to_json(self):
        layers, arrays = [], {}
        for l in self.layers:
            attrs, arr = l.to_json()
            layers.append(attrs)
            for k, v in arr.items():
                arrays[f"{l.name}/{k}"] = v
        doc = {"format": FORMAT, "name": self.name, "head": self.head, "tail": self.tail, "layers": layers}
        return doc, arrays

    def save(self, out_dir):
        doc, arrays = self.to_json()
        with open(os.path.join(out_dir, "model.json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        # np.savez stores zip timestamps of a fixed date: byte-identical output
        np.savez(os.path.join(out_dir, "params.npz"), **dict(sorted(arrays.items())))

    @classmethod
    def load(cls, out_dir):
        path = os.path.join(out_dir, "model.json")
        try:
            with open(path) as f:
                doc = json.load(f)
            arrays = dict(np.load(os.path.join(out_dir, "params.npz")))
        except (OSError, ValueError) as e:
            raise HwgenError(f"{out_dir}: not a hwgen build ({e.__class__.__name__}: {e})") from None
        if doc.get("format") != FORMAT:
            raise HwgenError(f"{path}: format must be {FORMAT!r}, not {doc.get('format')!r}")
        layers = []
        for attrs in doc["layers"]:
            kind = attrs["kind"]
            if kind not in LAYER_KINDS:
                raise HwgenError(f"{path}: layer kind must be one of {sorted(LAYER_KINDS)}, not {kind!r}")
            name = attrs["name"]
            arr = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.split("/", 1)[0] == name}
            layers.append(LAYER_KINDS[kind].from_json(attrs, arr))
        return cls(layers=layers, head=doc.get("head", {}), tail=doc.get("tail", {}), name=doc.get("name", "model"))
