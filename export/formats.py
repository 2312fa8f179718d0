"""The export formats: one table, one record per format carol-export writes.

Each record names the module that builds the file (a `build(model, info, mode, calibration, options,
metadata) -> (bytes, Audit)` function) and the runtime backend the parity gate runs the written file on.
The runtime's own format table (runtime/modelfile.FORMATS) says how a device reads the same formats.
"""
from collections.abc import Callable
from dataclasses import dataclass

from carolgen.runtime.errors import CarolError
from carolgen.runtime.modelfile import FORMATS as FILE_FORMATS

from . import onnx, tflite


@dataclass(frozen=True)
class ExportFormat:
    """One row of the export-format table."""

    name: str  # also the file suffix and the key of runtime.modelfile.FORMATS
    build: Callable
    gate_backend: str  # the runtime backend that the parity gate runs the written file on

    @property
    def suffix(self):
        return FILE_FORMATS[self.name].suffix


EXPORT_FORMATS = {f.name: f for f in (
    ExportFormat("tflite", tflite.build, "litert"),
    ExportFormat("onnx", onnx.build, "onnxruntime"),
)}


def export_format(name):
    """The format's row; CarolError naming the known formats otherwise."""
    if name not in EXPORT_FORMATS:
        raise CarolError(f"unknown export format {name!r}; formats: {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[name]
