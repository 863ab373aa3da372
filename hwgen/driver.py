"""The host driver of a hwgen board: float inputs in, float outputs out, over the UART host link.

:class:`Accelerator` talks hwgen-link/1 (:mod:`hwgen.shell.protocol`) to a board programmed with
a build's bitstream::

    from hwgen.driver import Accelerator
    with Accelerator("OUT", "/dev/ttyUSB0") as acc:
        y = acc.predict(x)                  # float model inputs -> float model outputs
        print(acc.stats.line())

``path`` is a build directory made with ``hwgen build --board`` (``manifest.json`` and
``board/board.json``) or the directory ``hwgen deploy`` writes (``manifest.json`` and
``board.json`` side by side).  The host head turns the inputs into the first quantiser's
integers, :func:`hwgen.streams.pack` into the stream words of each frame (the manifest's
``input``: dtype, lanes, ``tdata_bits``), each word ``tdata_bits / 8`` bytes little-endian in a
DATA packet; the RESULT packets' words go back through :func:`hwgen.streams.unpack` and the tail.
:class:`Codec` is that packing, shared with the PYNQ driver (:mod:`hwgen.pynq_driver`).

Frames are *pipelined*: up to ``window`` frames (default the device's ``buffer_frames``) are in
flight at once, numbered ``seq = frame mod 256``, and no frame more than ``window`` ahead of the
oldest unanswered one is sent, so a ``seq`` names one frame without doubt.  A RESULT is matched to
its frame by ``seq``; a duplicate or late one (a frame answered twice after a resend) is dropped.
A frame that gets a NAK is sent again at once (a ``frame buffer full`` NAK after a short pause),
one without an answer within ``timeout`` seconds (plus the time the frames in flight take on the
line at the baud rate) likewise; after ``retries`` resends of one frame
the driver stops with one line naming the frame, the NAKs it got and the last reason.  Every read
has a deadline: a dead or silent device ends in a :class:`~hwgen.errors.HwgenError`, never a hang.

This module imports only numpy, (lazily) pyserial and hwgen modules that import only numpy
(:mod:`hwgen.host`, :mod:`hwgen.streams`, :mod:`hwgen.dtypes`, :mod:`hwgen.errors`,
:mod:`hwgen.shell.protocol`): ``hwgen deploy`` copies them into a standalone package.
"""

import json
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from .errors import HwgenError
from .host import apply_head, apply_tail
from .shell.protocol import (DATA, INFO, INFO_REPLY, NAK, NAK_BUSY, NAK_CODES, RESULT, VERSION, Decoder, LinkParams,
                             bytes_to_words, packet, words_to_bytes)
from .streams import pack, unpack

__all__ = ["Accelerator", "Codec", "LinkStats", "load_dir", "design_id", "BOARD_FORMAT", "BUILD_FORMAT",
           "DEFAULT_RETRIES"]

BOARD_FORMAT = "hwgen-board/1"
BUILD_FORMAT = "hwgen-build/1"
DEFAULT_RETRIES = 8
_POLL_S = 0.02              # longest single wait on the port
_BUSY_PAUSE_S = 0.005       # a frame the device had no room for waits this long before it is sent again
_MAX_WINDOW = 128           # seq is a byte: frames in flight must span less than half of 256


def _read_json(path, what, fmt):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise HwgenError(f"{path}: cannot be read ({e.strerror or e})") from None
    except ValueError as e:
        raise HwgenError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise HwgenError(f"{path}: {what} format must be {fmt!r}, not {got!r}")
    return doc


