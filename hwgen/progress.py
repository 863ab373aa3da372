"""One way to report progress: ``[hwgen] …`` lines on standard error.

Everything long that hwgen does runs inside a :func:`task`::

    with progress.task("Verilator compile", log=path) as t:
        run(...)                      # a line at the start; every ``heartbeat`` seconds a line
                                      # with the elapsed time (and the log's path); a line at the end
    with progress.task("simulate", total=frames, unit="frames") as t:
        for ...:
            t.advance()               # "simulate: 120/1000 frames, 12 s" at most every few seconds

A heartbeat line comes whenever a task has said nothing for :data:`HEARTBEAT_S`
seconds (``Task.note`` says something on its behalf, e.g. a line relayed from the
subprocess doing the work; :mod:`hwgen.watch` runs external tools this way).

A disabled task (``enabled=False``, or :func:`set_quiet`) prints nothing.  Lines
go through the standard :mod:`logging` logger ``"hwgen"``, so a script can take
them with its own handler; when the logger has none, :func:`task` adds one that
writes ``[hwgen] message`` to ``sys.stderr`` (looked up at each write, so
redirection and pytest's capture work).  Warnings (:func:`warn`) are printed
even when progress is disabled: ``hwgen: warning: …``.
"""

import logging
import os
import sys
import threading
import time

__all__ = ["task", "info", "warn", "set_quiet", "logger", "Task", "HEARTBEAT_S"]

logger = logging.getLogger("hwgen")

#: Seconds between the heartbeat lines of a task that is still running (a task made without
#: ``heartbeat=`` reads it when it starts; the environment variable ``HWGEN_HEARTBEAT_S`` sets
#: it for a whole process, e.g. the helper that ``make`` runs in a build's Makefile).
try:
    HEARTBEAT_S = float(os.environ.get("HWGEN_HEARTBEAT_S", "") or 10.0)
except ValueError:
    HEARTBEAT_S = 10.0
#: Least seconds between two counted-progress lines of one task.
UPDATE_S = 5.0

_quiet = False


class _StderrHandler(logging.Handler):
    """Writes each record as one line to the *current* ``sys.stderr``."""

    def emit(self, record):
        try:
            msg = record.getMessage()
            prefix = "hwgen: warning: " if record.levelno >= logging.WARNING else "[hwgen] "
            sys.stderr.write(prefix + msg + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):       # a closed or broken stream must not break a build
            pass


_handler = _StderrHandler()


def _ensure_handler():
    if not logger.handlers:
        logger.addHandler(_handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)


def set_quiet(quiet=True):
    """Silence (or restore) every progress line of this process; warnings stay."""
    global _quiet
    _quiet = bool(quiet)


def info(message, enabled=True):
    """One progress line (nothing when disabled)."""
    if enabled and not _quiet:
        _ensure_handler()
        logger.info(message)


def warn(message):
    """A warning line, ``hwgen: warning: …`` (printed even when progress is disabled)."""
    _ensure_handler()
    logger.warning(" ".join(str(message).split()))


def _fmt_s(s):
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


class Task:
    """A long piece of work; use through :func:`task`."""

    def __init__(self, what, *, enabled=True, total=None, unit="", log=None, heartbeat=None):
        self.what = what
        self.enabled = enabled and not _quiet
        self.total = total
        self.unit = unit
        self.log = log
        self.heartbeat = HEARTBEAT_S if heartbeat is None else heartbeat
        self.done = 0
        self.stage = None
        self.t0 = None
        self.seconds = None
        self._last = 0.0
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    # -- what a caller says while it works --------------------------------------------
    def advance(self, n=1):
        """``n`` more units done (prints at most every :data:`UPDATE_S` seconds)."""
        self.update(self.done + n)

    def update(self, done, stage=None):
        """``done`` units done so far (and optionally the stage it is in)."""
        with self._lock:
            self.done = done
            if stage is not None:
                self.stage = stage
            now = time.perf_counter()
            due = now - self._last >= UPDATE_S
            if due:
                self._last = now
        if due:
            self._say(self._status())

    def set_stage(self, stage):
        """Name the stage the work is in now (printed at once)."""
        with self._lock:
            self.stage = stage
            self._last = time.perf_counter()
        self._say(self._status())

    def note(self, message):
        """A line of this task's own wording (e.g. relayed from the subprocess doing the
        work); it counts as a heartbeat."""
        with self._lock:
            self._last = time.perf_counter()
        self._say(message)

    def elapsed(self):
        return 0.0 if self.t0 is None else time.perf_counter() - self.t0

    # -- lines ------------------------------------------------------------------------
    def _count(self):
        if self.total is None and not self.done:
            return ""
        of = f"/{self.total:,}" if self.total is not None else ""
        return f"{self.done:,}{of}{' ' + self.unit if self.unit else ''}"

    def _status(self):
        parts = [p for p in (self.stage, self._count(), _fmt_s(self.elapsed())) if p]
        s = f"{self.what}: " + ", ".join(parts)
        if self.log:
            s += f" (log: {self.log})"
        return s

    def _say(self, message):
        if self.enabled:
            info(message)

    def _beat(self):
        # a line whenever the task has said nothing for `heartbeat` seconds
        while not self._stop.is_set():
            with self._lock:
                wait = self._last + self.heartbeat - time.perf_counter()
                if wait <= 0:
                    self._last = time.perf_counter()
            if wait > 0:
                if self._stop.wait(wait):
                    return
                continue
            self._say(self._status())

    # -- context manager --------------------------------------------------------------
    def __enter__(self):
        self.t0 = time.perf_counter()
        self._last = self.t0
        first = f"{self.what} …"
        if self.total is not None:
            first = f"{self.what}: {self.total:,} {self.unit} …".replace("  ", " ")
        if self.log:
            first += f" (log: {self.log})"
        self._say(first)
        if self.enabled and self.heartbeat:
            self._thread = threading.Thread(target=self._beat, name=f"hwgen-progress-{self.what}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.seconds = self.elapsed()
        if exc_type is None:
            count = self._count()
            self._say(f"{self.what}: {count + ', ' if count else ''}{_fmt_s(self.seconds)}")
        elif issubclass(exc_type, KeyboardInterrupt):
            self._say(f"{self.what}: interrupted after {_fmt_s(self.seconds)}")
        else:
            self._say(f"{self.what}: failed after {_fmt_s(self.seconds)}"
                      + (f" (log: {self.log})" if self.log else ""))
        return False


def task(what, *, enabled=True, total=None, unit="", log=None, heartbeat=None):
    """A context manager reporting the start, a heartbeat and the end of ``what``.

    ``total``/``unit``: counted work (``Task.advance``/``Task.update``); ``log``: the path of
    the log the work writes, named in every line; ``heartbeat``: seconds between the lines
    of a task still running (0: none; default :data:`HEARTBEAT_S`)."""
    return Task(what, enabled=enabled, total=total, unit=unit, log=log, heartbeat=heartbeat)
