"""export(): checkpoint -> audited, self-describing, parity-checked model files; returns the table's rows.

What to build for each format and mode comes from two tables (export/formats.py, export/modes.py); what the
toolchain cannot produce is data in the mode table, not branches here.
"""
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import carolgen
from carolgen.checkpoint import file_sha256, load_checkpoint
from carolgen.keras_backend import KerasBackend, KerasStepBackend
from carolgen.runtime import integrity
from carolgen.runtime.atomic import staged_path, write_bytes_atomic
from carolgen.runtime.backends import open_backend
from carolgen.runtime.errors import CarolError
from carolgen.runtime.generate import MAX_SAMPLES as MAX_MODEL_SAMPLES
from carolgen.runtime.metadata import dump_metadata

from .formats import EXPORT_FORMATS, export_format
from .graphs import GRAPHS, graph
from .modes import MODES, STEP_DRIFT, mode
from .parity import StepGate, WindowGate, failures
from .windows import calibration_windows, parity_set, parity_streams, step_calibration


@dataclass
class Row:
    """One line of the export table."""

    file: str
    format: str
    mode: str
    status: str  # accepted | rejected | unsupported | failed
    reason: str = ""
    size: int = 0
    lstm_as: str = ""
    operators: list = field(default_factory=list)
    parity: dict = field(default_factory=dict)
    runtimes: dict = field(default_factory=dict)
    seconds: float = 0.0
    graph: str = "window"

    def to_dict(self):
        return asdict(self)


@dataclass
class Options:
    checkpoint: Path = None
    formats: tuple = ("tflite",)
    modes: tuple = ("fp32",)
    graphs: tuple = ("window",)
    out: Path = None
    calibration_lyrics: str = None
    calibration_windows: int = 500
    opset: int = 17
    batch: int = 1
    thresholds: dict = field(default_factory=dict)  # {mode or "drift": {limit name: value}} overriding the tables


def check_options(options):
    for name in options.formats:
        export_format(name)
    for name in options.modes:
        mode(name)
    for name in options.graphs:
        graph(name)
    if not 300 <= options.calibration_windows <= 100_000 and any(MODES[m].calibrated for m in options.modes):
        raise CarolError("--calibration-windows must be 300-100,000 for calibrated modes (int8)")
    if not 1 <= options.batch <= MAX_MODEL_SAMPLES or not 11 <= options.opset <= 21:
        raise CarolError(f"--batch must be 1-{MAX_MODEL_SAMPLES} and --opset between 11 and 21")
    if options.calibration_lyrics is not None and not Path(options.calibration_lyrics).is_dir():
        raise CarolError(f"calibration lyrics folder not found: {options.calibration_lyrics}")


def export(checkpoint=None, formats=("tflite",), modes=("fp32",), out=None, progress=None, graphs=("window",),
           **settings):
    """Export every format x graph x mode; returns [Row]. `progress(row)` is called as each row is done."""
    options = Options(Path(checkpoint or carolgen.DEFAULT_CHECKPOINT), tuple(formats), tuple(modes), tuple(graphs),
                      out, **settings)
    check_options(options)
    out = Path(options.out or options.checkpoint.parent)
    model, info = load_checkpoint(options.checkpoint)
    job = Exporter(options, model, info, out)
    rows = []
    for fmt in options.formats:
        for graph_name in options.graphs:
            for name in options.modes:
                rows.append(job.export_one(fmt, name, graph_name))
                if progress:
                    progress(rows[-1])
    return rows


def file_name(stem, fmt, mode_name, graph_name="window"):
    return f"{stem}-{mode_name}{GRAPHS[graph_name].suffix}{EXPORT_FORMATS[fmt].suffix}"