def load_dir(path):
    """``(manifest, board, board_dir)`` of a build directory (``manifest.json``, ``board/board.json``)
    or a deploy directory (``manifest.json``, ``board.json``); ``board_dir`` is the folder holding
    board.json (the bitstream path in it is relative to the build directory, or to the deploy directory)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise HwgenError(f"{path}: not a directory; accepted: a build directory made with `hwgen build --board` "
                         "or the directory `hwgen deploy` wrote")
    mpath = os.path.join(path, "manifest.json")
    if not os.path.isfile(mpath):
        raise HwgenError(f"{path}: no manifest.json; accepted: a build directory made with `hwgen build --board` "
                         "or the directory `hwgen deploy` wrote")
    for cand in (os.path.join(path, "board.json"), os.path.join(path, "board", "board.json")):
        if os.path.isfile(cand):
            bpath = cand
            break
    else:
        raise HwgenError(f"{path}: no board.json (neither {os.path.join(path, 'board.json')} nor "
                         f"{os.path.join(path, 'board', 'board.json')}); build with `hwgen build MODEL -o OUT --board B` "
                         "to make a board build")
    manifest = _read_json(mpath, "manifest", BUILD_FORMAT)
    for side in ("input", "output"):
        s = manifest.get(side)
        if not isinstance(s, dict) or not all(k in s for k in ("shape", "dtype", "lanes", "tdata_bits",
                                                                 "words_per_frame")):
            raise HwgenError(f"{mpath}: {side} stream description missing; accepted: a manifest written by `hwgen build`")
    board = _read_json(bpath, "board", BOARD_FORMAT)
    for key in ("design_id", "baud"):
        if not isinstance(board.get(key), int) or isinstance(board.get(key), bool):
            raise HwgenError(f"{bpath}: {key} must be an integer, not {board.get(key)!r}")
    return manifest, board, path


def design_id(out_dir, manifest):
    """The design id a board build reports: the first 4 bytes (little-endian) of the SHA-256 of the
    manifest's Verilog files, in order, then its ROM files."""
    import hashlib
    h = hashlib.sha256()
    for rel in list(manifest["verilog"]) + list(manifest.get("memfiles", [])):
        with open(os.path.join(os.fspath(out_dir), rel), "rb") as f:
            h.update(f.read())
    return int.from_bytes(h.digest()[:4], "little")


class Codec:
    """Float inputs ↔ integer frames ↔ stream words ↔ bytes, as ``manifest.json`` says: the one
    packing code of every hwgen driver (UART and PYNQ)."""

    def __init__(self, manifest):
        self.head, self.tail = manifest.get("head") or None, manifest.get("tail") or None
        self.mi, self.mo = manifest["input"], manifest["output"]
        self.in_shape, self.out_shape = tuple(self.mi["shape"]), tuple(self.mo["shape"])
        self.in_bits, self.out_bits = int(self.mi["tdata_bits"]), int(self.mo["tdata_bits"])
        self.in_words, self.out_words = int(self.mi["words_per_frame"]), int(self.mo["words_per_frame"])

    # floats <-> integers
    def to_ints(self, x):
        """Float model inputs (N, *input_shape[1:]) → integer frames (N, *input shape of the stream)."""
        if not self.head:
            raise HwgenError("manifest.json has no host head; use predict_int with integer frames")
        x = np.asarray(x, dtype=np.float64)
        want = tuple(self.head["input_shape"][1:])
        if x.ndim == len(want):
            x = x[None]
        return apply_head(self.head, x)

    def to_floats(self, y_int):
        """Integer output frames → float model outputs (the tail; float64 of the integers without one)."""
        return apply_tail(self.tail, y_int) if self.tail else np.asarray(y_int, dtype=np.float64)

    # integers <-> words
    def frames(self, x_int):
        """Integer frames (N, *shape) → a list of N lists of stream words (:func:`hwgen.streams.pack`)."""
        x_int = np.asarray(x_int)
        if x_int.shape[1:] != self.in_shape:
            if x_int.shape == self.in_shape:
                x_int = x_int[None]
            else:
                raise HwgenError(f"input frames: shape {x_int.shape[1:]} must be {self.in_shape} (after the batch axis)")
        if not np.issubdtype(x_int.dtype, np.integer):
            if not np.array_equal(x_int, np.round(x_int)):
                raise HwgenError("input frames must be integers (the first quantiser's output); float model inputs "
                                 "go to predict()")
            x_int = x_int.astype(np.int64)
        frames = pack(x_int, self.mi["dtype"], int(self.mi["lanes"]))
        if frames and len(frames[0]) != self.in_words:
            raise HwgenError(f"manifest.json: input.words_per_frame={self.in_words} but the frame packs into "
                             f"{len(frames[0])} words")
        return frames

    def values(self, frames):
        """Output word lists → integer output frames (N, *output shape) (:func:`hwgen.streams.unpack`)."""
        return unpack(frames, self.mo["dtype"], int(self.mo["lanes"]), self.out_shape)

    # words <-> bytes
    @staticmethod
    def to_bytes(words, word_bytes):
        """Stream words → bytes, ``word_bytes`` little-endian bytes per word."""
        return words_to_bytes(words, word_bytes)

    @staticmethod
    def from_bytes(data, word_bytes, bits):
        """Bytes → stream words (``word_bytes`` bytes each, little-endian, bits above ``bits`` dropped)."""
        mask = (1 << bits) - 1
        return [w & mask for w in bytes_to_words(data, word_bytes)]


