"""Long work seen through what it writes: a progress task, its log's path and the stage read from it.

Every long external step hwgen runs (the Verilator/Icarus compile, a simulation, a
yosys or nextpnr run, ``make`` of a build's flows) goes through here:

* :func:`follow` tails a file that another process is writing and hands each new
  line to a callback (in a thread, while the caller waits for the work);
* :func:`watched` is a :func:`hwgen.progress.task` naming the log, whose stage is
  read from the log as it grows (``stages``: a callable mapping a log line to a
  stage name or None, e.g. :class:`YosysStages`);
* :func:`run` runs a command inside :func:`watched`: its output passed through, or
  appended to the log, or read line by line with the ``[hwgen]`` lines of a
  child hwgen relayed as this task's own.

Stage readers for the tools' logs live here too, one small class per tool.
"""

import os
import re
import shlex
import subprocess
import threading
from collections import deque
from contextlib import contextmanager

from . import progress

__all__ = ["follow", "watched", "run", "YosysStages", "NextpnrStages", "CompileStages", "STAGES", "POLL_S"]

#: Seconds between two looks at a followed file.
POLL_S = 0.25


class _Follower(threading.Thread):
    def __init__(self, path, on_line, poll):
        super().__init__(name=f"hwgen-follow-{os.path.basename(path)}", daemon=True)
        self.path, self.on_line, self.poll = path, on_line, poll
        self.stop = threading.Event()
        self._f = None
        self._rest = ""

    def _read(self, final=False):
        if self._f is None:
            try:
                self._f = open(self.path, errors="replace", newline="")
            except OSError:
                return
        text = self._rest + self._f.read()
        lines = text.split("\n")
        self._rest = lines.pop()
        if final and self._rest:
            lines.append(self._rest)
            self._rest = ""
        for line in lines:
            try:
                self.on_line(line.rstrip("\r"))
            except Exception:  # noqa: BLE001, S110 - a reader's slip must not stop the work it watches
                pass

    def run(self):
        while not self.stop.wait(self.poll):
            self._read()

    def finish(self):
        self.stop.set()
        self.join()
        self._read(final=True)
        if self._f is not None:
            self._f.close()


@contextmanager
def follow(path, on_line, *, poll=None):
    """Call ``on_line(line)`` for each line appended to ``path`` while the block runs
    (the file may not exist yet); the last lines are read when the block ends."""
    f = _Follower(os.fspath(path), on_line, POLL_S if poll is None else poll)
    f.start()
    try:
        yield
    finally:
        f.finish()


@contextmanager
def watched(what, *, log=None, stages=None, enabled=True, heartbeat=None, total=None, unit=""):
    """A :func:`hwgen.progress.task` for work writing ``log``: every line names the log, and
    with ``stages`` (line -> stage name or None) the stage follows the log."""
    log = os.path.abspath(os.fspath(log)) if log is not None else None
    with progress.task(what, enabled=enabled, log=log, heartbeat=heartbeat, total=total, unit=unit) as t:
        if stages is None or log is None or not t.enabled:
            yield t
            return

        def on_line(line):
            s = stages(line)
            if s and s != t.stage:
                t.update(t.done, stage=s)      # at most every progress.UPDATE_S; the heartbeat names it too
        with follow(log, on_line):
            yield t


def _relay(t, line, kept):
    if line.startswith("[hwgen] "):
        t.note(line[len("[hwgen] "):])
    elif line.startswith("hwgen: warning: "):
        progress.warn(line[len("hwgen: warning: "):])
    elif line.strip():
        kept.append(line)


def run(cmd, what, *, log=None, stages=None, output="inherit", enabled=True, heartbeat=None, env=None, cwd=None,
        announce=True):
    """Run ``cmd`` inside :func:`watched` and return ``(returncode, lines)``.

    ``output``: ``"inherit"`` (the command's output goes where ours goes; ``lines`` is
    empty), ``"log"`` (appended to ``log``; ``lines`` are its last lines on failure) or
    ``"relay"`` (read line by line: a child hwgen's ``[hwgen]`` lines become lines of
    this task, its warnings ours, the other lines are returned, the last 200).
    ``announce``: a first line showing the command.  With ``"relay"`` the task's own
    heartbeat (default 1.5 x :data:`hwgen.progress.HEARTBEAT_S`) only speaks when the child
    says nothing."""
    cmd = [os.fspath(c) for c in cmd]
    if announce:
        progress.info(f"{what}: {shlex.join(cmd)}".replace("\n", "\\n"), enabled=enabled)
    kept = deque(maxlen=200)
    if output == "relay" and heartbeat is None:
        heartbeat = 1.5 * progress.HEARTBEAT_S     # the child's own heartbeat comes first
    try:
        with watched(what, log=log, stages=stages, enabled=enabled, heartbeat=heartbeat) as t:
            rc = _execute(cmd, t, output, log, env, cwd, kept)
            if rc:
                raise _Failed()           # so that the task's last line says "failed after …"
    except _Failed:
        pass
    return rc, list(kept)


