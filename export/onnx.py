"""Keras twin -> .onnx via tf2onnx: fp16 or int8 stored weights, static (QDQ) int8, and metadata_props.

Graph choice: tf2onnx's from_keras on the tf_keras twin emits the native ONNX `LSTM` op (~39 us a forward
pass here, within a few us of a hand-built graph), where the Keras 3 graph becomes an ONNX Loop (~630 us).
The batch dimension stays dynamic, so one file serves any --num-samples.
"""
import logging
import os
import tempfile
from contextlib import contextmanager

import numpy as np

from carolgen.runtime.errors import CarolError
from carolgen.runtime.metadata import METADATA_KEY

from .audit import audit_onnx


def build(model, info, graph, mode, calibration, options, metadata):
    """(file bytes, audit) of `model`'s `graph` (export/graphs.py) as an ONNX file in `mode`, carrying the
    metadata JSON text."""
    proto = convert(graph.twin(model, info), mode, calibration, options.opset, graph.float_in_int8)
    data = embed_metadata(proto, METADATA_KEY, metadata)
    return data, audit_onnx(operator_names(data), mode, graph.name)


def convert(twin, mode, calibration=None, opset=17, float_layers=()):
    """The ModelProto of `twin` in `mode`, by the mode's recipe. Its inputs keep the twin's input names
    (window; or char and state) and a free batch dimension. `calibration`: a tuple of arrays, one per input;
    `float_layers`: layers whose nodes stay float (int8 only)."""
    import tensorflow as tf
    import tf2onnx
    if mode not in RECIPES:
        raise CarolError(f"ONNX export has no recipe for mode {mode!r}")
    spec = [tf.TensorSpec([None, *i.shape[1:]], i.dtype, name=input_name(i)) for i in twin.inputs]
    proto, _ = tf2onnx.convert.from_keras(twin, input_signature=spec, opset=opset)
    return RECIPES[mode](proto, calibration, float_layers)


def weights_to_fp16(proto):
    """Store every float32 weight as float16, cast back to float32 when the session loads.

    Like TFLite's fp16 mode: half the file, float arithmetic. onnxruntime folds the Casts at load time,
    so the forward pass costs what fp32 costs (its CPU kernels for LSTM are float32 only).
    """
    import onnx
    from onnx import helper, numpy_helper
    for initializer in _float_weights(proto, min_size=16):
        values = numpy_helper.to_array(initializer).astype(np.float16)
        half = numpy_helper.from_array(values, f"{initializer.name}_fp16")
        _replace(proto.graph, initializer, [half], helper.make_node(
            "Cast", [half.name], [initializer.name], to=onnx.TensorProto.FLOAT, name=f"{initializer.name}_to_fp32"))
    return proto


# The weight matrices that int8 weight storage covers, as (op type, input index) -> the axis that gets one
# scale per slice: a MatMul weight's output columns, an LSTM's gate rows (W and R), an embedding's rows.
INT8_WEIGHT_AXES = {("MatMul", 1): 1, ("LSTM", 1): 1, ("LSTM", 2): 1, ("Gather", 0): 0}


def weights_to_int8(proto, calibration=None, float_layers=()):
    """Store each weight matrix as symmetric int8 with per-channel scales, dequantised (DequantizeLinear) back
    to float: int8 weights, float activations, standard ONNX ops only. The runtime folds the
    dequantisation into float weights when the session loads (runtime/backends.py), so the forward pass
    costs what fp32 costs; the LSTM's own float kernel still runs."""
    from onnx import helper, numpy_helper
    for initializer, axis in _weight_matrices(proto):
        values = numpy_helper.to_array(initializer)
        others = tuple(i for i in range(values.ndim) if i != axis)
        scale = (np.abs(values).max(axis=others) / 127).astype(np.float32)
        scale[scale == 0] = 1.0
        shape = [-1 if i == axis else 1 for i in range(values.ndim)]
        stored = np.clip(np.round(values / scale.reshape(shape)), -127, 127).astype(np.int8)
        tensors = [numpy_helper.from_array(stored, f"{initializer.name}_int8"),
                   numpy_helper.from_array(scale, f"{initializer.name}_scale")]
        _replace(proto.graph, initializer, tensors, helper.make_node(
            "DequantizeLinear", [t.name for t in tensors], [initializer.name], axis=axis,
            name=f"{initializer.name}_dequantise"))
    return proto


def _float_weights(proto, min_size):
    import onnx
    return [i for i in list(proto.graph.initializer)
            if i.data_type == onnx.TensorProto.FLOAT and np.prod(i.dims) >= min_size]


