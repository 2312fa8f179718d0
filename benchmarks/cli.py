"""carol-bench: export every format x mode, then measure every file x runtime side by side in one run."""
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import carolgen
from carolgen.runtime.cli_common import ArgumentParser, run_command
from carolgen.runtime.errors import CarolError

from .report import write_report
from .rows import Plan, Result, fidelity, litert_benchmark_tool, perplexity, run_probe

EXAMPLES = """examples:
  carol-bench --out benchmarks/results --python-tflite-runtime /opt/tflite214/bin/python
  carol-bench --quick --model runs/tiny/model.keras --out /tmp/bench"""

SETTINGS = {
    "full": {"iterations": 2000, "warmup": 200, "generate_chars": 2000, "seed_loop_chars": 100,
             "seed_loop_iterations": 100, "windows": 500, "primes": 5, "tool_runs": 2000, "cold_starts": 5},
    "quick": {"iterations": 100, "warmup": 10, "generate_chars": 200, "seed_loop_chars": 10,
              "seed_loop_iterations": 10, "windows": 50, "primes": 2, "tool_runs": 100, "cold_starts": 1},
}


def parse_args(argv):
    parser = ArgumentParser(prog="carol-bench", description="Benchmark every exported file on every runtime.",
                            epilog=EXAMPLES)
    parser.add_argument("--model", help="checkpoint (default: the bundled one)")
    parser.add_argument("--out", default="bench-results", help="folder for REPORT.md, report.json/csv, charts")
    parser.add_argument("--quick", action="store_true", help="CI-sized run: fewer iterations and primes")
    parser.add_argument("--python-tflite-runtime", metavar="PATH",
                        help="a Python with tflite-runtime 2.14 and numpy<2, for the tflite-runtime rows")
    return parser.parse_args(argv)


def progress(message):
    print(f"carol-bench: {message}", file=sys.stderr, flush=True)


def reference_set(checkpoint, settings, workdir):
    """Held-out windows, targets and primes, and what Keras says about them."""
    from carolgen.checkpoint import load_checkpoint
    from carolgen.export.parity import batched_probs
    from carolgen.export.windows import held_out_set
    from carolgen.keras_backend import KerasBackend
    from carolgen.runtime.generate import Generator
    model, info = load_checkpoint(checkpoint)
    windows, targets, primes = held_out_set(info, count=settings["windows"])
    primes = primes[:settings["primes"]]
    keras = KerasBackend(model, info)
    probs = batched_probs(keras, windows)
    reference = {"probs": probs, "targets": targets, "greedy": [Generator(keras).generate(p, 200, temperature=0)
                                                                 for p in primes]}
    reference["perplexity"] = perplexity(probs, targets)
    np.save(Path(workdir) / "windows.npy", windows)
    return model, info, reference, {"windows": str(Path(workdir) / "windows.npy"), "primes": primes}


def plans_for(checkpoint, export_rows, files_dir, references, tflite_python):
    plans = [Plan("seed loop (Keras predict per char)", str(checkpoint), "keras-predict", fidelity=False,
                  kind="baseline", mode="fp32", format="keras"),
             Plan("Keras (tf.function)", str(checkpoint), "keras", fidelity=False, kind="keras", mode="fp32",
                  format="keras")]
    for row in export_rows:
        if row.status not in ("accepted", "rejected"):
            continue
        path, common = str(files_dir / row.file), dict(status=row.status, size=row.size, mode=row.mode, format=row.format)
        if row.format == "onnx":
            plans.append(Plan(f"{row.file} · onnxruntime", path, "onnxruntime", **common))
            continue
        plans.append(Plan(f"{row.file} · ai-edge-litert", path, "litert", **common))
        plans.append(Plan(f"{row.file} · tflite-runtime 2.14", path, "tflite-runtime",
                          python=tflite_python or "", **common))
    for label, path in references.items():
        plans.append(Plan(label, str(path), "onnxruntime" if path.suffix == ".onnx" else "litert", kind="reference",
                          size=path.stat().st_size, mode="fp32", format=path.suffix[1:]))
    return plans


