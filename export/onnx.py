"""Keras twin -> .onnx via tf2onnx, with fp16 weights, dynamic or static (QDQ) int8, and metadata_props.

Graph choice: tf2onnx's from_keras on the tf_keras twin emits the native ONNX `LSTM` op (~39 us a forward
pass here, within a few us of a hand-built graph), where the Keras 3 graph becomes an ONNX Loop (~630 us).
The batch dimension stays dynamic, so one file serves any --num-samples.
"""
import os
import tempfile
from contextlib import contextmanager

import numpy as np

from carolgen.runtime.errors import CarolError
from carolgen.runtime.metadata import METADATA_KEY

from .audit import audit_onnx
from .twin import make_twin

INPUT_NAME = "window"


def build(model, info, mode, calibration, options, metadata):
    """(file bytes, audit) of `model` as an ONNX file in `mode`, carrying the metadata JSON text."""
    proto = convert(make_twin(model, info), mode, calibration, options.opset)
    data = embed_metadata(proto, METADATA_KEY, metadata)
    return data, audit_onnx(operator_names(data), mode)


def convert(twin, mode, calibration=None, opset=17):
    """The ModelProto of `twin` in `mode`, by the mode's recipe."""
    import tensorflow as tf
    import tf2onnx
    if mode not in RECIPES:
        raise CarolError(f"ONNX export has no recipe for mode {mode!r}")
    window_input = twin.inputs[0]  # (batch, window, 1) float32 or (batch, window) int32: the model's encoding
    spec = [tf.TensorSpec([None, *window_input.shape[1:]], window_input.dtype, name=INPUT_NAME)]
    proto, _ = tf2onnx.convert.from_keras(twin, input_signature=spec, opset=opset)
    return RECIPES[mode](proto, calibration)


def weights_to_fp16(proto):
    """Store every float32 weight as float16, cast back to float32 when the session loads.

    Like TFLite's fp16 mode: half the file, float arithmetic. onnxruntime folds the Casts at load time,
    so the forward pass costs what fp32 costs (its CPU kernels for LSTM are float32 only).
    """
    import onnx
    from onnx import helper, numpy_helper
    graph = proto.graph
    for initializer in list(graph.initializer):
        if initializer.data_type != onnx.TensorProto.FLOAT or np.prod(initializer.dims) < 16:
            continue
        values = numpy_helper.to_array(initializer)
        half_name = f"{initializer.name}_fp16"
        graph.initializer.remove(initializer)
        graph.initializer.append(numpy_helper.from_array(values.astype(np.float16), half_name))
        graph.node.insert(0, helper.make_node("Cast", [half_name], [initializer.name], to=onnx.TensorProto.FLOAT,
                                              name=f"{initializer.name}_to_fp32"))
    return proto


class _Windows:
    """onnxruntime's CalibrationDataReader protocol over an array of windows, one batch of 1 at a time."""

    def __init__(self, windows):
        self.rows = iter(windows)

    def get_next(self):
        row = next(self.rows, None)
        return None if row is None else {INPUT_NAME: row[None]}


def quantize_dynamic(proto, calibration=None):
    """onnxruntime's dynamic quantisation: int8 weights (the LSTM becomes DynamicQuantizeLSTM)."""
    from onnxruntime import quantization as q
    with _files(proto) as (source, target):
        q.quantize_dynamic(source, target, weight_type=q.QuantType.QInt8)
        return _load(target)


def quantize_static(proto, calibration):
    """onnxruntime's static QDQ quantisation: int8 weights and activations, MinMax calibration."""
    from onnxruntime import quantization as q
    with _files(proto) as (source, target):
        q.quantize_static(source, target, _Windows(calibration), quant_format=q.QuantFormat.QDQ,
                          activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                          calibrate_method=q.CalibrationMethod.MinMax)
        return _load(target)


@contextmanager
def _files(proto):
    """(source path holding `proto`, target path) in a temporary folder: the quantisers work on files."""
    import onnx
    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "in.onnx"), os.path.join(folder, "out.onnx")
        onnx.save(proto, source)
        yield source, target


def _load(path):
    import onnx
    return onnx.load(path)


# How each mode is made from the fp32 ModelProto: (proto, calibration windows) -> ModelProto.
RECIPES = {
    "fp32": lambda proto, calibration: proto,
    "fp16": lambda proto, calibration: weights_to_fp16(proto),
    "dynamic": quantize_dynamic,
    "int8": quantize_static,
}


def embed_metadata(proto, name, text):
    """Serialized bytes of `proto` with metadata_props[name] = text."""
    kept = [p for p in proto.metadata_props if p.key != name]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = name, text
    return proto.SerializeToString()


def operator_names(data):
    """Sorted op types of an ONNX file (subgraphs included), from its bytes."""
    import onnx
    proto = onnx.load_from_string(data)
    names = set()

    def walk(graph):
        for node in graph.node:
            names.add(node.op_type)
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g)
    walk(proto.graph)
    return sorted(names)
