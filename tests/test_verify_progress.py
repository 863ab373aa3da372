"""The simulator compile and the simulation show progress (issue 12 part 5): the compile a
task naming its log (stage from the log), the simulation frames done / total per phase."""

import os
import re
import shutil

import pytest

from hwgen import simulators
from hwgen.verify import verify

pytestmark = pytest.mark.sim

FRAMES = 40


@pytest.mark.parametrize("sim, engine", [("icarus", "cocotb"), ("verilator", "cocotb"), ("verilator", "compiled")])
def test_verify_progress_and_quiet(spec_build, tmp_path, fast, capsys, monkeypatch, sim, engine):
    if not simulators.available(sim):
        pytest.skip(f"simulator {sim} not available (run `make setup`)")
    monkeypatch.setenv("HWGEN_CACHE", "off")                     # compile here, not from the user cache
    out = tmp_path / "tiny"
    shutil.copytree(spec_build("quant_output").out_dir, out, ignore=shutil.ignore_patterns("sim"))
    r = verify(out, frames=FRAMES, sim=sim, seed=2, engine=engine)
    assert r.ok
    err = capsys.readouterr().err
    lines = err.splitlines()
    compiled = engine == "compiled"
    where = out / "sim" / (f"{sim}-compiled" if compiled else sim)
    what = f"{sim} (compiled testbench)" if compiled else sim
    build_log, sim_log = where / "build.log", where / "sim.log"
    version = r"[0-9.]+" + (r" \(compiled testbench\)" if compiled else "")
    assert re.search(rf"^\[hwgen\] compile with {sim} {version} … \(log: {re.escape(str(build_log))}\)$", err, re.M), err
    assert re.search(rf"^\[hwgen\] compile with {sim} {version}: [0-9.]+ s$", err, re.M), err
    assert build_log.is_file()                                   # the compiler's output is kept, not swallowed
    assert f"[hwgen] simulate on {what}: {FRAMES} frames … (log: {sim_log})" in lines
    for i, phase in enumerate(("throughput", "stress")):
        assert any(l.startswith(f"[hwgen] simulate on {what}: {phase} phase ({i + 1}/2), ") and " frames, " in l
                   for l in lines), err
    assert f"[hwgen] simulate on {what}: {FRAMES}/{FRAMES} frames, " in err
    assert not any(n.startswith(("tb_progress.", "hwgen-run-")) for n in os.listdir(where))   # cleaned up
    if sim == "verilator":
        assert build_log.stat().st_size > 0 and "C++ compile" in err   # the stage, read from the log
    # again: the compiled simulator is reused; and quiet
    verify(out, frames=FRAMES, sim=sim, seed=2, engine=engine, progress=False)
    assert capsys.readouterr().err == ""
