"""export(): checkpoint -> audited, self-describing, parity-checked model files; returns the table's rows.

What the toolchain cannot produce is data (UNSUPPORTED), not branches spread through the code; each format
module offers the same three functions (convert, embed_metadata, operator_names).
"""
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import carolgen
from carolgen.checkpoint import file_sha256, load_checkpoint
from carolgen.keras_backend import KerasBackend
from carolgen.runtime.atomic import staged_path
from carolgen.runtime.backends import open_backend
from carolgen.runtime.errors import CarolError
from carolgen.runtime.metadata import dump_metadata

from . import onnx as onnx_format
from . import tflite as tflite_format
from .parity import THRESHOLDS, Reference, failures, measure
from .windows import calibration_windows, parity_set

FORMATS = ("tflite", "onnx")
MODES = ("fp32", "fp16", "dynamic", "dynamic-compat", "int8")
# Every format x mode converts, except these (with the reason the table shows).
UNSUPPORTED = {
    ("onnx", "dynamic-compat"): "dynamic-compat is a TFLite variant for tflite-runtime 2.14; "
                                "ONNX dynamic already loads on every onnxruntime",
}
RUNTIME_BACKEND = {"tflite": "litert", "onnx": "onnxruntime"}
FORMAT_MODULES = {"tflite": tflite_format, "onnx": onnx_format}


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

    def to_dict(self):
        return asdict(self)


@dataclass
class Options:
    checkpoint: Path = None
    formats: tuple = ("tflite",)
    modes: tuple = ("fp32",)
    out: Path = None
    calibration_lyrics: str = None
    calibration_windows: int = 500
    opset: int = 17
    batch: int = 1
    thresholds: dict = field(default_factory=dict)


def check_options(options):
    unknown = [f for f in options.formats if f not in FORMATS] + [m for m in options.modes if m not in MODES]
    if unknown:
        raise CarolError(f"unknown format or mode: {', '.join(unknown)} (formats: {', '.join(FORMATS)}; "
                         f"modes: {', '.join(MODES)})")
    if options.calibration_windows < 300 and "int8" in options.modes:
        raise CarolError("--calibration-windows must be at least 300 for int8")
    if options.batch < 1 or not 11 <= options.opset <= 21:
        raise CarolError("--batch must be >= 1 and --opset between 11 and 21")
    if options.calibration_lyrics is not None and not Path(options.calibration_lyrics).is_dir():
        raise CarolError(f"calibration lyrics folder not found: {options.calibration_lyrics}")


def export(checkpoint=None, formats=("tflite",), modes=("fp32",), out=None, progress=None, **settings):
    """Export every format x mode; returns [Row]. `progress(row)` is called as each row is done."""
    options = Options(Path(checkpoint or carolgen.DEFAULT_CHECKPOINT), tuple(formats), tuple(modes), out, **settings)
    check_options(options)
    out = Path(options.out or options.checkpoint.parent)
    model, info = load_checkpoint(options.checkpoint)
    job = Exporter(options, model, info, out)
    rows = []
    for fmt in options.formats:
        for mode in options.modes:
            rows.append(job.export_one(fmt, mode))
            if progress:
                progress(rows[-1])
    return rows


class Exporter:
    """What every file of one export shares: the checkpoint, its twins, calibration and the Keras reference."""

    def __init__(self, options, model, info, out):
        self.options, self.model, self.info, self.out = options, model, info, out
        self.source = {"checkpoint": options.checkpoint.name, "sha256": file_sha256(options.checkpoint)}
        windows, primes = parity_set(info, options.calibration_lyrics)
        self.reference = Reference(KerasBackend(model, info), windows, primes)
        self._calibration = None

    def calibration(self):
        if self._calibration is None:
            self._calibration = calibration_windows(self.info, self.options.calibration_lyrics,
                                                    self.options.calibration_windows)
        return self._calibration

    def export_one(self, fmt, mode):
        name = f"{self.options.checkpoint.stem}-{mode}.{fmt}"
        if (fmt, mode) in UNSUPPORTED:
            return Row(name, fmt, mode, "unsupported", UNSUPPORTED[(fmt, mode)])
        started = time.perf_counter()
        try:
            data, audit = self._convert(fmt, mode)
        except CarolError:
            raise
        except Exception as error:  # A converter failure is a finding for the table, not a crash.
            return Row(name, fmt, mode, "failed", f"conversion failed: {str(error).strip().splitlines()[-1][:200]}")
        row = Row(name, fmt, mode, "accepted", size=len(data), lstm_as=audit.lstm_as, operators=audit.operators,
                  runtimes=audit.runtimes)
        self.publish(row, data, audit)
        row.seconds = round(time.perf_counter() - started, 1)
        return row

    def _convert(self, fmt, mode):
        calibration = self.calibration() if mode == "int8" else None
        metadata = dump_metadata(self._metadata(fmt, mode, calibration[1] if calibration else None))
        return FORMAT_MODULES[fmt].build(self.model, self.info, mode, calibration[0] if calibration else None,
                                        self.options, metadata)

    def _metadata(self, fmt, mode, calibration):
        import tensorflow as tf
        doc = dict(self.info.document)
        doc.pop("training", None)
        doc.update(created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   tools={**doc.get("tools", {}), "carolgen": carolgen.__version__, "tensorflow": tf.__version__,
                          **_versions("tf2onnx", "onnx", "onnxruntime")},
                   export={"format": fmt, "quantization": mode, "calibration": calibration,
                           "batch": self.options.batch if fmt == "tflite" else None,
                           "source": self.source, "held_out_songs": self.info.document.get("training", {}).get(
                               "held_out_songs", [])})
        return doc

    def publish(self, row, data, audit):
        """Write beside the target, run the parity gate on the written bytes, then rename: to the final name
        if it passes, to NAME.rejected if not. No failing or half-written file ever has the final name."""
        target = self.out / row.file
        limits = {**THRESHOLDS[row.mode], **self.options.thresholds.get(row.mode, {})}
        with staged_path(target) as temporary:
            temporary.write_bytes(data)
            parity = measure(open_backend(temporary, RUNTIME_BACKEND[row.format]), self.reference)
            row.parity = parity.to_dict()
            problems = [f"audit: {b}" for b in audit.breaches] + failures(parity, limits)
            if problems:
                row.status, row.reason, row.file = "rejected", "; ".join(problems), f"{row.file}.rejected"
                target.unlink(missing_ok=True)
            os.replace(temporary, self.out / row.file)


def _versions(*packages):
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found
