"""hwgen.driver against the link's reference device (protocol.DeviceModel) on a fake serial port:
pipelining, faults and their retries, the error lines."""

import json
import os

import numpy as np
import pytest

from fakeboard import FakeSerial
from hwgen.driver import Accelerator, design_id
from hwgen.errors import HwgenError
from hwgen.host import apply_head, random_inputs
from hwgen.shell import protocol
from hwgen.streams import pack, unpack

FOLDED = {"fc0": {"pe": 2, "simd": 4}, "fc1": {"pe": 2, "simd": 2}}


def write_board(out, *, buffer_frames=4, did=None, bitstream="board/hwgen_board.bit", board="ulx3s"):
    """The board.json a `hwgen build --board` writes (the board shell's, stood in for here)."""
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    doc = {"format": "hwgen-board/1", "board": board, "family": "ecp5", "clock_hz": 25_000_000, "baud": 115200,
           "divisor": 217, "buffer_frames": buffer_frames,
           "design_id": design_id(out, manifest) if did is None else did, "top": "hwgen_board",
           "bitstream": bitstream, "device": "LFE5U-85F", "package": "CABGA381"}
    os.makedirs(os.path.join(out, "board"), exist_ok=True)
    with open(os.path.join(out, "board", "board.json"), "w") as f:
        json.dump(doc, f, indent=1)
    return doc


@pytest.fixture(scope="module", params=["lanes1", "folded"])
def board_build(request, tmp_path_factory, tiny_onnx):
    """(build dir, manifest, graph) of the tiny MLP with a board.json; 'folded' has multi-byte words."""
    import hwgen
    from hwgen.dataflow import DataflowGraph
    out = str(tmp_path_factory.mktemp("drv") / request.param)
    hwgen.build(tiny_onnx, out, folding=FOLDED if request.param == "folded" else None, progress=False)
    write_board(out)
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    return out, manifest, DataflowGraph.load(out)


def ir_compute(manifest, graph):
    """The core of the fake device: the build's IR reference, one frame of words at a time."""
    mi, mo = manifest["input"], manifest["output"]

    def compute(words):
        x = unpack([words], mi["dtype"], mi["lanes"], tuple(mi["shape"]))
        return pack(graph.execute(x), mo["dtype"], mo["lanes"])[0]
    return compute


def fake(manifest, graph, did, *, buffer_frames=4, **kw):
    params = protocol.LinkParams.from_manifest(manifest, buffer_frames=buffer_frames, design_id=did,
                                               clock_hz=25_000_000, baud=115200)
    return FakeSerial(protocol, protocol.DeviceModel(params, ir_compute(manifest, graph)), **kw)


def inputs(manifest, n, seed=0):
    return random_inputs(manifest["head"], n, np.random.default_rng(seed))


def test_predict_matches_reference(board_build):
    out, manifest, graph = board_build
    x = inputs(manifest, 40)
    ser = fake(manifest, graph, design_id(out, manifest))
    acc = Accelerator(out, serial=ser, timeout=0.5)
    y = acc.predict(x)
    from hwgen.host import apply_tail
    want = apply_tail(manifest["tail"], graph.execute(apply_head(manifest["head"], x)))
    np.testing.assert_array_equal(y, want)
    assert acc.stats.frames == 40 and acc.stats.retries == 0 and not acc.stats.naks
    # pipelined: every frame was on the line before its predecessor's window was answered
    kinds = [k for k, _, _ in ser.received()]
    assert kinds[0] == protocol.INFO and kinds.count(protocol.DATA) == 40
    assert acc.device["design_id"] == design_id(out, manifest)
    # words on the line: tdata_bits/8 bytes per word, little-endian, as streams.pack says
    x_int = apply_head(manifest["head"], x)
    words = pack(x_int, manifest["input"]["dtype"], manifest["input"]["lanes"])
    wb = manifest["input"]["tdata_bits"] // 8
    got = [p for k, _, p in ser.received() if k == protocol.DATA]
    assert got == [protocol.words_to_bytes(w, wb) for w in words]
    assert [s for k, s, _ in ser.received() if k == protocol.DATA] == [(1 + i) % 256 for i in range(40)]


def test_pipelined_window(board_build):
    """Up to `window` DATA packets leave before the first RESULT is read."""
    out, manifest, graph = board_build
    ser = fake(manifest, graph, design_id(out, manifest))
    writes_at_first_read = []
    orig = ser.read

    def read(n=1):
        if ser.rx and not writes_at_first_read and ser.writes > 1:
            writes_at_first_read.append(ser.writes - 1)        # DATA writes (less INFO)
        return orig(n)
    ser.read = read
    acc = Accelerator(out, serial=ser, timeout=0.5)
    acc.info()
    acc.predict_int(apply_head(manifest["head"], inputs(manifest, 12)))
    assert writes_at_first_read == [4]          # the device's buffer_frames
    acc2 = Accelerator(out, serial=fake(manifest, graph, design_id(out, manifest)), window=2, timeout=0.5)
    assert len(acc2.predict_int(apply_head(manifest["head"], inputs(manifest, 5)))) == 5


