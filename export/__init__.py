"""carol-export: Keras checkpoint -> .tflite / .onnx files that carry their own metadata and pass a parity gate.

    from carolgen.export import export
    rows = export("runs/default/model.keras", formats=["tflite", "onnx"], modes=["fp32", "int8"])
"""
from .api import Row, export
from .formats import EXPORT_FORMATS
from .modes import MODES

__all__ = ["EXPORT_FORMATS", "MODES", "Row", "export"]
