"""Export a Brevitas module to a QONNX file."""

import contextlib
import copy
import io
import logging
import os
import re
import sys
import warnings

from .. import progress as _progress
from ..errors import FrontendError
from ..files import publish, staging_dir
from ..validate import shown

__all__ = ["export_brevitas"]

_EXPORTERS = (("dynamo", True), ("torchscript", False))


class _OnlyHwgenLines(io.TextIOBase):
    """Standard error while an exporter runs: hwgen's own lines (progress heartbeats, warnings:
    one ``write`` each, ``hwgen.progress``) pass to ``stream``; the rest is dropped (torch.export
    prints the partial FX graph of a failed capture there, thousands of lines for a ResNet)."""

    def __init__(self, stream):
        super().__init__()
        self._stream = stream

    def writable(self):
        return True

    def write(self, s):
        if s.startswith(("[hwgen] ", "hwgen: ")):
            self._stream.write(s)
        return len(s)

    def flush(self):
        self._stream.flush()


@contextlib.contextmanager
def _hushed(verbose):
    """The exporters' own chatter (stdout, stderr, warnings, torch/brevitas logging) kept out of sight."""
    sink = io.StringIO()
    quiet = contextlib.ExitStack()
    if not verbose:
        quiet.enter_context(contextlib.redirect_stdout(sink))
        quiet.enter_context(contextlib.redirect_stderr(_OnlyHwgenLines(sys.stderr)))
    loggers = [logging.getLogger(n) for n in ("", "torch", "torch.onnx", "torch.export", "brevitas")]
    levels = [lg.level for lg in loggers]
    with quiet, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels):
                lg.setLevel(lv)


def _embed_external_data(path):
    """Re-save ``path`` whole when the exporter left its tensors in side files.

    Brevitas re-saves the exported model with its tensors embedded, so the exporter's
    ``.onnx.data`` side file is a leftover (removed with the staging directory); this
    only acts should a future exporter keep tensors outside the file."""
    import onnx
    from onnx.external_data_helper import uses_external_data
    model = onnx.load(path, load_external_data=False)
    if any(uses_external_data(t) for t in model.graph.initializer):
        onnx.save(onnx.load(path), path)


def _private_copy(module):
    """A deep copy of ``module`` for one exporter attempt to work on.

    Brevitas' ONNX managers switch the module's quantisers into export mode, and the dynamo
    manager also turns every ``return_quant_tensor`` off and every ``skip_create_quant_tensor``
    on (torch.export cannot trace QuantTensors); they restore all of it only when
    ``torch.onnx.export`` returns, not when it raises.  A failed dynamo attempt would so hand
    the TorchScript attempt a model that returns plain tensors where its own forward expects
    QuantTensors (e.g. ``bnn_pynq``'s ResNet: ``AssertionError: Perform add among QuantTensors``).
    Each attempt works on its own copy: the user's module keeps its state, and the second
    attempt sees the module as the user made it.  A module that cannot be copied is exported
    itself (the exporters' own behaviour)."""
    try:
        return copy.deepcopy(module)
    except Exception:  # noqa: BLE001 - any module deepcopy refuses: export the module itself
        return module


def _reason(e):
    """One line of ``e``: its first line, and torch.export's exception summary where it gives one
    (its first line only says that torch.export failed)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))          # torch's colours
    first = text.splitlines()[0] if text else ""
    lines = text.splitlines()
    if "## Exception summary" in lines:
        rest = [ln.strip() for ln in lines[lines.index("## Exception summary") + 1:] if ln.strip()]
        if rest:
            first = f"{first.split('. ')[0]}: {rest[0]}"
    return f"{e.__class__.__name__}: {first}"


def export_brevitas(module, example_input, path, *, verbose=False, progress=True):
    """Export ``module`` (a Brevitas ``nn.Module``) to QONNX at ``path``.

    Uses Brevitas' dynamo exporter and falls back to the TorchScript exporter
    where dynamo fails (e.g. a forward that needs QuantTensors, which the dynamo
    exporter turns off: residual adds of QuantTensors), each attempt shown as a
    progress line with its time (``progress=False``: none).  Each attempt exports
    a private copy of ``module`` (``_private_copy``), so a failed attempt cannot
    leave the next one (or the user) a module in the exporter's state.  Everything is
    written in a hidden directory beside ``path`` that is removed afterwards
    (success or not): ``path`` appears only once complete, is the only file
    written, holds every tensor (no ``.onnx.data`` side file) and gets the
    user's umask.  Returns ``path``.
    """
    import torch
    from brevitas.export import export_qonnx

    if not isinstance(module, torch.nn.Module):
        raise FrontendError(f"module must be a torch nn.Module (a Brevitas model), not {shown(module)}")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise FrontendError(f"path must be a file path, not {shown(path)}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise FrontendError(f"path {path}: is a directory; accepted: the path of the .onnx file to write")
    module = module.eval()
    name = os.path.basename(path) or "model.onnx"
    errors = []
    with staging_dir(path) as stage:
        for label, dynamo in _EXPORTERS:
            tmp = os.path.join(stage, f"{label}-{name}")
            what = f"export {module.__class__.__name__} ({label} exporter)"
            try:
                with _progress.task(what, enabled=progress), _hushed(verbose), torch.no_grad():
                    export_qonnx(_private_copy(module), input_t=example_input, export_path=tmp, dynamo=dynamo)
                    _embed_external_data(tmp)
            except Exception as e:  # noqa: BLE001 - an exporter fails in any way; try the other one
                errors.append(f"{label}: {_reason(e)}")
                continue
            publish(tmp, path)
            return path
    raise FrontendError(f"module {module.__class__.__name__}: Brevitas QONNX export failed ({'; '.join(errors)})")