def test_predict_int_bit_exact_over_seq_wrap(board_build):
    out, manifest, graph = board_build
    x_int = apply_head(manifest["head"], inputs(manifest, 300, seed=3))
    acc = Accelerator(out, serial=fake(manifest, graph, design_id(out, manifest)), timeout=0.5)
    np.testing.assert_array_equal(acc.predict_int(x_int), graph.execute(x_int))
    np.testing.assert_array_equal(acc.predict_int(x_int[:7]), graph.execute(x_int[:7]))   # seq goes on
    assert acc.stats.frames == 307


@pytest.mark.parametrize("fault", ["corrupt", "drop_byte", "drop_response", "busy", "duplicate", "delay"])
def test_faults_recovered(board_build, fault):
    out, manifest, graph = board_build
    x_int = apply_head(manifest["head"], inputs(manifest, 20, seed=5))
    # writes: 0 is INFO; spoil DATA writes 3, 7 and 8 (frames 2, 6, 7 on first send)
    ser = fake(manifest, graph, design_id(out, manifest), faults={3: fault, 7: fault, 8: fault})
    acc = Accelerator(out, serial=ser, timeout=0.2)
    y = acc.predict_int(x_int)
    np.testing.assert_array_equal(y, graph.execute(x_int))      # none lost, none duplicated, in order
    st = acc.stats
    if fault in ("corrupt", "drop_byte", "drop_response", "busy"):
        assert st.retries >= 3
        assert ser.writes == 1 + 20 + st.retries
    if fault == "busy":
        assert st.naks["frame buffer full"] == 3 and st.timeouts == 0
    if fault == "drop_byte":
        assert sum(st.naks.values()) + st.timeouts >= 3
    if fault == "drop_response":
        assert st.timeouts == 3
    if fault == "duplicate":
        assert st.duplicates == 3 and st.retries == 0
    if fault == "delay":
        assert st.retries == 0
    d = st.as_dict()
    assert d["frames"] == 20 and d["bytes_sent"] > 0 and d["bytes_received"] > 0 and d["frames_per_s"] > 0
    assert "20 frames in" in st.line()


def test_dead_device_error_line(board_build):
    out, manifest, graph = board_build
    ser = fake(manifest, graph, design_id(out, manifest), dead=True)
    acc = Accelerator(out, serial=ser, timeout=0.05, retries=2)
    with pytest.raises(HwgenError) as e:
        acc.predict(inputs(manifest, 3))
    assert str(e.value) == ("link: no answer to INFO from fake0 within 0.05 s (3 tries); is the board programmed "
                            "with this build's bitstream, the port right and the baud 115200?")
    assert ser.writes == 3


def test_device_dies_mid_run_error_line(board_build):
    out, manifest, graph = board_build
    ser = fake(manifest, graph, design_id(out, manifest))
    acc = Accelerator(out, serial=ser, timeout=0.05, retries=2)
    acc.info()
    ser.faults = {k: "busy" for k in range(ser.writes, ser.writes + 3)}     # frame 0 sees NAK "busy" first
    orig = ser.write

    def write(data):
        n = orig(data)
        if ser.writes > 4:
            ser.dead = True
        return n
    ser.write = write
    with pytest.raises(HwgenError) as e:
        acc.predict_int(apply_head(manifest["head"], inputs(manifest, 6)))
    assert str(e.value) == (f"link: frame 0 (of 6) got no result after 3 tries (NAKs: 1 frame buffer full; last: no "
                            f"answer within {acc.frame_timeout(4):.3g} s); check the cable, the port and the baud "
                            "(115200), or lower the window")
    assert 0.05 < acc.frame_timeout(4) < 0.1


def test_wrong_design_id_error_line(board_build):
    out, manifest, graph = board_build
    did = design_id(out, manifest)
    acc = Accelerator(out, serial=fake(manifest, graph, 0x12345678), timeout=0.2)
    with pytest.raises(HwgenError) as e:
        acc.info()
    assert str(e.value) == (f"link: the device on fake0 runs design 0x12345678, this build ({out}) is design "
                            f"{did:#010x}: wrong bitstream; program the board with this build's bitstream or use the "
                            "build the board runs")


def test_not_a_hwgen_device_and_frame_sizes(board_build):
    out, manifest, graph = board_build
    did = design_id(out, manifest)

    class Other(FakeSerial):
        def write(self, data):
            self.rx += protocol.packet(protocol.INFO_REPLY, 0, b"NOPE" + bytes(17))
    acc = Accelerator(out, serial=Other(protocol, None), timeout=0.2)
    with pytest.raises(HwgenError) as e:
        acc.info()
    assert str(e.value) == ("link: the device's INFO reply 4e4f5045000000000000000000000000 is not a hwgen-link/1 "
                            "device's (wrong bitstream, or not a hwgen board?)")
    m2 = json.loads(json.dumps(manifest))
    m2["input"]["words_per_frame"] += 1
    params = protocol.LinkParams.from_manifest(m2, buffer_frames=4, design_id=did)
    acc = Accelerator(out, serial=FakeSerial(protocol, protocol.DeviceModel(params, None)), timeout=0.2)
    with pytest.raises(HwgenError) as e:
        acc.info()
    p = acc.params
    assert str(e.value) == (f"link: the device on fake0 takes {p.in_bytes + p.in_word_bytes}-byte frames and returns "
                            f"{p.out_bytes}-byte ones, this build {p.in_bytes} and {p.out_bytes}: wrong bitstream")