class Exporter:
    """What every file of one export shares: the checkpoint, calibration data and the Keras references (each
    made once, when the first file that needs it is exported)."""

    def __init__(self, options, model, info, out):
        self.options, self.model, self.info, self.out = options, model, info, out
        self.source = {"checkpoint": options.checkpoint.name, "sha256": file_sha256(options.checkpoint)}
        self._made = {}

    def _once(self, key, make):
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def keras(self, graph_name):
        """The Keras model as a backend of the graph's kind: the reference its files are compared with."""
        kinds = {"window": KerasBackend, "step": KerasStepBackend}
        return self._once(("keras", graph_name), lambda: kinds[graph_name](self.model, self.info))

    def gate(self, graph_name):
        lyrics = self.options.calibration_lyrics
        if graph_name == "step":
            drift = STEP_DRIFT.overridden(self.options.thresholds.get("drift", {}))
            return self._once(("gate", "step"), lambda: StepGate(
                self.keras("window"), self.keras("step"), parity_streams(self.info, lyrics), drift))
        return self._once(("gate", "window"), lambda: WindowGate(self.keras("window"), parity_set(self.info, lyrics)))

    def calibration(self, graph_name):
        """(a tuple of arrays, one per input of the graph, description for the metadata)."""
        windows, described = self._once("windows", lambda: calibration_windows(
            self.info, self.options.calibration_lyrics, self.options.calibration_windows))
        if graph_name == "step":
            return self._once("step", lambda: step_calibration(self.keras("step"), windows)), described
        return (windows,), described

    def export_one(self, fmt, mode_name, graph_name="window"):
        name = file_name(self.options.checkpoint.stem, fmt, mode_name, graph_name)
        if fmt in MODES[mode_name].unsupported:
            return Row(name, fmt, mode_name, "unsupported", MODES[mode_name].unsupported[fmt], graph=graph_name)
        started = time.perf_counter()
        inputs, described = self.calibration(graph_name) if MODES[mode_name].calibrated else (None, None)
        metadata = self._metadata(fmt, mode_name, graph_name, described)
        try:
            data, audit = EXPORT_FORMATS[fmt].build(self.model, self.info, GRAPHS[graph_name], mode_name, inputs,
                                                    self.options, dump_metadata(metadata))
        except CarolError:
            raise
        except Exception as error:  # A converter failure is a finding for the table, not a crash.
            return Row(name, fmt, mode_name, "failed",
                       f"conversion failed: {str(error).strip().splitlines()[-1][:200]}", graph=graph_name)
        row = Row(name, fmt, mode_name, "accepted", graph=graph_name, size=len(data), lstm_as=audit.lstm_as,
                  operators=audit.operators, runtimes=audit.runtimes)
        self.publish(row, data, audit, metadata)
        row.seconds = round(time.perf_counter() - started, 1)
        return row

    def _metadata(self, fmt, mode_name, graph_name, calibration):
        import tensorflow as tf
        doc = dict(self.info.document)
        doc.pop("training", None)
        doc.update(created=datetime.now(UTC).isoformat(timespec="seconds"),
                   tools={**doc.get("tools", {}), "carolgen": carolgen.__version__, "tensorflow": tf.__version__,
                          **_versions("tf2onnx", "onnx", "onnxruntime")},
                   export={"format": fmt, "graph": graph_name, "quantization": mode_name, "calibration": calibration,
                           "batch": self.options.batch if fmt == "tflite" else None,
                           "source": self.source, "held_out_songs": self.info.section("training").get(
                               "held_out_songs", [])})
        return doc

    def publish(self, row, data, audit, metadata):
        """Gate the written bytes, then write the file again with its verdict (the parity card) in its
        metadata: to the final name if it passes, to NAME.rejected if not. Every write goes to a temporary
        file renamed into place, so no failing or half-written file ever has the final name, and a rejected
        file never replaces or deletes an accepted one of the final name."""
        limits = MODES[row.mode].limits.overridden(self.options.thresholds.get(row.mode, {}))
        with staged_path(self.out / row.file) as temporary:
            temporary.write_bytes(self.sealed(row.format, data, metadata))
            measured = self.gate(row.graph).measure(open_backend(temporary, EXPORT_FORMATS[row.format].gate_backend),
                                                    limits)
        (_, parity, _), others = measured[0], measured[1:]
        row.parity = {**parity.to_dict(), **{label: other.to_dict() for label, other, _ in others}}
        problems = [f"audit: {b}" for b in audit.breaches] + [
            f"{label + ': ' if label else ''}{problem}" for label, figures, bounds in measured
            for problem in failures(figures, bounds)]
        if problems:
            row.status, row.reason, row.file = "rejected", "; ".join(problems), f"{row.file}.rejected"
        card = parity_card(row, measured, self.source)
        stamped = self.sealed(row.format, data, {**metadata, "parity": card})
        write_bytes_atomic(self.out / row.file, stamped)
        row.size = len(stamped)

    @staticmethod
    def sealed(fmt, data, metadata):
        """The file's bytes carrying `metadata` and sealed with their integrity digest (runtime/integrity.py)."""
        text = dump_metadata({**metadata, "integrity": dict(integrity.SECTION)})
        return integrity.seal(EXPORT_FORMATS[fmt].embed_metadata(data, text))


def parity_card(row, measured, source):
    """The gate's verdict as the file carries it: figures and limits of each comparison (a step file's drift
    under its own key), sample size, reference, date."""
    card = {"verdict": row.status, "reasons": row.reason.split("; ") if row.reason else [],
            "reference": source, "date": datetime.now(UTC).isoformat(timespec="seconds")}
    for label, parity, limits in measured:
        figures = {k: v for k, v in parity.to_dict().items() if k != "greedy"}
        section = {"figures": {k: _json_number(v) for k, v in figures.items()},
                   "limits": {k: _json_number(v) for k, v in asdict(limits).items()}, "windows": parity.windows}
        card.update({label: section} if label else section)
    return card


def _json_number(value):
    """JSON has no NaN or infinity: a limit that is not set, or a figure that is not a number, is null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _versions(*packages):
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found
