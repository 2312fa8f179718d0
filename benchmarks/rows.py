"""What carol-bench measures: one Plan per row, derived from the export rows and the runtime's backend table.

A row is identified by (checkpoint, kind, format, mode, runtime), never by its display label, so the report
finds its rows whatever the checkpoint is called.
"""
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

from carolgen.quality import word_rate_of
from carolgen.runtime.backends import BACKENDS

from .runner import host_command, run_probe

# Which Python measures each runtime backend: this one, or the one given for tflite-runtime 2.14 (it needs
# numpy < 2). tf.lite runs the same kernels as ai-edge-litert inside TensorFlow, so it gets no row. The
# numpy backend (no interpreter) is measured on every file, the floor a Pi without an interpreter gets.
BENCH_PYTHON = {"litert": "host", "onnxruntime": "host", "tflite-runtime": "tflite-runtime", "numpy": "host"}
# The kinds of row that are a model file on a runtime (timed in rounds and in pairs).
FILE_KINDS = ("file", "step", "reference")


@dataclass
class Plan:
    """One row to measure."""

    kind: str  # baseline | keras | file (windowed) | step (a step file) | reference
    checkpoint: str  # the stem of the checkpoint the row belongs to
    model: str
    runtime: str
    format: str
    mode: str = "fp32"
    status: str = ""
    size: int = 0
    python: str = sys.executable
    fidelity: bool = True
    name: str = ""  # the file's name, or the row's description for baselines and references

    @property
    def label(self):
        return f"{self.name} · {self.runtime}" if self.kind in FILE_KINDS else self.name


@dataclass
class Result:
    plan: dict
    measured: bool
    note: str = ""
    figures: dict = field(default_factory=dict)


def file_plans(export_rows, files_dir, tflite_python, stem, numpy_modes=None):
    """A row for every exported file on every runtime backend of its format that the bench measures (the numpy
    backend only on `numpy_modes`' files, when given)."""
    plans = []
    for row in export_rows:
        if row.status not in ("accepted", "rejected"):
            continue
        for backend in (b for b in BACKENDS.values() if row.format in b.formats and b.name in BENCH_PYTHON):
            if backend.name == "numpy" and numpy_modes and row.mode not in numpy_modes:
                continue
            python = sys.executable if BENCH_PYTHON[backend.name] == "host" else (tflite_python or "")
            kind = "step" if row.graph == "step" else "file"
            plans.append(Plan(kind, stem, str(files_dir / row.file), backend.name, row.format, row.mode,
                              row.status, row.size, python, name=row.file))
    return plans


def baseline_plans(checkpoint, seed_loop=True):
    """The Keras rows of a checkpoint: under tf.function, and (seed_loop) the seed project's predict loop."""
    stem = checkpoint.stem
    keras = Plan("keras", stem, str(checkpoint), "keras", "keras", fidelity=False,
                 name=f"{checkpoint.name}: Keras (tf.function)")
    if not seed_loop:
        return [keras]
    return [Plan("baseline", stem, str(checkpoint), "keras-predict", "keras", fidelity=False,
                 name=f"{checkpoint.name}: seed loop (Keras predict per char)"), keras]


def reference_plans(references, stem):
    """Rows for the speed references: {description: (path, format, runtime backend)}."""
    return [Plan("reference", stem, str(path), runtime, fmt, size=path.stat().st_size, name=description)
            for description, (path, fmt, runtime) in references.items()]


def probe_request(plan, shared, settings, timing_only=False):
    """What the probe of a row is asked to do; `timing_only` skips fidelity and word-rate samples."""
    baseline = plan.kind == "baseline"
    return {"model": plan.model, "backend": plan.runtime, "kernels": "auto", "windows": shared["windows"],
            "primes": shared["primes"] if plan.fidelity and not timing_only else [],
            "greedy_chars": shared["greedy_chars"],
            "timing": {"iterations": settings["seed_loop_iterations" if baseline else "iterations"],
                       "warmup": settings["warmup"],
                       "generate_chars": settings["seed_loop_chars" if baseline else "generate_chars"]},
            "samples": None if baseline or timing_only else shared["samples"]}


# The figures a machine's drift moves: carol-bench measures them in rounds, rows taken in turn, and reports
# the median over the rounds, so that a slow minute does not land on one row alone.
TIMED_FIGURES = ("p50_us", "p90_us", "p99_us", "chars_per_s")


