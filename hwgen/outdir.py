"""The output directory of a build: checked before any work, replaced atomically.

``hwgen build … -o OUT`` may write to

* a path that does not exist yet (missing parent folders are created, and removed
  again when the build fails), or
* a directory that ``hwgen build`` itself wrote: it holds a ``manifest.json`` of
  format ``hwgen-build/…`` and nothing but what hwgen and its flows write there
  (:data:`HWGEN_ENTRIES`).

Anything else — a directory holding other files, ``.``, a file, the input model or
a directory containing it — is refused before any work, with one line.  ``force``
replaces a directory or file that is not hwgen's, but never the input model or a
directory containing it.

:class:`OutputDir` claims the output for one build: it creates the staging
directory ``PARENT/.hwgen-NAME.building`` (the claim: a second build into the same
``OUT`` finds it and stops with an error, unless the process that made it is gone),
the build writes there, and :meth:`OutputDir.commit` swaps it into place with one
``renameat2(RENAME_EXCHANGE)`` where the kernel has it (two renames otherwise), so
``OUT`` is at every instant either the previous build or the new one.  A failure,
Ctrl-C included, removes the staging directory and leaves ``OUT`` as it was.
"""

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import time

from .errors import HwgenError

__all__ = ["OutputDir", "OutputError", "check_output", "is_hwgen_build", "HWGEN_ENTRIES", "MANIFEST_PREFIX"]

MANIFEST_PREFIX = "hwgen-build/"

#: What ``hwgen build`` and the flows it writes put at the top of a build directory.
HWGEN_ENTRIES = frozenset({
    "rtl", "manifest.json", "model.json", "params.npz", "report.md", "report.json", "source.onnx",
    "folding.json", "steps", "Makefile", "flows", "vivado", "synth", "pnr", "bitstream", "sim", "board", "deploy",
})

_OWNER = "owner.json"


class OutputError(HwgenError):
    """The output path cannot or must not be written."""


def _manifest_format(path):
    try:
        with open(os.path.join(path, "manifest.json")) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    return fmt if isinstance(fmt, str) else None


def is_hwgen_build(path):
    """True when ``path`` is a directory holding a hwgen build manifest."""
    fmt = _manifest_format(path)
    return os.path.isdir(path) and fmt is not None and fmt.startswith(MANIFEST_PREFIX)


