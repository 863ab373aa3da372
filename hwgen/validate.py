"""Arguments checked at the door, the same for the command line and the Python API.

Each check returns the value in its canonical form or raises a one-line
:class:`~hwgen.errors.HwgenError` saying what was found and what is accepted.
Values are shown with :func:`shown`, cut short, so a message stays one short line
whatever was passed (a model's bytes, a huge array).
"""

import math
import numbers
import os
import sys
import tempfile

from .errors import HwgenError

__all__ = ["shown", "positive_number", "positive_int", "flag", "model_source", "folding_source", "input_file", "output_file", "name"]

_SHOW = 40


def shown(value):
    """A short description of ``value`` for a message: its repr when short, else its type and size."""
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__} of {len(value):,} bytes"
    r = repr(value)
    if len(r) <= _SHOW:
        return r
    size = getattr(value, "shape", None) or (len(value) if hasattr(value, "__len__") else None)
    return f"a {type(value).__name__}" + (f" of size {size}" if size is not None else "")


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def positive_number(value, what, *, optional=False):
    """A finite number > 0 (``None`` when ``optional``), as a float."""
    if value is None and optional:
        return None
    if not _is_number(value):
        raise HwgenError(f"{what} must be a finite number > 0, not {shown(value)}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise HwgenError(f"{what} must be a finite number > 0, not {v:g}")
    return v


def positive_int(value, what, *, optional=False):
    """A whole number ≥ 1 (``None`` when ``optional``), as an int."""
    if value is None and optional:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise HwgenError(f"{what} must be a whole number ≥ 1, not {shown(value)}")
    return int(value)


def flag(value, what):
    """``True`` or ``False`` (not 1, not "yes")."""
    if not isinstance(value, bool):
        raise HwgenError(f"{what} must be True or False, not {shown(value)}")
    return value


def choice(value, what, choices):
    """One of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise HwgenError(f"{what} must be one of {', '.join(choices)}, not {shown(value)}")
    return value


def name(value, what="name"):
    """A design name: a non-empty string of printable characters."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or not value.isprintable() or len(value) > 200:
        raise HwgenError(f"{what} must be a non-empty printable string of at most 200 characters, not {shown(value)}")
    return value


def input_file(path, what):
    """An existing regular file to read; says what it is when it is not one."""
    p = os.fspath(path)
    if os.path.isdir(p):
        raise HwgenError(f"{what} {p}: is a directory; accepted: a file")
    if not os.path.exists(p):
        raise HwgenError(f"{what} {p}: no such file")
    if not os.path.isfile(p):
        raise HwgenError(f"{what} {p}: is not a regular file; accepted: a file")
    if not os.access(p, os.R_OK):
        raise HwgenError(f"{what} {p}: cannot be read (permission denied)")
    return p


_MODEL_ACCEPTED = "a QONNX file's path, an onnx.ModelProto or a qonnx ModelWrapper"


def model_source(model):
    """What :func:`hwgen.build` accepts as its model; returns it (a path as ``str``)."""
    if isinstance(model, (str, os.PathLike)):
        return input_file(model, "model")
    import onnx
    if isinstance(model, onnx.ModelProto) or isinstance(getattr(model, "model", None), onnx.ModelProto):
        return model                        # a ModelProto, or a qonnx ModelWrapper around one
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        raise HwgenError(f"model is a torch module ({type(model).__name__}); export it first with "
                         "hwgen.export_brevitas(module, example_input, 'model.onnx') and build that file")
    if isinstance(model, (bytes, bytearray)):
        raise HwgenError(f"model must be {_MODEL_ACCEPTED}, not {shown(model)} (for serialised bytes, pass "
                         "onnx.load_from_string(data))")
    raise HwgenError(f"model must be {_MODEL_ACCEPTED}, not {shown(model)}")


def output_file(path, what, *, inputs=()):
    """A file hwgen may (re)write: not a directory, not one of ``inputs``, its folder existing and writable."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise HwgenError(f"{what} must be a file path, not {shown(path)}")
    p = os.fspath(path)
    real = os.path.realpath(p)
    if any(isinstance(i, str) and os.path.realpath(i) == real for i in inputs):
        raise HwgenError(f"{what} {p}: is an input of this command; accepted: a new file or one hwgen may replace")
    if os.path.isdir(p):
        raise HwgenError(f"{what} {p}: is a directory; accepted: a file path")
    parent = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(parent):
        raise HwgenError(f"{what} {p}: folder {parent} does not exist")
    try:                                        # the one sure test (root passes every os.access check)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise HwgenError(f"{what} {p}: cannot write in {parent} ({e.strerror})") from None
    return p


def folding_source(folding):
    """``None``, a dict (its shape checked) or a folding file's path (``str``)."""
    from .dataflow.folding import check_folding_doc
    from .errors import FoldingError
    if folding is None:
        return None
    if isinstance(folding, dict):
        return check_folding_doc(folding)
    if isinstance(folding, (str, os.PathLike)):
        return input_file(folding, "folding file")
    raise FoldingError(f'folding must be a JSON file\'s path or a dict like {{"fc0": {{"pe": 4, "simd": 8}}}}, '
                       f"not {shown(folding)}")
