"""Run one probe (benchmarks/probe.py) in a process of its own, under any Python, and say how it ended.

The one definition of how a case ends, used by carol-bench and carol-pi-check alike:
- ok: exit 0 and a JSON line on stdout;
- refused: a non-zero exit with a message (the runtime's one-line error: a file it cannot load);
- crashed: killed by a signal (a negative return code, or 128 + signal where a wrapper reports it that way);
- hung: no answer within the timeout.
"""
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROBE_TIMEOUT_S = 600


@dataclass
class Outcome:
    status: str  # ok | refused | crashed | hung
    result: dict = None
    probs: np.ndarray = None
    note: str = ""


def run_probe(command, request, workdir, env=None, cwd=None, timeout=PROBE_TIMEOUT_S):
    """Run `command + [-m carolgen.bench.probe REQUEST.json]`; returns its Outcome, never raises for the case."""
    workdir = Path(workdir)
    request_path = workdir / "request.json"
    request = {**request, "probs_out": str(workdir / "probs.npy")}
    Path(request["probs_out"]).unlink(missing_ok=True)
    request_path.write_text(json.dumps(request))
    try:
        # cwd: `python -m` puts the working folder first on sys.path; a source checkout there would shadow
        # the installed carolgen with one whose runtime/ is not in place.
        done = subprocess.run([*command, "-m", "carolgen.bench.probe", str(request_path)], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=cwd or workdir)
    except subprocess.TimeoutExpired:
        return Outcome("hung", note=f"hung: no answer in {timeout} s")
    if done.returncode < 0 or done.returncode > 128:
        signal = -done.returncode if done.returncode < 0 else done.returncode - 128
        return Outcome("crashed", note=f"crashed (signal {signal})")
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return Outcome("refused", note=message.replace(str(Path(request["model"]).parent) + "/", "")[:160])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    probs = np.load(request["probs_out"]) if Path(request["probs_out"]).is_file() else None
    return Outcome("ok", result, probs)


def host_command(python=sys.executable, workdir=None):
    """(command, env) for a host Python; a foreign one (another numpy) sees only carolgen's light parts."""
    env = dict(os.environ)
    if python != sys.executable:
        env["PYTHONPATH"] = shadow_package(Path(workdir) / "shadow")
    return [python], env


def shadow_package(folder):
    """A folder holding just carolgen's light parts (package root, runtime, bench), for a foreign Python."""
    import carolgen
    import carolgen.bench
    import carolgen.runtime
    root = Path(folder) / "carolgen"
    root.mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_bytes(Path(carolgen.__file__).read_bytes())
    for name, package in (("runtime", carolgen.runtime), ("bench", carolgen.bench)):
        link = root / name
        if not link.exists():
            link.symlink_to(Path(package.__file__).parent, target_is_directory=True)
    return str(folder)
