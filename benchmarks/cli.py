"""carol-bench: export every format x mode, then measure every file x runtime side by side in one run."""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import carolgen
from carolgen.quality import WORD_RATE_SETTINGS, training_words
from carolgen.runtime.cli_common import ArgumentParser, Progress, run_command
from carolgen.runtime.errors import CarolError

from .litert_tool import litert_benchmark_tool
from .loop_overhead import loop_overhead
from .report import write_report
from .rows import (
    FILE_KINDS,
    baseline_plans,
    file_plans,
    generation_pairs,
    measure,
    paired_timing,
    reference_plans,
    retime,
    take_round_medians,
)

EXAMPLES = """examples:
  carol-bench --out benchmarks/results --python-tflite-runtime /opt/tflite214/bin/python
  carol-bench --quick --model runs/tiny/model.keras --out /tmp/bench"""

SETTINGS = {
    "full": {"iterations": 2000, "warmup": 200, "generate_chars": 2000, "seed_loop_chars": 100,
             "seed_loop_iterations": 100, "windows": 2000, "primes": 5, "tool_runs": 2000, "cold_starts": 5,
             "word_rate_chars": WORD_RATE_SETTINGS["length"], "timing_rounds": 3,
             "paired_rounds": 20, "generation_rounds": 7, "loop_chars": 20_000, "window_modes": None,
             "step_modes": None, "numpy_modes": None},
    "quick": {"iterations": 100, "warmup": 10, "generate_chars": 200, "seed_loop_chars": 10,
              "seed_loop_iterations": 10, "windows": 50, "primes": 2, "tool_runs": 100, "cold_starts": 1,
              "word_rate_chars": 200, "timing_rounds": 1,
              "paired_rounds": 2, "generation_rounds": 1, "loop_chars": 1000, "window_modes": ["fp32", "int8"],
              "step_modes": ["fp32"], "numpy_modes": ["fp32"]},
}
PACKAGES = ["numpy", "tensorflow", "keras", "tf_keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert"]


def parse_args(argv):
    parser = ArgumentParser(prog="carol-bench", description="Benchmark every exported file on every runtime.",
                            epilog=EXAMPLES)
    parser.add_argument("--model", action="append",
                        help="checkpoint to measure, repeatable; the first is the main one (default: the bundled "
                             "model, then the bundled seed-architecture model)")
    parser.add_argument("--out", default="bench-results", help="folder for REPORT.md, report.json/csv, charts")
    parser.add_argument("--quick", action="store_true", help="CI-sized run: fewer iterations and primes")
    parser.add_argument("--previous", metavar="REPORT_JSON",
                        help="an earlier report.json: the report adds each file's size, p50 and perplexity "
                             "then and now")
    parser.add_argument("--render", metavar="REPORT_JSON",
                        help="write the reports again from an earlier run's report.json (no measuring)")
    parser.add_argument("--python-tflite-runtime", metavar="PATH",
                        help="a Python with tflite-runtime 2.14 and numpy<2, for the tflite-runtime rows")
    return parser.parse_args(argv)


def progress(message):
    print(f"carol-bench: {message}", file=sys.stderr, flush=True)


def keras_reference(checkpoint, settings, workdir):
    """The gate's Keras reference on the parity set, and the windows file every probe reads."""
    from carolgen.checkpoint import load_checkpoint
    from carolgen.export.parity import WindowGate
    from carolgen.export.windows import parity_set
    from carolgen.keras_backend import KerasBackend
    model, info = load_checkpoint(checkpoint)
    windows, targets, held_out, primes = parity_set(info, count=settings["windows"])
    gate = WindowGate(KerasBackend(model, info), (windows, targets, held_out, primes[:settings["primes"]]))
    reference = gate.reference
    np.save(Path(workdir) / "windows.npy", windows)
    shared = {"windows": str(Path(workdir) / "windows.npy"), "primes": gate.primes,
              "greedy_chars": len(reference.texts[0]) if reference.texts else 0,
              "samples": {**WORD_RATE_SETTINGS, "length": settings["word_rate_chars"]}}
    return model, info, reference, shared


