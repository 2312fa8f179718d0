"""carol-export: Keras checkpoint -> .tflite / .onnx files that carry their own metadata and pass a parity gate.

    from carolgen.export import export
    rows = export("runs/default/model.keras", formats=["tflite", "onnx"], modes=["fp32", "int8"])
"""
from .api import FORMATS, MODES, Row, export

__all__ = ["FORMATS", "MODES", "Row", "export"]