def _weight_matrices(proto):
    """(initializer, per-channel axis) for each float initializer a node in INT8_WEIGHT_AXES reads."""
    floats = {i.name: i for i in _float_weights(proto, min_size=2)}
    found = {}
    for node in proto.graph.node:
        for index, name in enumerate(node.input):
            axis = INT8_WEIGHT_AXES.get((node.op_type, index))
            if axis is not None and name in floats and len(floats[name].dims) > axis:
                found[name] = (floats[name], axis)
    return list(found.values())


def _replace(graph, initializer, stored, node):
    """Swap a float initializer for its stored form and the node that turns it back into the float tensor."""
    graph.initializer.remove(initializer)
    graph.initializer.extend(stored)
    graph.node.insert(0, node)


def input_name(keras_input):
    """A Keras input's own name (tf_keras: 'window', Keras 3 may add ':0')."""
    return keras_input.name.split(":")[0]


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over arrays of inputs, one row (a batch of 1) at a time."""

    def __init__(self, names, calibration):
        self.rows = iter(zip(*calibration, strict=True))
        self.names = names

    def get_next(self):
        row = next(self.rows, None)
        return None if row is None else {name: value[None] for name, value in zip(self.names, row, strict=True)}


def quantize_static(proto, calibration, float_layers=()):
    """int8 weights and activations by onnxruntime's static QDQ quantisation (MinMax calibration), but for the
    output layer and the softmaxes; then every weight matrix still in float (the output layer's, and the
    LSTM's, which is not in onnxruntime's QDQ registry) is stored as int8 too (weights_to_int8).

    Kept in float, measured (docs/QUANTISATION.md): an int8 softmax output has a step of 1/256, so every
    probability below ~0.004 became 0 (+30-40% perplexity); int8 logits flip near-tied characters (top-1
    agreement ~0.96). The nodes of `float_layers` stay float too."""
    from onnxruntime import quantization as q
    float_nodes = [node.name for node in proto.graph.node if node.op_type == "Softmax"
                   or any(f"/{layer}/" in node.name for layer in float_layers)] + output_layer(proto)
    with _files(proto) as (source, target):
        weights = {i.name for i in proto.graph.initializer}
        names = [i.name for i in proto.graph.input if i.name not in weights]
        q.quantize_static(source, target, _Calibration(names, calibration), quant_format=q.QuantFormat.QDQ,
                          activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                          calibrate_method=q.CalibrationMethod.MinMax, nodes_to_exclude=float_nodes)
        return weights_to_int8(_load(target))


def output_layer(proto, output="output"):
    """Names of the nodes from the graph output back to the MatMul that starts the output layer."""
    producers = {name: node for node in proto.graph.node for name in node.output}
    names, node = [], producers.get(output)
    while node is not None:
        names.append(node.name)
        if node.op_type == "MatMul":
            break
        node = producers.get(node.input[0])
    return names


@contextmanager
def _files(proto):
    """(source path holding `proto`, target path) in a temporary folder: the quantisers work on files. Their
    advice to the root logger ("consider pre-processing") is kept off the user's terminal meanwhile."""
    import onnx
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "in.onnx"), os.path.join(folder, "out.onnx")
        onnx.save(proto, source)
        root.setLevel(logging.ERROR)
        try:
            yield source, target
        finally:
            root.setLevel(level)


def _load(path):
    import onnx
    return onnx.load(path)


# How each mode is made from the fp32 ModelProto: (proto, calibration inputs, float layers) -> ModelProto.
RECIPES = {
    "fp32": lambda proto, calibration, float_layers: proto,
    "fp16": lambda proto, calibration, float_layers: weights_to_fp16(proto),
    "dynamic": weights_to_int8,
    "int8": quantize_static,
}


def embed_metadata(proto, name, text):
    """Serialized bytes of `proto` (a ModelProto or file bytes) with metadata_props[name] = text."""
    import onnx
    if isinstance(proto, bytes):
        proto = onnx.load_from_string(proto)
    kept = [p for p in proto.metadata_props if p.key != name]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = name, text
    return proto.SerializeToString()


def operator_names(data):
    """Sorted op types of an ONNX file (subgraphs included), from its bytes; an op outside the standard
    ONNX domain is named with its domain (com.microsoft.DynamicQuantizeLSTM)."""
    import onnx
    proto = onnx.load_from_string(data)
    names = set()

    def walk(graph):
        for node in graph.node:
            names.add(f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type)
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g)
    walk(proto.graph)
    return sorted(names)