def write_references(model, info, files_dir, stem):
    """The two speed references, carrying the fp32 ONNX file's metadata (marked as a reference) and sealed
    like an exported file: {description: (path, format, runtime backend)}."""
    from carolgen.runtime import integrity
    from carolgen.runtime.modelfile import read_model_file

    from .references import hand_built_onnx, unrolled_tflite
    metadata = {k: v for k, v in read_model_file(files_dir / f"{stem}-fp32.onnx").info.document.items()
                if k != "parity"}
    metadata["export"] = {**metadata["export"], "reference": True}
    metadata["integrity"] = dict(integrity.SECTION)
    references = {
        "reference: hand-built ONNX (native LSTM op)": (files_dir / "reference-handbuilt.onnx", "onnx", "onnxruntime",
                                                        lambda: hand_built_onnx(model, metadata)),
        "reference: unrolled TFLite (the previous export)": (files_dir / "reference-unrolled.tflite", "tflite",
                                                             "litert", lambda: unrolled_tflite(model, info, metadata)),
    }
    for path, _, _, build in references.values():
        path.write_bytes(integrity.seal(build()))
    return {description: (path, fmt, runtime) for description, (path, fmt, runtime, _) in references.items()}


def cold_start(path, runs):
    """Median seconds for `carol-generate --length 1` as a fresh process of this Python (start to first char)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "carolgen.generate", "--model", str(path), "--length", "1", "--quiet"],
                       capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def machine():
    from importlib.metadata import PackageNotFoundError, version
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "packages": packages, "date": datetime.now(UTC).isoformat(timespec="seconds")}


@dataclass
class CheckpointRun:
    """What carol-bench measured for one checkpoint."""

    export_rows: list
    results: list
    perplexity: float
    tool: dict
    starts: dict
    generation: list
    loop: dict


def bench_checkpoint(checkpoint, settings, workdir, tflite_python, main):
    """Export every format x graph x mode of one checkpoint and measure every file x runtime against its own
    Keras reference, with LiteRT's tool as a cross-check. The main checkpoint also gets the seed loop, cold
    starts, windowed and step files generating side by side, and the generation loop's own overhead."""
    from carolgen.export import EXPORT_FORMATS, MODES, export
    from carolgen.export.graphs import GRAPHS
    workdir.mkdir(parents=True)
    files_dir = workdir / "files"
    progress(f"{checkpoint.name}: exporting every format x graph x mode")
    export_rows = []
    for graph in GRAPHS:  # a quick run exports fewer modes (settings: window_modes, step_modes)
        modes = settings[f"{graph}_modes"] or list(MODES)
        export_rows += export(checkpoint, list(EXPORT_FORMATS), modes, out=files_dir, graphs=[graph],
                              progress=lambda r: progress(f"  {r.status}: {r.file}"))
    progress(f"{checkpoint.name}: computing the Keras reference")
    model, info, reference, shared = keras_reference(checkpoint, settings, workdir)
    known_words = training_words(info)
    references = write_references(model, info, files_dir, checkpoint.stem)
    plans = (baseline_plans(checkpoint, seed_loop=main)
             + file_plans(export_rows, files_dir, tflite_python, checkpoint.stem, settings["numpy_modes"])
             + reference_plans(references, checkpoint.stem))
    results = []
    steps = Progress(len(plans), f"carol-bench: {checkpoint.name}")
    for plan in plans:
        results.append(measure(plan, shared, settings, workdir, reference, known_words))
        steps.step(f"measured {plan.label}")
    retime_in_rounds(plans, results, shared, settings, workdir)
    progress(f"{checkpoint.name}: paired timing, every file of a runtime in one process")
    paired_timing(plans, results, shared, settings, workdir)
    generation, loop = [], {}
    if main:
        progress(f"{checkpoint.name}: windowed and step files generating side by side; the loop's overhead")
        generation = generation_pairs(plans, results, shared, settings, workdir)
        loop = loop_overhead(info, reference.probs, settings["loop_chars"])
    tool, starts = {}, {}
    for row in (r for r in export_rows if r.status == "accepted" and r.format == "tflite"):
        if row.mode in ("fp32", "int8") and row.graph == "window":
            progress(f"LiteRT benchmark tool on {row.file}")
            tool[row.file] = (checkpoint.stem, row.mode, *litert_benchmark_tool(files_dir / row.file,
                                                                               settings["tool_runs"]))
    if main:
        for row in (r for r in export_rows if r.status == "accepted" and r.mode == "fp32" and r.graph == "window"):
            starts[row.format] = (row.file, cold_start(files_dir / row.file, settings["cold_starts"]))
    return CheckpointRun(export_rows, results, reference.perplexity, tool, starts, generation, loop)


