"""hwgen.watch: long external work shown through hwgen.progress (issue 12 part 5).

No test asserts a wall-clock time: heartbeats are made frequent and the tests
only check that the lines appear (or, when disabled, do not)."""

import os
import subprocess
import sys

from hwgen import progress, watch

YOSYS_LOG = """\
1. Executing Verilog-2005 frontend: rtl/hwgen_top.v
Parsing Verilog input from `rtl/hwgen_top.v' to AST representation.
2. Executing HIERARCHY pass (managing design hierarchy).
2.1. Analyzing design hierarchy..
3. Executing SYNTH_LATTICE pass.
3.42. Executing ABC9 pass.
3.42.1. Executing ABC9_OPS pass (helper functions for ABC9).
4. Executing SYNTH_LATTICE pass.
4.7. Executing OPT_EXPR pass (perform const folding).
"""

NEXTPNR_LOG = """\
Info: Packing IOs..
Info: Creating initial analytic placement for 302 cells, random placement wirelen = 37411.
Info: Running simulated annealing placer for refinement.
Info: Routing..
Info:    IterCnt |  w/ripup   wo/ripup |  w/r  wo/r |      arcs| batch(sec) total(sec)|
Info:       1000 |      190        809 |  190   809 |      1265|       0.35       0.35|
Info: Critical path report for clock 'clk' (posedge -> posedge):
"""

COMPILE_LOG = """\
- V e r i l a t i o n   R e p o r t: Verilator 5.048
make: Entering directory '/x/sim/verilator'
ccache g++ -Os -c -o verilator.o /x/verilator.cpp
g++ -Os -c -o Vtop__ALL.o Vtop__ALL.cpp
"""


def _stages(reader, text):
    return [s for s in (reader(line) for line in text.splitlines()) if s]


def test_stage_readers():
    assert _stages(watch.YosysStages(), YOSYS_LOG) == [
        "step 1: Verilog-2005 frontend", "step 2: HIERARCHY", "step 2.1: HIERARCHY / Analyzing design hierarchy",
        "step 3: SYNTH_LATTICE", "step 3.42: SYNTH_LATTICE / ABC9", "step 4: SYNTH_LATTICE #2",
        "step 4.7: SYNTH_LATTICE #2 / OPT_EXPR"]
    assert _stages(watch.NextpnrStages(), NEXTPNR_LOG) == [
        "packing", "placing (analytic)", "placing (annealing)", "routing", "routing, 1,265 arcs left", "timing report"]
    assert _stages(watch.CompileStages(), COMPILE_LOG) == [
        "Verilog to C++ done", "C++ compile", "C++ compile, 1 object started", "C++ compile, 2 objects started"]


def test_follow_reads_lines_as_they_come(tmp_path, fast):
    p = tmp_path / "grows.log"
    seen = []
    with watch.follow(p, seen.append):          # the file does not exist yet
        with open(p, "w") as f:
            f.write("one\ntw")
            f.flush()
            import time
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                time.sleep(0.02)
            assert seen == ["one"]              # a partial line waits for its end
            f.write("o\nthree")
    assert seen == ["one", "two", "three"]       # the rest when the block ends


def _sh(script):
    return [sys.executable, "-c", script]


def test_run_heartbeat_stage_and_log(tmp_path, fast, capsys):
    log = tmp_path / "tool.log"
    script = ("import time\nf = open(%r, 'w', buffering=1)\n"
              "f.write('3. Executing SYNTH_LATTICE pass.\\n')\ntime.sleep(1.0)\n" % str(log))
    rc, lines = watch.run(_sh(script), "synth-x (fake)", log=log, stages=watch.YosysStages())
    assert rc == 0 and lines == []
    err = capsys.readouterr().err
    assert f"[hwgen] synth-x (fake) … (log: {log})" in err
    beats = [l for l in err.splitlines() if l.startswith("[hwgen] synth-x (fake): step 3: SYNTH_LATTICE, ")]
    assert beats and all(l.endswith(f" s (log: {log})") for l in beats)     # heartbeat: stage, time, log
    assert err.splitlines()[-1].startswith("[hwgen] synth-x (fake): ") and err.rstrip().endswith(" s")


