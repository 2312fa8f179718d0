"""The export formats: one table, one record per format carol-export writes.

Each record holds the module that builds the file (its `build(model, info, mode, calibration, options,
metadata) -> (bytes, Audit)` and its per-mode `RECIPES`) and the runtime backend the parity gate runs the
written file on.
The runtime's own format table (runtime/modelfile.FORMATS) says how a device reads the same formats.
"""
from dataclasses import dataclass
from types import ModuleType

from carolgen.runtime.errors import CarolError
from carolgen.runtime.metadata import METADATA_KEY
from carolgen.runtime.modelfile import FORMATS as FILE_FORMATS

from . import onnx, tflite


@dataclass(frozen=True)
class ExportFormat:
    """One row of the export-format table."""

    name: str  # also the key of runtime.modelfile.FORMATS
    module: ModuleType  # build() and RECIPES
    gate_backend: str  # the runtime backend that the parity gate runs the written file on

    @property
    def build(self):
        return self.module.build

    def embed_metadata(self, data, text):
        """The file's bytes with its carolgen metadata entry replaced by `text`."""
        return self.module.embed_metadata(data, METADATA_KEY, text)

    @property
    def suffix(self):
        return FILE_FORMATS[self.name].suffix


EXPORT_FORMATS = {f.name: f for f in (
    ExportFormat("tflite", tflite, "litert"),
    ExportFormat("onnx", onnx, "onnxruntime"),
)}


def export_format(name):
    """The format's row; CarolError naming the known formats otherwise."""
    if name not in EXPORT_FORMATS:
        raise CarolError(f"unknown export format {name!r}; formats: {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[name]