class _Failed(Exception):
    pass


def _execute(cmd, t, output, log, env, cwd, kept):
    if output == "relay":
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                             env=env, cwd=cwd, bufsize=1)
        try:
            for line in p.stdout:
                _relay(t, line.rstrip("\n"), kept)
        finally:
            p.stdout.close()
            rc = p.wait()
        return rc
    if output == "log":
        os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
        with open(log, "ab") as f:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd).returncode
        if rc:
            with open(log, errors="replace") as f:
                kept.extend(l.rstrip("\n") for l in f if l.strip())
        return rc
    if output == "inherit":
        return subprocess.run(cmd, env=env, cwd=cwd).returncode
    raise ValueError(f"output must be inherit, log or relay, not {output!r}")


# --------------------------------------------------------------------------- stage readers
class YosysStages:
    """Stages of a yosys log: the numbered pass headings (``4.42. Executing ABC9 pass.``),
    as "<top-level command> / <pass>"; each synthesis command is counted ("synth_ecp5 #2")."""

    _HEAD = re.compile(r"^(\d+)((?:\.\d+)*)\.\s+(?:Executing\s+)?(.+?)(?:\s+pass)?(?:\s*\(.*)?\.*$")

    def __init__(self):
        self.top = None
        self.count = {}

    def __call__(self, line):
        m = self._HEAD.match(line)
        if not m:
            return None
        name = m.group(3).split(":")[0].strip()
        depth = m.group(2).count(".")
        if depth == 0:
            self.count[name] = self.count.get(name, 0) + 1
            k = self.count[name]
            self.top = name if k == 1 else f"{name} #{k}"
            return f"step {m.group(1)}: {self.top}"
        if depth == 1 and self.top:
            return f"step {m.group(1)}{m.group(2)}: {self.top} / {name}"
        return None


class NextpnrStages:
    """Stages of a nextpnr log: packing, placing (analytic, annealing), routing (arcs left), timing."""

    _RULES = (
        (re.compile(r"^Info: Packing"), "packing"),
        (re.compile(r"^Info: (Creating initial analytic placement|Running main analytical placer)"), "placing (analytic)"),
        (re.compile(r"^Info: Running simulated annealing placer"), "placing (annealing)"),
        (re.compile(r"^Info: (Routing globals|Routing\.\.|Setting up routing queue|Running router2)"), "routing"),
        (re.compile(r"^Info: Critical path report"), "timing report"),
    )
    _ARCS = re.compile(r"^Info:\s+\d+\s*\|.*\|\s*(\d+)\s*\|[^|]*\|\s*$")

    def __init__(self):
        self.stage = None

    def __call__(self, line):
        for rx, stage in self._RULES:
            if rx.match(line):
                self.stage = stage
                return stage
        m = self._ARCS.match(line)
        if m and self.stage == "routing":
            return f"routing, {int(m.group(1)):,} arcs left"
        return None


class CompileStages:
    """Stages of a Verilator build log: Verilog to C++, then the C++ compile (objects built)."""

    def __init__(self):
        self.objects = 0
        self.cxx = False

    def __call__(self, line):
        s = line.lstrip()
        if re.match(r"^(make(\[\d+\])?:|\$ make |ccache |(\S*/)?(g\+\+|clang\+\+|c\+\+) )", s):
            if " -c " in s and " -o " in s:
                self.objects += 1
            self.cxx = True
            return f"C++ compile, {self.objects} object{'s' if self.objects != 1 else ''} started" \
                if self.objects else "C++ compile"
        if not self.cxx and line.startswith("- V e r i l a t i o n"):
            return "Verilog to C++ done"
        return None


#: stage readers by name (the Makefile's runner names them)
STAGES = {"yosys": YosysStages, "nextpnr": NextpnrStages, "compile": CompileStages}