@dataclass
class LinkStats:
    """What the link did, summed over every call of one :class:`Accelerator`."""
    frames: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    retries: int = 0                     # DATA packets sent again (after a NAK or a timeout)
    timeouts: int = 0                    # frames that got no answer in time
    naks: Counter = field(default_factory=Counter)   # reason text -> count
    duplicates: int = 0                  # RESULTs dropped as duplicate or late
    bad_packets: int = 0                 # packets from the device with a bad CRC or length
    elapsed: float = 0.0                 # seconds spent in predict / predict_int

    @property
    def fps(self):
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self):
        return {"frames": self.frames, "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "retries": self.retries, "timeouts": self.timeouts, "naks": dict(self.naks),
                "duplicates": self.duplicates, "bad_packets": self.bad_packets, "elapsed": self.elapsed,
                "frames_per_s": self.fps}

    def line(self):
        naks = ", ".join(f"{n} {r}" for r, n in sorted(self.naks.items())) or "none"
        return (f"{self.frames} frames in {self.elapsed:.3f} s ({self.fps:.1f} frames/s); sent {self.bytes_sent} B, "
                f"received {self.bytes_received} B; retries {self.retries}, timeouts {self.timeouts}, NAKs: {naks}, "
                f"duplicates dropped {self.duplicates}, bad packets {self.bad_packets}")


def _nak_text(payload):
    code = payload[0] if len(payload) == 1 else None
    return NAK_CODES.get(code, f"unknown NAK reason {bytes(payload).hex() or 'none'}")


