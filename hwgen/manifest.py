"""The build manifest, ``OUT/manifest.json``: what a build promises the tools that use it.

One place defines its format (:data:`FORMAT`), makes it (:func:`make`), writes it
(:func:`write`) and reads it back checked (:func:`load`).  Its keys::

    format            "hwgen-build/1"
    name, top         the model's name; the Verilog top module ("hwgen_top")
    verilog           the Verilog sources, relative to OUT
    memfiles          the $readmemh files of big ROMs, relative to OUT (sorted)
    clock_mhz         the clock the folding was chosen for; fps_target the throughput asked for (or null)
    input, output     the AXI4-Stream of each side: shape, dtype, lanes, lane_bits, tdata_bits, words_per_frame
    cycles_per_frame  the estimated interval between frames; fps at clock_mhz
    ports             the top's port names
    head, tail        what the host does before and after the accelerator (hwgen.host)
    source            the model file the build was made from ("source.onnx")
    modules           {layer name: Verilog module name} of the layers ("hwgen_top.fc0"), as the
                      top names its submodules (hwgen.hdl.top.module_names); manifests of older
                      builds have none

:func:`load` (and :func:`read`) raise a one-line :class:`~hwgen.errors.ManifestError` for a directory or a
manifest that is not what ``hwgen build`` writes.
"""

import json
import os
from pathlib import Path

from .dataflow.graph import INPUT
from .errors import ManifestError
from .streams import tdata_bits, words_per_frame

__all__ = ["FORMAT", "FILE", "make", "stream_info", "write", "load", "read", "layer_modules"]

FORMAT = "hwgen-build/1"
FILE = "manifest.json"
#: keys :func:`load` requires, and those of each stream side
REQUIRED = ("top", "verilog", "input", "output")
STREAM_KEYS = ("shape", "dtype", "lanes", "lane_bits", "tdata_bits", "words_per_frame")
PORTS = {"clk": "clk", "rst": "rst (active high, synchronous)",
         "in": ["s_axis_tdata", "s_axis_tvalid", "s_axis_tready"],
         "out": ["m_axis_tdata", "m_axis_tvalid", "m_axis_tready"]}
_ACCEPTED = "accepted: a directory written by `hwgen build`"


def stream_info(shape, dt, lanes):
    """The ``input``/``output`` entry of a stream of frames of ``shape``, ``lanes`` words of ``dt`` per beat."""
    return {"shape": list(shape), "dtype": dt.name, "lanes": lanes, "lane_bits": dt.bits,
            "tdata_bits": tdata_bits(lanes, dt), "words_per_frame": words_per_frame(shape, lanes)}


def make(graph, *, name, top, verilog, memfiles=(), target, source="source.onnx", modules):
    """The manifest of a build of the plumbed ``graph`` whose top module ``top`` is in ``verilog``
    (paths relative to the build directory; ``memfiles`` likewise) for ``target`` (a
    :class:`~hwgen.dataflow.target.Throughput`: the clock, the frame rate asked for); ``modules``: ``{layer name:
    Verilog module name}`` as the generator named them (:func:`hwgen.hdl.top.module_names`)."""
    first = next(l for l in graph.layers if INPUT in graph.input_refs(l))
    last = graph.layers[-1]
    cycles = graph.cycles()
    return {
        "format": FORMAT, "name": name, "top": top, "verilog": list(verilog),
        "memfiles": list(memfiles),
        "clock_mhz": target.clock_mhz, "fps_target": target.fps,
        "input": stream_info(first.in_shape, first.idt, first.in_lanes),
        "output": stream_info(last.out_shape, last.odt, last.out_lanes),
        "cycles_per_frame": cycles, "fps": target.fps_at(cycles),
        "ports": {k: list(v) if isinstance(v, list) else v for k, v in PORTS.items()},
        "head": graph.head, "tail": graph.tail, "source": source,
        "modules": dict(modules),
    }


def write(out_dir, manifest):
    """Write ``manifest`` as ``out_dir/manifest.json`` (sorted keys, one-space indent); returns its path."""
    path = os.path.join(os.fspath(out_dir), FILE)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return path


def load(out_dir, *, files=True):
    """The manifest of build directory ``out_dir``, checked (:func:`read`); with ``files``, every
    Verilog source and ROM file it lists exists.  Raises a one-line :class:`~hwgen.errors.ManifestError`."""
    out = Path(os.fspath(out_dir))
    if not out.is_dir():
        raise ManifestError(f"build directory {out}: not found; {_ACCEPTED} "
                            "(manifest.json, model.json, params.npz, rtl/)")
    mpath = out / FILE
    if not mpath.is_file():
        raise ManifestError(f"build directory {out}: no {FILE}, it is not a hwgen build directory; {_ACCEPTED}")
    manifest = read(mpath)
    if files:
        for v in manifest["verilog"]:
            if not (out / v).is_file():
                raise ManifestError(f"build directory {out}: Verilog source {out / v} listed in {FILE} not found")
        for rel in manifest.get("memfiles", []):
            if not (out / rel).is_file():
                raise ManifestError(f"build directory {out}: ROM file {out / rel} listed in {FILE} not found")
    return manifest


def read(path):
    """The manifest in file ``path``, checked: a hwgen-build/1 JSON object with the keys
    :data:`REQUIRED` and each stream's :data:`STREAM_KEYS`.  Raises a one-line
    :class:`~hwgen.errors.ManifestError`."""
    mpath = Path(os.fspath(path))
    try:
        manifest = json.loads(mpath.read_text())
    except OSError as e:
        raise ManifestError(f"{mpath}: cannot be read ({e.strerror or e}); {_ACCEPTED}") from None
    except ValueError as e:
        raise ManifestError(f"{mpath}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{mpath}: must be a JSON object, not {type(manifest).__name__}; "
                            "accepted: a manifest written by `hwgen build`")
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"{mpath}: format must be {FORMAT!r}, not {manifest.get('format')!r}")
    for key in REQUIRED:
        if key not in manifest:
            raise ManifestError(f"{mpath}: key {key!r} missing; accepted: a manifest written by `hwgen build`")
    for side in ("input", "output"):
        for key in STREAM_KEYS:
            if not isinstance(manifest[side], dict) or key not in manifest[side]:
                raise ManifestError(f"{mpath}: {side}.{key} missing; accepted: a manifest written by `hwgen build`")
    return manifest


def layer_modules(manifest):
    """``{layer name: Verilog module name}`` of a manifest, or None for one written before the
    ``modules`` key (hwgen.flows then takes ``<top>.<layer name>``, see :func:`hwgen.flows.summarize_synth`)."""
    modules = manifest.get("modules")
    return dict(modules) if isinstance(modules, dict) else None