def retime(plan, shared, settings, workdir):
    """The timed figures of one more timing-only probe of a row, or None if it did not run."""
    command, env = host_command(plan.python, workdir)
    outcome = run_probe(command, probe_request(plan, shared, settings, timing_only=True), workdir, env=env)
    return {k: outcome.result[k] for k in TIMED_FIGURES} if outcome.status == "ok" else None


def paired_timing(plans, results, shared, settings, workdir):
    """Time the file and reference rows of each (checkpoint, runtime) together in one process, in interleaved
    blocks (probe.paired), and add the figure to each result as paired_p50_us."""
    groups = {}
    for plan, result in zip(plans, results, strict=True):
        if result.measured and plan.kind in FILE_KINDS:
            groups.setdefault((plan.checkpoint, plan.runtime, plan.python), []).append((plan, result))
    for (_, runtime, python), members in groups.items():
        request = {"model": members[0][0].model, "paired": [plan.model for plan, _ in members], "backend": runtime,
                   "windows": shared["windows"], "rounds": settings["paired_rounds"]}
        command, env = host_command(python, workdir)
        outcome = run_probe(command, request, workdir, env=env)
        if outcome.status == "ok":
            for (_, result), p50 in zip(members, outcome.result["paired_p50_us"], strict=True):
                result.figures["paired_p50_us"] = p50


def generation_pairs(plans, results, shared, settings, workdir):
    """Each runtime's fp32 windowed and step files of the main checkpoint generating in one process, in turn
    (probe.paired_generation): [{runtime, files, greedy_chars_per_s, sampled_chars_per_s}] (a list per file)."""
    main = plans[0].checkpoint if plans else None
    measured = [p for p, r in zip(plans, results, strict=True)
                if r.measured and p.checkpoint == main and p.mode == "fp32" and p.kind in ("file", "step")]
    pairs = []
    for runtime in dict.fromkeys(p.runtime for p in measured):
        files = {p.kind: p for p in measured if p.runtime == runtime}
        if set(files) != {"file", "step"}:
            continue
        request = {"model": files["file"].model, "generation": [files["file"].model, files["step"].model],
                   "backend": runtime, "chars": settings["generate_chars"], "rounds": settings["generation_rounds"]}
        command, env = host_command(files["file"].python, workdir)
        outcome = run_probe(command, request, workdir, env=env)
        if outcome.status == "ok":
            pairs.append({"runtime": runtime, "files": [files["file"].name, files["step"].name], **outcome.result})
    return pairs


def take_round_medians(result, rounds):
    """Replace a result's timed figures by their median over its first probe and the extra rounds."""
    measured = [{k: result.figures[k] for k in TIMED_FIGURES}] + [r for r in rounds if r]
    for key in TIMED_FIGURES:
        result.figures[key] = float(np.median([r[key] for r in measured]))
    result.figures["timing_rounds"] = len(measured)


def measure(plan, shared, settings, workdir, reference, known_words):
    """Run one plan's probe; a crash, timeout or refusal is the row's note, never raised."""
    if not plan.python:
        return Result(asdict(plan), False, "not measured: no --python-tflite-runtime given (it needs numpy<2, "
                                           "so its own environment)")
    command, env = host_command(plan.python, workdir)
    outcome = run_probe(command, probe_request(plan, shared, settings), workdir, env=env)
    if outcome.status != "ok":
        return Result(asdict(plan), False, outcome.note)
    figures = dict(outcome.result)
    if figures.get("samples"):
        figures["word_rate"] = word_rate_of(figures.pop("samples"), known_words)
    if plan.fidelity:
        figures.update(fidelity(reference, outcome.probs, figures["greedy"]))
    return Result(asdict(plan), True, figures=figures)


def fidelity(reference, probs, greedy):
    """The export gate's parity figures against Keras, with the held-out perplexity's change."""
    parity = reference.compare(probs, greedy)
    return {"max_abs_dp": parity.max_abs_dp, "top1": parity.top1, "mean_kl": parity.mean_kl,
            "greedy_median": parity.greedy_median, "perplexity": parity.perplexity,
            "perplexity_increase": parity.perplexity_increase, "lost": parity.lost}