def write_references(model, info, files_dir, stem):
    """The two reference files, carrying the fp32 ONNX file's metadata (marked as a reference)."""
    from carolgen.runtime.modelfile import read_model_file
    from .references import fused_tflite, hand_built_onnx
    metadata = dict(read_model_file(files_dir / f"{stem}-fp32.onnx").info.document)
    metadata["export"] = {**metadata["export"], "reference": True}
    paths = {"reference: hand-built ONNX (native LSTM op)": files_dir / "reference-handbuilt.onnx",
             "reference: fused-op TFLite (UNIDIRECTIONAL_SEQUENCE_LSTM)": files_dir / "reference-fused.tflite"}
    builders = [lambda: hand_built_onnx(model, metadata), lambda: fused_tflite(model, info, metadata)]
    for path, build in zip(paths.values(), builders):
        path.write_bytes(build())
    return paths


def cold_start(path, runs):
    """Median seconds for `carol-generate --length 1` as a fresh process (start to first character, bounded)."""
    command = shutil.which("carol-generate")
    if command is None:
        return None
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([command, "--model", str(path), "--length", "1", "--quiet"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    from importlib.metadata import PackageNotFoundError, version
    packages = {}
    for name in ["numpy", "tensorflow-cpu", "keras", "tf_keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert"]:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            pass
    import os
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "packages": packages, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def run(args):
    from carolgen.export import MODES, export
    settings = SETTINGS["quick" if args.quick else "full"]
    checkpoint = Path(args.model or carolgen.DEFAULT_CHECKPOINT)
    if args.python_tflite_runtime and not Path(args.python_tflite_runtime).is_file():
        raise CarolError(f"--python-tflite-runtime: no Python at {args.python_tflite_runtime}")
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as workdir:
        files_dir = Path(workdir) / "files"
        progress("exporting every format x mode")
        export_rows = export(checkpoint, ["tflite", "onnx"], MODES, out=files_dir,
                             progress=lambda r: progress(f"  {r.status}: {r.file}"))
        progress("computing the Keras reference")
        model, info, reference, shared = reference_set(checkpoint, settings, workdir)
        references = write_references(model, info, files_dir, checkpoint.stem)
        results = []
        for plan in plans_for(checkpoint, export_rows, files_dir, references, args.python_tflite_runtime):
            progress(f"measuring {plan.label}")
            results.append(measure_plan(plan, shared, settings, workdir, reference))
        tool = {}
        for mode in ("fp32", "int8"):
            path = files_dir / f"{checkpoint.stem}-{mode}.tflite"
            if path.exists():
                progress(f"LiteRT benchmark tool on {path.name}")
                tool[path.name] = litert_benchmark_tool(path, settings["tool_runs"])
        starts = {name: cold_start(files_dir / name, settings["cold_starts"])
                  for name in (f"{checkpoint.stem}-fp32.onnx", f"{checkpoint.stem}-fp32.tflite")
                  if (files_dir / name).exists()}
        write_report(out, machine(), settings, args.quick, [r.to_dict() for r in export_rows], results, tool,
                     starts, reference["perplexity"])
    print(f"wrote {out}/REPORT.md, report.json, report.csv, latency.png, size_fidelity.png")


def measure_plan(plan, shared, settings, workdir, reference):
    if not plan.python:
        return Result(asdict(plan), False, "not measured: no --python-tflite-runtime given (it needs numpy<2, "
                                           "so its own environment)")
    result, probs = run_probe(plan, shared, settings, workdir)
    if result.measured and plan.fidelity:
        result.figures.update(fidelity(probs, result.figures["greedy"], reference))
    return result


def main(argv=None):
    return run_command(lambda: run(parse_args(argv)))