class Accelerator:
    """A hwgen board on a serial port (see the module's docstring).

    ``serial``: an object with ``read(n)``, ``write(data)`` and ``reset_input_buffer()`` to use
    instead of opening ``port`` with pyserial (a test's fake device).  ``baud`` defaults to the
    board's; ``timeout`` is how long one frame may go unanswered before it is sent again;
    ``window``: frames in flight (default the device's ``buffer_frames``); ``retries``: resends of
    one frame before giving up."""

    def __init__(self, path, port="/dev/ttyUSB0", *, baud=None, timeout=2.0, window=None, serial=None,
                 retries=DEFAULT_RETRIES):
        self.manifest, self.board, self.path = load_dir(path)
        self.codec = Codec(self.manifest)
        self.port = port if serial is None else getattr(serial, "port", None) or port
        self.baud = int(baud) if baud is not None else int(self.board["baud"])
        try:
            self.timeout = float(timeout)
        except (TypeError, ValueError):
            self.timeout = -1.0
        if not self.timeout > 0:
            raise HwgenError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if window is not None and (not isinstance(window, int) or isinstance(window, bool)
                                   or not 1 <= window <= _MAX_WINDOW):
            raise HwgenError(f"window must be an integer from 1 to {_MAX_WINDOW} (frames in flight), not {window!r}")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise HwgenError(f"retries must be a non-negative integer, not {retries!r}")
        self.window, self.retries = window, retries
        self.params = LinkParams.from_manifest(self.manifest, buffer_frames=int(self.board.get("buffer_frames", 2)),
                                               design_id=int(self.board["design_id"]),
                                               clock_hz=int(self.board.get("clock_hz", 0)), baud=self.baud)
        self.stats = LinkStats()
        self.device = None               # the device's INFO_REPLY, once info() has run
        self._decoder = Decoder()
        self._seq = 0
        self._ser = serial if serial is not None else self._open(port)
        if getattr(self._ser, "timeout", 0) is None:        # a blocking port: give every read a deadline
            self._ser.timeout = _POLL_S

    def _open(self, port):
        try:
            import serial as pyserial
        except ImportError:
            raise HwgenError("link: pyserial is not installed (pip install pyserial); it opens the board's "
                             "serial port") from None
        try:
            return pyserial.Serial(port, self.baud, timeout=min(_POLL_S, self.timeout), write_timeout=self.timeout)
        except (OSError, ValueError) as e:      # serial.SerialException is an OSError
            raise HwgenError(f"link: cannot open serial port {port} at {self.baud} baud ({e}); is the board "
                             "plugged in and the port right (--port)?") from None

    # -- context ---------------------------------------------------------------------
    def close(self):
        close = getattr(self._ser, "close", None)
        if close is not None:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- the line ----------------------------------------------------------------------
    def _write(self, data):
        try:
            self._ser.write(data)
        except (OSError, ValueError) as e:
            raise HwgenError(f"link: writing to {self.port} failed ({e})") from None
        self.stats.bytes_sent += len(data)

    def _read(self):
        """The packets completed by what the port has now (waiting at most one poll interval)."""
        try:
            n = getattr(self._ser, "in_waiting", 0) or 1
            data = self._ser.read(n)
        except (OSError, ValueError) as e:
            raise HwgenError(f"link: reading from {self.port} failed ({e})") from None
        if not data:
            return []
        self.stats.bytes_received += len(data)
        before = self._decoder.errors
        done = self._decoder.feed(data)
        self.stats.bad_packets += self._decoder.errors - before
        return done

    def _flush(self):
        reset = getattr(self._ser, "reset_input_buffer", None)
        if reset is not None:
            reset()
        self._decoder = Decoder()

    # -- INFO ------------------------------------------------------------------------
    def info(self):
        """Ask the device who it is; check it is a hwgen-link/1 device running this build. Returns its
        INFO_REPLY as a dict (also kept in :attr:`device`)."""
        self._flush()
        tries = self.retries + 1
        for _ in range(tries):
            self._write(packet(INFO, self._seq))
            self._seq = (self._seq + 1) % 256
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                for kind, _seq, payload in self._read():
                    if kind == INFO_REPLY:
                        return self._check_info(LinkParams.parse_info(payload))
        raise HwgenError(f"link: no answer to INFO from {self.port} within {self.timeout:g} s ({tries} tries); is "
                         f"the board programmed with this build's bitstream, the port right and the baud {self.baud}?")

    def _check_info(self, d):
        p = self.params
        if d["version"] != VERSION:
            raise HwgenError(f"link: the device on {self.port} speaks hwgen-link/{d['version']}, this driver "
                             f"hwgen-link/{VERSION}: wrong bitstream or an older hwgen; rebuild the bitstream")
        if d["design_id"] != p.design_id:
            raise HwgenError(f"link: the device on {self.port} runs design {d['design_id']:#010x}, this build "
                             f"({self.path}) is design {p.design_id:#010x}: wrong bitstream; program the board with "
                             "this build's bitstream or use the build the board runs")
        if (d["in_bytes"], d["out_bytes"]) != (p.in_bytes, p.out_bytes):
            raise HwgenError(f"link: the device on {self.port} takes {d['in_bytes']}-byte frames and returns "
                             f"{d['out_bytes']}-byte ones, this build {p.in_bytes} and {p.out_bytes}: wrong bitstream")
        if d["buffer_frames"] < 1:
            raise HwgenError(f"link: the device on {self.port} reports a buffer of {d['buffer_frames']} frames; "
                             "accepted: at least 1")
        self.device = d
        return d

    # -- frames ------------------------------------------------------------------------
    def predict(self, x):
        """Float model inputs (N, *input_shape[1:]) → float model outputs (N, *output_shape[1:]), in input order."""
        return self.codec.to_floats(self.predict_int(self.codec.to_ints(x)))

    def predict_int(self, frames_int):
        """Integer input frames (N, *input stream shape) → integer output frames (N, *output stream shape)."""
        frames = self.codec.frames(frames_int)
        out = self.run_words(frames)
        return self.codec.values(out)

    def frame_timeout(self, window):
        """Seconds a frame may go unanswered with ``window`` frames in flight: ``timeout`` plus the time
        the window's packets take on the line (10 bits a byte, both ways, stuffing at most doubling them)."""
        p = self.params
        line_s = 10.0 / self.baud if self.baud > 0 else 0.0
        return self.timeout + window * (2 * (p.in_bytes + p.out_bytes) + 12) * line_s

    def run_words(self, frames):
        """Lists of input stream words, one per frame → lists of output stream words, in the same order."""
        if self.device is None:
            self.info()
        p = self.params
        n = len(frames)
        payloads = [Codec.to_bytes(words, p.in_word_bytes) for words in frames]
        window = min(self.window or self.device["buffer_frames"], _MAX_WINDOW)
        allowance = self.frame_timeout(window)
        base = self._seq
        results = [None] * n
        tries = [0] * n
        naks = [Counter() for _ in range(n)]
        last = [""] * n
        inflight = {}                    # frame -> time it was last sent
        resend = deque()                 # (not before, frame)
        low = nxt = 0
        start = time.monotonic()

        def send(j, now):
            tries[j] += 1
            if tries[j] > 1:
                if tries[j] > self.retries + 1:
                    got = ", ".join(f"{c} {r}" for r, c in sorted(naks[j].items())) or "none"
                    raise HwgenError(f"link: frame {j} (of {n}) got no result after {tries[j] - 1} tries (NAKs: {got}; "
                                     f"last: {last[j]}); check the cable, the port and the baud ({self.baud}), or "
                                     "lower the window")
                self.stats.retries += 1
            self._write(packet(DATA, (base + j) % 256, payloads[j]))
            inflight[j] = now

        def frame_of(seq):
            j = (seq - base - nxt) % 256 + nxt - 256         # the frame in [nxt - 256, nxt) with this seq
            return j if 0 <= j < nxt else None

        try:
            while low < n:
                now = time.monotonic()
                for j, t in list(inflight.items()):
                    if now - t > allowance:
                        del inflight[j]
                        self.stats.timeouts += 1
                        last[j] = f"no answer within {allowance:.3g} s"
                        resend.append((now, j))
                for _ in range(len(resend)):
                    when, j = resend.popleft()
                    if results[j] is not None or j in inflight:
                        continue
                    if when > now:
                        resend.append((when, j))
                    else:
                        send(j, now)
                while nxt < n and nxt < low + window and len(inflight) < window:
                    send(nxt, now)
                    nxt += 1
                for kind, seq, payload in self._read():
                    j = frame_of(seq)
                    if kind == RESULT:
                        if j is None or results[j] is not None or len(payload) != p.out_bytes:
                            self.stats.duplicates += 1
                            continue
                        results[j] = Codec.from_bytes(payload, p.out_word_bytes, p.out_bits)
                        inflight.pop(j, None)
                    elif kind == NAK:
                        reason = _nak_text(payload)
                        self.stats.naks[reason] += 1
                        if j is not None and results[j] is None and j in inflight:
                            del inflight[j]
                            naks[j][reason] += 1
                            last[j] = f"NAK {reason}"
                            pause = _BUSY_PAUSE_S if payload[:1] == bytes((NAK_BUSY,)) else 0.0
                            resend.append((time.monotonic() + pause, j))
                while low < n and results[low] is not None:
                    low += 1
        except HwgenError:
            self.device = None           # the next call asks the device again, on a flushed line
            raise
        finally:
            self._seq = (base + n) % 256
            self.stats.elapsed += time.monotonic() - start
        self.stats.frames += n
        return results