def test_arguments_and_directories(board_build, tmp_path):
    out, manifest, graph = board_build
    ser = fake(manifest, graph, 0)
    for kw, msg in ((dict(timeout=0), "timeout must be a positive number of seconds, not 0"),
                    (dict(window=0), "window must be an integer from 1 to 128 (frames in flight), not 0"),
                    (dict(window=200), "window must be an integer from 1 to 128 (frames in flight), not 200"),
                    (dict(retries=-1), "retries must be a non-negative integer, not -1")):
        with pytest.raises(HwgenError) as e:
            Accelerator(out, serial=ser, **kw)
        assert str(e.value) == msg
    with pytest.raises(HwgenError) as e:
        Accelerator(str(tmp_path), serial=ser)
    assert str(e.value) == (f"{tmp_path}: no manifest.json; accepted: a build directory made with `hwgen build "
                            "--board` or the directory `hwgen deploy` wrote")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HwgenError) as e:
        Accelerator(str(tmp_path), serial=ser)
    assert str(e.value) == (f"{tmp_path}: no board.json (neither {tmp_path}/board.json nor {tmp_path}/board/board.json); "
                            "build with `hwgen build MODEL -o OUT --board B` to make a board build")
    (tmp_path / "board.json").write_text(json.dumps({"format": "hwgen-board/0"}))
    with pytest.raises(HwgenError) as e:
        Accelerator(str(tmp_path), serial=ser)
    assert str(e.value) == f"{tmp_path}/board.json: board format must be 'hwgen-board/1', not 'hwgen-board/0'"
    acc = Accelerator(out, serial=ser)
    with pytest.raises(HwgenError) as e:
        acc.predict(np.zeros((2, 3)))
    assert str(e.value) == f"input {manifest['head']['input_name']}: shape (3,) must be (8,) (after the batch axis)"


def test_no_port_error_line(board_build):
    pytest.importorskip("serial")
    out, _, _ = board_build
    with pytest.raises(HwgenError) as e:
        Accelerator(out, "/nonexistent/ttyHWGEN")
    assert str(e.value).startswith("link: cannot open serial port /nonexistent/ttyHWGEN at 115200 baud (")
    assert str(e.value).endswith("); is the board plugged in and the port right (--port)?")


class PtyBoard:
    """The reference device behind a pseudo-terminal: pyserial opens its slave end as a real port."""

    def __init__(self, device):
        import threading
        self.master, slave = os.openpty()
        self.port = os.ttyname(slave)
        self._slave = slave
        self.device, self.stop = device, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import select
        while not self.stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.02)
            if r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    return
                answer = self.device.feed(data)
                if answer:
                    os.write(self.master, answer)

    def close(self):
        self.stop.set()
        self.thread.join(2)
        os.close(self.master)
        os.close(self._slave)


def test_real_pyserial_on_a_pty(board_build):
    """pyserial opens the port by name; the reference device answers on the pty's other end."""
    pytest.importorskip("serial")
    out, manifest, graph = board_build
    params = protocol.LinkParams.from_manifest(manifest, buffer_frames=4, design_id=design_id(out, manifest),
                                               baud=115200)
    board = PtyBoard(protocol.DeviceModel(params, ir_compute(manifest, graph)))
    try:
        x = inputs(manifest, 30, seed=9)
        with Accelerator(out, board.port, timeout=1.0) as acc:
            from hwgen.host import apply_tail
            np.testing.assert_array_equal(acc.predict(x), apply_tail(manifest["tail"],
                                                                     graph.execute(apply_head(manifest["head"], x))))
            assert acc.stats.frames == 30 and acc.stats.retries == 0
    finally:
        board.close()


def test_pyserial_missing_error_line(board_build, monkeypatch):
    import builtins
    out, _, _ = board_build
    real = builtins.__import__

    def imp(name, *a, **kw):
        if name == "serial":
            raise ImportError(name)
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", imp)
    with pytest.raises(HwgenError) as e:
        Accelerator(out, "/dev/ttyUSB0")
    assert str(e.value) == ("link: pyserial is not installed (pip install pyserial); it opens the board's serial port")


def test_after_an_error_the_device_is_asked_again(board_build):
    out, manifest, graph = board_build
    ser = fake(manifest, graph, design_id(out, manifest))
    acc = Accelerator(out, serial=ser, timeout=0.05, retries=0)
    acc.info()
    ser.faults = {ser.writes: "drop_response"}
    x_int = apply_head(manifest["head"], inputs(manifest, 3))
    with pytest.raises(HwgenError):
        acc.predict_int(x_int)
    assert acc.device is None
    np.testing.assert_array_equal(acc.predict_int(x_int), graph.execute(x_int))
    assert [k for k, _, _ in ser.received()].count(protocol.INFO) == 2