def _contains(directory, path):
    """``path`` is ``directory`` or lies below it (both real paths)."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _real(p):
    return os.path.realpath(os.path.abspath(os.fspath(p)))


def _nearest_existing(path):
    p = path
    while not os.path.lexists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


def check_output(out, *, inputs=(), force=False):
    """Refuse an output path hwgen must not replace (see the module's docstring).

    ``inputs``: paths the build reads (the model, a folding file); the output may not be
    one of them or contain one.  Returns the absolute output path."""
    out_abs = os.path.abspath(os.fspath(out))
    real = _real(out_abs)
    shown = os.fspath(out)
    for src in inputs:
        if src is None:
            continue
        s = _real(src)
        if _contains(real, s):
            what = "is" if s == real else "contains"
            raise OutputError(f"-o {shown}: {what} the input {os.fspath(src)}; accepted: a new path or a directory "
                              "hwgen build wrote that holds none of the build's inputs")
    if real == _real(os.getcwd()) and not force:
        raise OutputError(f"-o {shown}: is the current directory; accepted: a new path or a directory hwgen build "
                          "wrote (--force replaces it)")
    if os.path.lexists(out_abs):
        if os.path.islink(out_abs):
            raise OutputError(f"-o {shown}: is a symbolic link; accepted: a new path or a directory hwgen build wrote")
        if not os.path.isdir(out_abs):
            if not force:
                raise OutputError(f"-o {shown}: is an existing file; accepted: a new path or a directory hwgen build "
                                  "wrote (--force replaces it)")
        elif not force:
            entries = sorted(os.listdir(out_abs))
            if not is_hwgen_build(out_abs):
                if entries:
                    raise OutputError(f"-o {shown}: is a directory holding files hwgen did not write (no hwgen "
                                      f"manifest.json; e.g. {entries[0]}); accepted: a new path or a directory hwgen "
                                      "build wrote (--force replaces it)")
            else:
                foreign = [e for e in entries if e not in HWGEN_ENTRIES]
                if foreign:
                    raise OutputError(f"-o {shown}: is a hwgen build that also holds {foreign[0]!r}, which hwgen "
                                      "did not write; move it out or pass --force to replace the whole directory")
    parent = os.path.dirname(out_abs)
    base = _nearest_existing(parent)
    if not os.path.isdir(base):
        raise OutputError(f"-o {shown}: {base} is not a directory; accepted: a path whose parent is a writable directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"-o {shown}: {base} is not writable; accepted: a path whose parent is a writable directory")
    return out_abs


# --------------------------------------------------------------------------- atomic exchange
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _libc():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = lib.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _libc()


def exchange(a, b):
    """Swap two existing paths atomically; False when the system cannot (then nothing changed)."""
    if _renameat2 is None:
        return False
    r = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if r == 0:
        return True
    e = ctypes.get_errno()
    if e in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(e, os.strerror(e), a)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


class OutputDir:
    """One build's claim on its output path: ``with OutputDir(out, …) as o: write into o.path; o.commit()``."""

    def __init__(self, out, *, inputs=(), force=False):
        self.out = check_output(out, inputs=inputs, force=force)
        self.shown = os.fspath(out)
        self.parent = os.path.dirname(self.out)
        self.staging = os.path.join(self.parent, f".hwgen-{os.path.basename(self.out)}.building")
        self.path = os.path.join(self.staging, "new")
        self._made_parents = []
        self._claimed = False
        self.committed = False

    # -- claim -------------------------------------------------------------------------
    def _make_parents(self):
        missing = []
        p = self.parent
        while not os.path.exists(p):
            missing.append(p)
            p = os.path.dirname(p)
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                continue
            except OSError as e:
                raise OutputError(f"-o {self.shown}: cannot create {d} ({e.strerror}); accepted: a path whose "
                                  "parent is a writable directory") from None
            self._made_parents.append(d)

    def _claim(self):
        for _ in range(2):
            try:
                os.mkdir(self.staging)
                break
            except FileExistsError:
                owner = self._live_owner()
                if owner:
                    raise OutputError(f"-o {self.shown}: another hwgen build ({owner}) is writing it; wait for it "
                                      f"to finish (its work is in {self.staging})") from None
                _remove(self.staging)           # left by a build that died: take it over
            except OSError as e:
                raise OutputError(f"-o {self.shown}: cannot write in {self.parent} ({e.strerror}); accepted: a "
                                  "path whose parent is a writable directory") from None
        else:
            raise OutputError(f"-o {self.shown}: another hwgen build is writing it (its work is in {self.staging})")
        self._claimed = True
        with open(os.path.join(self.staging, _OWNER), "w") as f:
            json.dump({"pid": os.getpid()}, f)
        os.mkdir(self.path)

    def _live_owner(self):
        """Who holds the staging directory, if that build still runs ("process N"), else None."""
        try:
            with open(os.path.join(self.staging, _OWNER)) as f:
                pid = int(json.load(f)["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            # no owner yet: being claimed this very moment (young), or left half-made (old)
            try:
                young = time.time() - os.path.getmtime(self.staging) < 60
            except OSError:
                return None
            return "starting" if young else None
        return f"process {pid}" if _pid_alive(pid) else None

    def __enter__(self):
        self._make_parents()
        self._claim()
        return self

    # -- commit ------------------------------------------------------------------------
    def commit(self):
        """Put the staged build in place of the output path (atomically), then drop the old one."""
        if not os.path.lexists(self.out):
            os.rename(self.path, self.out)
        elif exchange(self.path, self.out):
            pass                                # self.path now holds the previous output
        else:
            old = os.path.join(self.staging, "old")
            os.rename(self.out, old)
            os.rename(self.path, self.out)
        self.committed = True

    def __exit__(self, exc_type, exc, tb):
        if self._claimed:
            _remove(self.staging)
        if not self.committed:
            for d in reversed(self._made_parents):
                try:
                    os.rmdir(d)
                except OSError:
                    break
        return False
