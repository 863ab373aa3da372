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


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_verify_progress_and_quiet(spec_build, tmp_path, fast, capsys, sim):
    if not simulators.available(sim):
        pytest.skip(f"simulator {sim} not available (run `make setup`)")
    out = tmp_path / "tiny"
    shutil.copytree(spec_build("quant_output").out_dir, out)
    r = verify(out, frames=FRAMES, sim=sim, seed=2)
    assert r.ok
    err = capsys.readouterr().err
    lines = err.splitlines()
    build_log, sim_log = out / "sim" / sim / "build.log", out / "sim" / sim / "sim.log"
    assert re.search(rf"^\[hwgen\] compile with {sim} [0-9.]+ … \(log: {re.escape(str(build_log))}\)$", err, re.M), err
    assert re.search(rf"^\[hwgen\] compile with {sim} [0-9.]+: [0-9.]+ s$", err, re.M), err
    assert build_log.is_file()                                   # the compiler's output is kept, not swallowed
    assert f"[hwgen] simulate on {sim}: {FRAMES} frames … (log: {sim_log})" in lines
    for i, phase in enumerate(("throughput", "stress")):
        assert any(l.startswith(f"[hwgen] simulate on {sim}: {phase} phase ({i + 1}/2), ") and " frames, " in l
                   for l in lines), err
    assert f"[hwgen] simulate on {sim}: {FRAMES}/{FRAMES} frames, " in err
    assert not any(n.startswith("tb_progress.") for n in os.listdir(out / "sim" / sim))   # cleaned up
    if sim == "verilator":
        assert build_log.stat().st_size > 0 and "C++ compile" in err   # the stage, read from the log
    # again: the compiled simulator is reused; and quiet
    verify(out, frames=FRAMES, sim=sim, seed=2, progress=False)
    assert capsys.readouterr().err == ""