def test_run_quiet_failure_and_captured_output(tmp_path, fast, capsys):
    log = tmp_path / "cap.log"
    rc, lines = watch.run(_sh("import sys, time; print('oops'); time.sleep(0.5); sys.exit(3)"), "bitstream (fake)",
                          log=log, output="log", enabled=False)
    assert rc == 3 and lines == ["oops"] and log.read_text() == "oops\n"
    assert capsys.readouterr().err == ""
    rc, _ = watch.run(_sh("import sys; sys.exit(4)"), "step", output="inherit")
    assert rc == 4 and "[hwgen] step: failed after" in capsys.readouterr().err


def test_run_relays_a_child_hwgen(fast, capsys):
    child = ("import sys, time\nprint('make: noise', flush=True)\n"
             "sys.stderr.write('[hwgen] child: working\\n'); sys.stderr.flush()\n"
             "sys.stderr.write('hwgen: warning: careful\\n'); sys.stderr.flush()\ntime.sleep(0.6)\n")
    rc, lines = watch.run(_sh(child), "parent", output="relay", announce=False)
    assert rc == 0 and lines == ["make: noise"]
    err = capsys.readouterr().err
    assert "[hwgen] parent …" in err and "[hwgen] child: working" in err and "hwgen: warning: careful" in err
    assert "make: noise" not in err
    rc, _ = watch.run(_sh(child), "parent", output="relay", enabled=False)
    assert capsys.readouterr().err == "hwgen: warning: careful\n"       # warnings stay, progress goes


def test_heartbeat_counts_silence(fast, capsys):
    import time
    with progress.task("quiet work", heartbeat=1.0) as t:
        for _ in range(15):                                      # 1.5 s of a line every 0.1 s
            t.note("quiet work: a line of its own")
            time.sleep(0.1)
    err = capsys.readouterr().err
    assert err.count("a line of its own") == 15
    assert len(err.splitlines()) == 17                           # start, the notes, end: no heartbeat needed


def test_makefile_runner(tmp_path, fast):
    """`python -m hwgen.flows run`, what the rendered Makefile runs each tool under."""
    log = tmp_path / "synth.log"
    tool = ("import time\nf = open('synth.log', 'w', buffering=1)\n"
            "f.write('2. Executing HIERARCHY pass (managing design hierarchy).\\n')\ntime.sleep(1.5)\n")
    cmd = [sys.executable, "-m", "hwgen.flows", "run", "--what", "synth-ecp5", "--log", "synth.log",
           "--stages", "yosys", "--", sys.executable, "-c", tool]
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert f"[hwgen] synth-ecp5 ({os.path.basename(sys.executable)}): {sys.executable} -c " in p.stderr
    assert f"[hwgen] synth-ecp5 ({os.path.basename(sys.executable)}) … (log: {log})" in p.stderr
    assert "step 2: HIERARCHY" in p.stderr
    p = subprocess.run(cmd[:4] + ["--quiet"] + cmd[4:], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == ""
    fail = cmd[:-4] + ["--capture", "--", sys.executable, "-c", "import sys; print('bad input'); sys.exit(5)"]
    p = subprocess.run(fail, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == 5 and p.stderr.endswith("bad input\n") and "failed after" in p.stderr


def test_explore_progress_and_quiet(spec_onnx, fast, capsys):
    from hwgen.explore import explore
    _, path = spec_onnx("quant_output")
    capsys.readouterr()
    explore(path, points=3)
    err = capsys.readouterr().err
    assert "[hwgen] explore: 3 targets …" in err and "[hwgen] explore: 3/3 targets, " in err
    assert "\r" not in err
    explore(path, points=3, progress=False)
    assert capsys.readouterr().err == ""
