"""hwgen deploy: the standalone deploy directory (runs with numpy and pyserial only), its safety,
the Zynq deploy (block design, PYNQ driver packing as the UART driver), and `hwgen run`."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from clirun import run_cli
from hwgen.deploy import PACKAGE, deploy
from hwgen.driver import Accelerator, design_id
from hwgen.errors import HwgenError
from hwgen.host import apply_head, apply_tail, random_inputs
from hwgen.shell import protocol
from hwgen.streams import pack, unpack
from test_driver import FOLDED, fake, ir_compute, write_board

HERE = os.path.dirname(os.path.abspath(__file__))
FORBIDDEN = ("hwgen", "torch", "onnx", "amaranth", "qonnx", "onnxruntime")


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_onnx):
    """A pristine board build (folded: 2-byte words) to copy per test."""
    import hwgen
    out = str(tmp_path_factory.mktemp("dep") / "build")
    hwgen.build(tiny_onnx, out, folding=FOLDED, progress=False)
    write_board(out)
    return out


@pytest.fixture
def out(built, tmp_path):
    d = str(tmp_path / "OUT")
    shutil.copytree(built, d)
    return d


def _manifest(out):
    with open(os.path.join(out, "manifest.json")) as f:
        return json.load(f)


def _graph(out):
    from hwgen.dataflow import DataflowGraph
    return DataflowGraph.load(out)


def _with_bit(out):
    with open(os.path.join(out, "board", "hwgen_board.bit"), "wb") as f:
        f.write(b"\xffBITSTREAM")


def test_deploy_uart_layout(out):
    _with_bit(out)
    res = deploy(out)
    d = os.path.join(out, "deploy")
    assert res.path == d and res.board == "ulx3s" and res.bitstream == "hwgen_board.bit"
    assert sorted(os.listdir(d)) == ["README.md", "board.json", "deploy.json", "driver.py", "hwgen_board.bit",
                                     "hwgen_deploy", "manifest.json", "validate.py"]
    import hwgen
    src = os.path.dirname(hwgen.__file__)
    for rel in PACKAGE:                      # the same code, byte for byte
        with open(os.path.join(src, rel), "rb") as a, open(os.path.join(d, "hwgen_deploy", rel), "rb") as b:
            assert a.read() == b.read(), rel
    with open(os.path.join(d, "board.json")) as f:
        board = json.load(f)
    assert board["bitstream"] == "hwgen_board.bit" and board["port"] == "/dev/ttyUSB0"
    assert board["design_id"] == design_id(out, _manifest(out))
    with open(os.path.join(d, "hwgen_board.bit"), "rb") as f:
        assert f.read() == b"\xffBITSTREAM"
    readme = open(os.path.join(d, "README.md")).read()
    assert "    openFPGALoader -b ulx3s hwgen_board.bit" in readme
    assert "python3 validate.py x_test.npy y_test.npy --port /dev/ttyUSB0" in readme and "115200 baud" in readme
    # the deploy directory is a driver directory itself
    m, g = _manifest(out), _graph(out)
    acc = Accelerator(d, serial=fake(m, g, board["design_id"]), timeout=0.5)
    x = random_inputs(m["head"], 9, np.random.default_rng(1))
    np.testing.assert_array_equal(acc.predict(x), apply_tail(m["tail"], g.execute(apply_head(m["head"], x))))
    # deploying again replaces hwgen's own deploy directory
    deploy(out)
    assert os.path.isfile(os.path.join(d, "driver.py"))
    assert not [e for e in os.listdir(out) if e.startswith(".hwgen")]


def test_deploy_bitstream_missing(out):
    with pytest.raises(HwgenError) as e:
        deploy(out)
    assert str(e.value) == (f"{out}: bitstream board/hwgen_board.bit not built yet; run `make -C {out} bitstream` "
                            "first (or pass --no-bitstream to write the deploy directory without it)")
    assert not os.path.exists(os.path.join(out, "deploy"))
    seen = []
    res = deploy(out, no_bitstream=True, warn=seen.append)
    assert seen == [f"{out}: bitstream board/hwgen_board.bit not built yet; deploy/ written without it: run "
                    f"`make -C {out} bitstream`, then `hwgen deploy` again"]
    assert res.bitstream is None and not os.path.exists(os.path.join(out, "deploy", "hwgen_board.bit"))
    assert "was not built when this was written" in open(os.path.join(out, "deploy", "README.md")).read()


def test_deploy_refuses_user_files(out):
    _with_bit(out)
    d = os.path.join(out, "deploy")
    os.makedirs(d)
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("mine")
    with pytest.raises(HwgenError) as e:
        deploy(out)
    assert str(e.value) == (f"{d}: holds files hwgen deploy did not write (no deploy.json; e.g. notes.txt); move them "
                            "away or pass --force to replace the directory")
    assert open(os.path.join(d, "notes.txt")).read() == "mine"
    os.remove(os.path.join(d, "notes.txt"))
    deploy(out)                                  # an empty directory is fine
    with open(os.path.join(d, "x_test.npy"), "w") as f:
        f.write("mine")
    with pytest.raises(HwgenError) as e:
        deploy(out)
    assert str(e.value) == (f"{d}: also holds 'x_test.npy', which hwgen deploy did not write; move it out or pass "
                            "--force to replace the whole directory")
    assert open(os.path.join(d, "x_test.npy")).read() == "mine"
    deploy(out, force=True)
    assert not os.path.exists(os.path.join(d, "x_test.npy"))


def test_deploy_board_errors(out, tmp_path):
    with pytest.raises(HwgenError) as e:
        deploy(out, "icebreaker")
    assert str(e.value) == (f"--board icebreaker: {out} was built for 'ulx3s' ({out}/board/board.json); rebuild with "
                            "`hwgen build MODEL -o OUT --board icebreaker` or deploy to ulx3s")
    shutil.rmtree(os.path.join(out, "board"))
    with pytest.raises(HwgenError) as e:
        deploy(out)
    assert str(e.value) == (f"{out}: no board/board.json, so no board to deploy to; build with `hwgen build MODEL -o "
                            "OUT --board B` (boards: ulx3s, icebreaker) or pass --board pynq-z1|pynq-z2|zcu104")
    write_board(out, did=123)
    with pytest.raises(HwgenError) as e:
        deploy(out)
    did = design_id(out, _manifest(out))
    assert str(e.value) == (f"{out}/board/board.json: design_id 123 but the build's Verilog is design {did:#010x}: "
                            "board.json is stale; rebuild with `hwgen build --board ulx3s`")


def _site(tmp_path):
    """A site directory holding numpy (and pyserial, when installed) and nothing else."""
    site = tmp_path / "site"
    site.mkdir()
    import numpy
    np_dir = os.path.dirname(numpy.__file__)
    for name in os.listdir(os.path.dirname(np_dir)):
        if name == "numpy" or name.startswith("numpy.libs") or name.startswith("numpy-"):
            os.symlink(os.path.join(os.path.dirname(np_dir), name), site / name)
    spec = importlib.util.find_spec("serial")
    if spec is not None:
        os.symlink(os.path.dirname(spec.origin), site / "serial")
    return site, spec is not None


_ISOLATED = r'''
import json, sys
cfg = json.loads(sys.argv[1])
sys.path[:0] = [cfg["deploy"], cfg["fakes"]]
import numpy as np
from driver import Accelerator
from hwgen_deploy.shell import protocol
from hwgen_deploy import driver as drv
from fakeboard import FakeSerial, table_compute
t = np.load(cfg["table"])
table = {k.tobytes(): v.tobytes() for k, v in zip(t["keys"], t["values"])}
acc0 = Accelerator(cfg["deploy"], serial=FakeSerial(protocol, None))
p = protocol.LinkParams.from_manifest(acc0.manifest, buffer_frames=3, design_id=acc0.params.design_id)
compute = table_compute(table, p.in_word_bytes, p.out_word_bytes)
ser = FakeSerial(protocol, protocol.DeviceModel(p, compute), faults={4: "corrupt", 9: "drop_response", 12: "busy"})
acc = Accelerator(cfg["deploy"], serial=ser, timeout=0.2)
y = acc.predict(np.load(cfg["x"]))
np.save(cfg["y"], y)
drv.Accelerator._open = lambda self, port: FakeSerial(protocol, protocol.DeviceModel(p, compute))
sys.argv = ["validate.py", cfg["x"], cfg["labels"], "--port", "fake0", "--timeout", "0.5"]
import runpy
try:
    runpy.run_path(cfg["deploy"] + "/validate.py", run_name="__main__")
except SystemExit as e:
    assert e.code == 0, e.code
if cfg["with_serial"]:
    import serial  # noqa: F401  (pyserial is there for a real port)
bad = sorted(m for m in sys.modules if m.split(".")[0] in cfg["forbidden"])
print("FORBIDDEN-IMPORTS", json.dumps(bad))
print("STATS", json.dumps(acc.stats.as_dict()))
'''


def test_deploy_runs_without_hwgen(out, tmp_path):
    """OUT/deploy with only numpy (and pyserial) on the path, `python -I -S`: every output equals
    the IR reference's, through a fake device (a lookup of the reference's answers) with faults."""
    _with_bit(out)
    deploy(out)
    m, g = _manifest(out), _graph(out)
    x = random_inputs(m["head"], 24, np.random.default_rng(7))
    x_int = apply_head(m["head"], x)
    ref_int = g.execute(x_int)
    ib, ob = m["input"]["tdata_bits"] // 8, m["output"]["tdata_bits"] // 8
    keys = [protocol.words_to_bytes(w, ib) for w in pack(x_int, m["input"]["dtype"], m["input"]["lanes"])]
    vals = [protocol.words_to_bytes(w, ob) for w in pack(ref_int, m["output"]["dtype"], m["output"]["lanes"])]
    np.savez(tmp_path / "table.npz", keys=np.array([list(k) for k in keys], dtype=np.uint8),
             values=np.array([list(v) for v in vals], dtype=np.uint8))
    np.save(tmp_path / "x.npy", x)
    ref = apply_tail(m["tail"], ref_int)
    np.save(tmp_path / "labels.npy", ref.argmax(axis=1))
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    shutil.copy(os.path.join(HERE, "fakeboard.py"), fakes)
    site, with_serial = _site(tmp_path)
    cfg = {"deploy": os.path.join(out, "deploy"), "fakes": str(fakes), "table": str(tmp_path / "table.npz"),
           "x": str(tmp_path / "x.npy"), "y": str(tmp_path / "y.npy"), "labels": str(tmp_path / "labels.npy"),
           "forbidden": FORBIDDEN, "with_serial": with_serial}
    cmd = [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n" + _ISOLATED,
           json.dumps(cfg)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert json.loads(next(ln for ln in lines if ln.startswith("FORBIDDEN-IMPORTS"))[18:]) == []
    stats = json.loads(next(ln for ln in lines if ln.startswith("STATS"))[6:])
    assert stats["frames"] == 24 and stats["retries"] >= 3
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), ref)
    assert "frames: 24, " in r.stdout and "accuracy: 100.00 % (24 of 24)" in r.stdout and "link: 24 frames in" in r.stdout


def test_cli_deploy_and_run(out, tmp_path, capsys, monkeypatch):
    code, so, se = run_cli(["deploy", out], capsys)
    assert code == 2 and so == ""
    assert se == (f"hwgen: error: {out}: bitstream board/hwgen_board.bit not built yet; run `make -C {out} bitstream` "
                  "first (or pass --no-bitstream to write the deploy directory without it)\n")
    code, so, se = run_cli(["deploy", out, "--no-bitstream"], capsys)
    assert code == 0 and se.startswith("hwgen deploy: warning: ") and so == f"deploy: {out}/deploy (ulx3s)\n"
    m, g = _manifest(out), _graph(out)
    x = random_inputs(m["head"], 10, np.random.default_rng(2))
    np.save(tmp_path / "x.npy", x)
    did = design_id(out, m)
    monkeypatch.setattr(Accelerator, "_open", lambda self, port: fake(m, g, did, faults={3: "busy"}))
    code, so, se = run_cli(["run", out, "--port", "fake0", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy"],
                           capsys)
    assert code == 0, se
    assert so.startswith("run: 10 frames, ") and so.endswith(
        f" frames/s, retries 1, timeouts 0, NAKs 1 frame buffer full; outputs: {tmp_path / 'y.npy'}\n")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), apply_tail(m["tail"], g.execute(apply_head(m["head"], x))))
    monkeypatch.setattr(Accelerator, "_open", lambda self, port: fake(m, g, 7))
    code, so, se = run_cli(["run", out, "--inputs", tmp_path / "x.npy"], capsys)
    assert code == 2 and se == (f"hwgen: error: link: the device on /dev/ttyUSB0 runs design 0x00000007, this build "
                                f"({out}) is design {did:#010x}: wrong bitstream; program the board with this build's "
                                "bitstream or use the build the board runs\n")
    code, so, se = run_cli(["run", out, "--inputs", tmp_path / "nope.npy"], capsys)
    assert code == 2 and se.startswith(f"hwgen: error: --inputs {tmp_path / 'nope.npy'}: cannot be read as .npy (")


# --------------------------------------------------------------------------- Zynq / PYNQ
class _Channel:
    def __init__(self, dev, side):
        self.dev, self.side = dev, side

    def transfer(self, buf):
        if self.side == "send":
            self.dev.mm2s(buf)
        else:
            self.dev.s2mm(buf)

    def wait(self):
        pass


class _FakeDma:
    """The AXI DMA + wrapper + core: MM2S bytes → words (low tdata bits) → frames → compute → S2MM, one frame
    per receive (the wrapper's tlast)."""

    def __init__(self, manifest, compute, dma_in, dma_out):
        self.m, self.compute, self.dma_in, self.dma_out = manifest, compute, dma_in, dma_out
        self.words_in, self.pending = [], []
        self.sendchannel, self.recvchannel = _Channel(self, "send"), _Channel(self, "recv")

    def mm2s(self, buf):
        data, wb = np.asarray(buf).tobytes(), self.dma_in
        mask = (1 << self.m["input"]["tdata_bits"]) - 1
        words = [int.from_bytes(data[i:i + wb], "little") & mask for i in range(0, len(data), wb)]
        wpf = self.m["input"]["words_per_frame"]
        for a in range(0, len(words), wpf):
            self.words_in.append(words[a:a + wpf])
            self.pending.append(self.compute(words[a:a + wpf]))

    def s2mm(self, buf):
        words = self.pending.pop(0)
        data = b"".join(int(w).to_bytes(self.dma_out, "little") for w in words)
        assert len(data) == buf.size
        buf[:] = np.frombuffer(data, dtype=np.uint8)


def _fake_pynq(dma):
    mod = types.ModuleType("pynq")
    mod.allocate = lambda shape, dtype: np.zeros(shape, dtype=dtype)

    class Overlay:
        def __init__(self, path):
            self.path = path
            self.axi_dma_0 = dma
    mod.Overlay = Overlay
    return mod


@pytest.mark.parametrize("board", ["pynq-z2", "pynq-z1", "zcu104"])
def test_deploy_zynq(out, board):
    deploy(out, board)
    d = os.path.join(out, "deploy")
    assert sorted(os.listdir(d)) == ["README.md", "bd.tcl", "board.json", "deploy.json", "driver.py", "hwgen_deploy",
                                     "manifest.json", "rtl", "validate.py"]
    assert sorted(os.listdir(os.path.join(d, "rtl"))) == ["hwgen_axis_wrapper.v", "hwgen_top.v"]
    tcl = open(os.path.join(d, "bd.tcl")).read()
    ps = "zynq_ultra_ps_e" if board == "zcu104" else "processing_system7"
    assert f"xilinx.com:ip:{ps}]" in tcl and "xilinx.com:ip:axi_dma]" in tcl and "write_bitstream" in tcl
    assert "connect_bd_intf_net [get_bd_intf_pins axi_dma_0/M_AXIS_MM2S] [get_bd_intf_pins accel/s_axis]" in tcl
    assert "hwgen.hwh" in tcl and "-reference hwgen_axis_wrapper" in tcl
    readme = open(os.path.join(d, "README.md")).read()
    assert "**Generated, not run here (no Vivado, no PYNQ).**" in readme
    if shutil.which("iverilog"):               # the wrapper compiles with the core
        r = subprocess.run(["iverilog", "-g2005", "-o", os.devnull, "-s", "hwgen_axis_wrapper",
                            os.path.join(d, "rtl", "hwgen_axis_wrapper.v"), os.path.join(d, "rtl", "hwgen_top.v")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_pynq_and_uart_drivers_pack_alike(out, monkeypatch):
    """Both drivers send the same words for the same inputs, and unpack the same answers alike."""
    deploy(out, "pynq-z2")
    from hwgen.pynq_driver import PynqAccelerator, dma_bits
    m, g = _manifest(out), _graph(out)
    compute = ir_compute(m, g)
    dma = _FakeDma(m, compute, dma_bits(m["input"]["tdata_bits"]) // 8, dma_bits(m["output"]["tdata_bits"]) // 8)
    monkeypatch.setitem(sys.modules, "pynq", _fake_pynq(dma))
    x = random_inputs(m["head"], 17, np.random.default_rng(4))
    pz = PynqAccelerator(os.path.join(out, "deploy"), overlay=None, bitfile=__file__)
    y_pynq = pz.predict(x)
    ser = fake(m, g, design_id(out, m))
    y_uart = Accelerator(out, serial=ser, timeout=0.5).predict(x)
    uart_words = [protocol.bytes_to_words(p, m["input"]["tdata_bits"] // 8)
                  for k, _, p in ser.received() if k == protocol.DATA]
    assert dma.words_in == uart_words
    assert uart_words == pack(apply_head(m["head"], x), m["input"]["dtype"], m["input"]["lanes"])
    np.testing.assert_array_equal(y_pynq, y_uart)
    np.testing.assert_array_equal(y_pynq, apply_tail(m["tail"], g.execute(apply_head(m["head"], x))))
    out_words = [compute(w) for w in uart_words]
    np.testing.assert_array_equal(pz.codec.values(out_words), unpack(out_words, m["output"]["dtype"],
                                                                     m["output"]["lanes"], tuple(m["output"]["shape"])))
    monkeypatch.delitem(sys.modules, "pynq")
    monkeypatch.setattr("builtins.__import__", _no_pynq(__import__))
    with pytest.raises(HwgenError) as e:
        PynqAccelerator(os.path.join(out, "deploy"))
    assert str(e.value) == "PYNQ: the pynq package is not installed; run this on the board's PYNQ image"


def _no_pynq(real):
    def imp(name, *a, **kw):
        if name == "pynq":
            raise ImportError(name)
        return real(name, *a, **kw)
    return imp


def test_import_hygiene():
    """The driver package imports only the standard library, numpy, (lazily) serial / pynq and its
    siblings; hwgen.dataflow imports nothing of the driver or the board shell."""
    import ast

    import hwgen
    src = os.path.dirname(hwgen.__file__)
    allowed = {"numpy", "serial", "pynq"} | set(sys.stdlib_module_names)
    for rel in PACKAGE:
        tree = ast.parse(open(os.path.join(src, rel)).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    continue
                names = [node.module]
            else:
                continue
            for n in names:
                assert n.split(".")[0] in allowed, f"{rel} imports {n}"
    for dirpath, _, filenames in os.walk(os.path.join(src, "dataflow")):
        for fn in filenames:
            if fn.endswith(".py"):
                text = open(os.path.join(dirpath, fn)).read()
                for bad in ("driver", "shell", "deploy", "pynq"):
                    assert f"import {bad}" not in text and f".{bad} import" not in text, (fn, bad)


def test_build_dir_with_board_and_deploy_is_hwgen_s(out):
    """`hwgen build -o OUT` may replace a build that holds board/ and deploy/."""
    from hwgen.outdir import check_output
    _with_bit(out)
    deploy(out)
    assert check_output(out) == out


@pytest.mark.skipif(not shutil.which("iverilog"), reason="needs Icarus Verilog")
def test_axis_wrapper_tlast_per_frame(out, tmp_path):
    """The Zynq wrapper in Icarus: the reference's words, widened, tlast on the last word of every output frame
    (under input gaps and output back-pressure)."""
    deploy(out, "pynq-z2")
    from hwgen.pynq_driver import dma_bits
    m, g = _manifest(out), _graph(out)
    x_int = apply_head(m["head"], random_inputs(m["head"], 6, np.random.default_rng(3)))
    words_in = [w for f in pack(x_int, m["input"]["dtype"], m["input"]["lanes"]) for w in f]
    want = [w for f in pack(g.execute(x_int), m["output"]["dtype"], m["output"]["lanes"]) for w in f]
    dib, dob, wpf = dma_bits(m["input"]["tdata_bits"]), dma_bits(m["output"]["tdata_bits"]), m["output"]["words_per_frame"]
    (tmp_path / "in.hex").write_text("".join(f"{w:x}\n" for w in words_in))
    tb = f"""`timescale 1ns/1ps
module tb;
    reg clk = 0, aresetn = 0;
    always #5 clk = ~clk;
    reg [{dib - 1}:0] mem [0:{len(words_in) - 1}];
    reg [{dib - 1}:0] tdata = 0; reg tvalid = 0; wire tready;
    wire [{dob - 1}:0] odata; wire [{dob // 8 - 1}:0] okeep; wire ovalid, olast; reg oready = 0;
    integer i = 0, got = 0, seed = 1;
    hwgen_axis_wrapper dut(.aclk(clk), .aresetn(aresetn), .s_axis_tdata(tdata), .s_axis_tvalid(tvalid),
        .s_axis_tready(tready), .s_axis_tlast(1'b0), .m_axis_tdata(odata), .m_axis_tkeep(okeep),
        .m_axis_tvalid(ovalid), .m_axis_tready(oready), .m_axis_tlast(olast));
    initial begin
        $readmemh("{tmp_path / 'in.hex'}", mem);
        repeat (4) @(posedge clk);
        aresetn <= 1;
    end
    always @(posedge clk) if (aresetn) begin
        if (ovalid && oready) begin
            $display("W %h %0d %h", odata, olast, okeep);
            got = got + 1;
            if (got == {len(want)}) $finish;
        end
        oready <= ($random(seed) & 3) != 0;
        if (tvalid && tready) i = i + 1;
        if (i < {len(words_in)} && (($random(seed) & 3) != 0 || (tvalid && !tready))) begin
            tvalid <= 1; tdata <= mem[i];
        end else tvalid <= 0;
    end
    initial begin #2000000; $display("TIMEOUT"); $finish; end
endmodule
"""
    (tmp_path / "tb.v").write_text(tb)
    rtl = os.path.join(out, "deploy", "rtl")
    r = subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "sim"), "-s", "tb", str(tmp_path / "tb.v"),
                        os.path.join(rtl, "hwgen_axis_wrapper.v"), os.path.join(rtl, "hwgen_top.v")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], capture_output=True, text=True, timeout=120)
    lines = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("W ")]
    assert "TIMEOUT" not in r.stdout
    assert [int(d, 16) for _, d, _, _ in lines] == want
    assert [int(last) for _, _, last, _ in lines] == [int((k + 1) % wpf == 0) for k in range(len(want))]
    assert {k for _, _, _, k in lines} == {"f" * (dob // 32)}
