"""What carol-bench measures: the rows, each run as a probe subprocess, and their fidelity against Keras."""
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

PROBE_TIMEOUT_S = 600


@dataclass
class Plan:
    """One row to measure: a label, a file, a backend and the Python that runs it."""

    label: str
    model: str
    backend: str
    python: str = sys.executable
    fidelity: bool = True
    kind: str = "file"  # baseline | keras | file | reference
    status: str = ""
    size: int = 0
    mode: str = ""
    format: str = ""


@dataclass
class Result:
    plan: dict
    measured: bool
    note: str = ""
    figures: dict = field(default_factory=dict)


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


def run_probe(plan, shared, settings, workdir):
    """Run one row's probe; a crash, timeout or error is recorded as the row's note, never raised."""
    request = {"model": plan.model, "backend": plan.backend, "windows": shared["windows"],
               "primes": shared["primes"] if plan.fidelity else [], "fidelity": plan.fidelity,
               "generate_chars": settings["seed_loop_chars"] if plan.kind == "baseline" else settings["generate_chars"],
               "iterations": settings["seed_loop_iterations"] if plan.kind == "baseline" else settings["iterations"],
               "warmup": settings["warmup"], "probs_out": str(Path(workdir) / f"probs-{abs(hash(plan.label))}.npy")}
    request_path = Path(workdir) / "request.json"
    request_path.write_text(json.dumps(request))
    env = dict(os.environ)
    if plan.python != sys.executable:
        env["PYTHONPATH"] = shadow_package(Path(workdir) / "shadow")
    try:
        done = subprocess.run([plan.python, "-m", "carolgen.bench.probe", str(request_path)], capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return Result(asdict(plan), False, f"timed out after {PROBE_TIMEOUT_S} s"), None
    if done.returncode != 0:
        reason = f"crashed (signal {-done.returncode})" if done.returncode < 0 else \
            (done.stderr.strip().splitlines() or ["failed"])[-1].replace(str(Path(plan.model).parent) + "/", "")[:160]
        return Result(asdict(plan), False, reason), None
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    probs = np.load(request["probs_out"]) if plan.fidelity else None
    return Result(asdict(plan), True, figures=figures), probs


def perplexity(probs, targets):
    """exp(mean negative log-likelihood) of the targets under the probabilities."""
    return float(np.exp(-np.mean(np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-12, 1)))))


def fidelity(probs, greedy, reference):
    """The export gate's parity figures against Keras, plus held-out perplexity and its change."""
    from carolgen.export.parity import compare
    parity = compare(probs, greedy, reference["probs"], reference["greedy"])
    value = perplexity(probs.astype(np.float64), reference["targets"])
    return {"max_abs_dp": parity.max_abs_dp, "top1": parity.top1, "mean_kl": parity.mean_kl,
            "greedy_median": parity.greedy_median, "perplexity": value,
            "perplexity_change": value - reference["perplexity"]}


def litert_benchmark_tool(model, runs):
    """LiteRT's own benchmark tool (shipped in the ai-edge-litert wheel): its median latency in us, or a note."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        try:
            subprocess.run([sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", f"--model={model}",
                            f"--num_runs={runs}", "--warmup_runs=50", "--num_threads=1", f"--result_json={out}"],
                           capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=True)
            result = json.loads(out.read_text())
        except (subprocess.SubprocessError, OSError, ValueError) as error:
            return None, f"LiteRT's benchmark tool did not run: {str(error).splitlines()[0][:120]}"
    median_ms = result.get("latency", {}).get("median_ms")
    return (median_ms * 1000, "") if median_ms is not None else (None, "no latency.median_ms in the tool's JSON")