def retime_in_rounds(plans, results, shared, settings, workdir):
    """Time the file and reference rows again, in turn, `timing_rounds` times in all, and keep each row's
    median: the machine's drift over the minutes of a run then spreads over every row."""
    timed = [(plan, result) for plan, result in zip(plans, results, strict=True)
             if result.measured and plan.kind in FILE_KINDS]
    rounds = {id(result): [] for _, result in timed}
    for number in range(2, settings["timing_rounds"] + 1):
        for plan, result in timed:
            progress(f"timing round {number}/{settings['timing_rounds']}: {plan.label}")
            rounds[id(result)].append(retime(plan, shared, settings, workdir))
    for _, result in timed:
        take_round_medians(result, rounds[id(result)])


def checkpoints_from(models):
    """The checkpoints to measure: those given, else the bundled model and the bundled seed-architecture one."""
    paths = [Path(m) for m in models] if models else [carolgen.DEFAULT_CHECKPOINT, carolgen.SEED_CHECKPOINT]
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        raise CarolError(f"--model: checkpoints need different file names (their files are named after them): "
                         f"{', '.join(stems)}")
    return paths


def read_previous(path):
    """The earlier report.json document named by --previous (None without it), checked before the long run."""
    if path is None:
        return None
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CarolError(f"--previous: cannot read {path} as a carol-bench report.json: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise CarolError(f"--previous: {path} is not a carol-bench report.json (no rows)")
    return document


def render(path, out, previous):
    """The reports of an earlier run, written again from its report.json (after a change to the report)."""
    from .rows import Result
    document = read_previous(path)
    write_report(out, document["machine"], document["settings"], document["quick"], document["export"],
                 [Result(**r) for r in document["raw"]], document["litert_benchmark_tool"], document["cold_start_s"],
                 document["keras_perplexity"], previous, document.get("generation", []),
                 document.get("loop_overhead_us", {}))
    print(f"wrote {out}/REPORT.md, report.json, report.csv, latency.png, size_fidelity.png from {path}")


def run(args):
    if args.render:
        return render(args.render, Path(args.out), read_previous(args.previous))
    settings = SETTINGS["quick" if args.quick else "full"]
    checkpoints = checkpoints_from(args.model)
    if args.python_tflite_runtime and not Path(args.python_tflite_runtime).is_file():
        raise CarolError(f"--python-tflite-runtime: no Python at {args.python_tflite_runtime}")
    previous = read_previous(args.previous)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as workdir:
        runs = [bench_checkpoint(c, settings, Path(workdir) / c.stem, args.python_tflite_runtime, main=i == 0)
                for i, c in enumerate(checkpoints)]
    tool = {file: entry for run in runs for file, entry in run.tool.items()}
    write_report(out, machine(), settings, args.quick, [r.to_dict() for run in runs for r in run.export_rows],
                 [r for run in runs for r in run.results], tool, runs[0].starts,
                 {c.stem: run.perplexity for c, run in zip(checkpoints, runs, strict=True)}, previous,
                 runs[0].generation, runs[0].loop)
    print(f"wrote {out}/REPORT.md, report.json, report.csv, latency.png, size_fidelity.png")


def main(argv=None):
    return run_command(lambda: run(parse_args(argv)))
