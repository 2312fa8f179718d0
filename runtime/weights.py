"""A carolgen model's weights, read out of its .tflite or .onnx file into the Keras layers' layout.

The converters keep each Keras layer's name in its constants' names ("carol_step/attention_vector/MatMul",
"model/output/BiasAdd"), so a weight is found by the layer its name names and the op that uses it: a
matrix multiply's constant is the layer's kernel, an addition's its bias, a gather's the embedding table.
The one exception is a windowed file's LSTM, one fused op (TFLite UNIDIRECTIONAL_SEQUENCE_LSTM, ONNX LSTM)
whose weights are its inputs by position. Quantised weights (fp16, int8 with per-tensor or per-channel
scales) are dequantised to float32 as they are read. Every shape is checked against the others and the
vocabulary, so a file that is not what it claims gets one clear line, not a wrong answer.
"""
from dataclasses import dataclass

import numpy as np

from .errors import CarolError
from .flatbuffer import TfliteReader
from .protobuf import OnnxReader

# A matrix-multiply constant's role by (layer, the op name that follows it); the LSTM cell of a step file
# multiplies the input by "lstm/MatMul" and the previous hidden state by "lstm/MatMul_1".
KERNELS = {("lstm", "MatMul"): "kernel", ("lstm", "MatMul_1"): "recurrent", ("attention_score_vec", None): "attention",
           ("attention_query", None): "attention_query", ("attention_vector", None): "attention_vector",
           ("output", None): "output"}
BIASES = {"lstm": "bias", "output": "output_bias"}
LAYERS = {layer for layer, _ in KERNELS}
# Keras orders an LSTM's four gates i, f, c, o; ONNX's LSTM orders them i, o, f, c.
ONNX_GATES = [0, 2, 3, 1]  # the ONNX block holding Keras's gate i, f, c, o


@dataclass(frozen=True)
class Weights:
    """The model's weights as its Keras layers hold them (carolgen/model.py)."""

    embedding: np.ndarray | None  # (vocab, embedding_dim); None for the seed architecture (index / V fed as is)
    kernel: np.ndarray  # lstm (features, 4 units), gates i, f, c, o
    recurrent: np.ndarray  # lstm (units, 4 units)
    bias: np.ndarray  # lstm (4 units,)
    attention: np.ndarray  # attention_score_vec (units, units): score(h_t, h_s) = h_t . (h_s @ attention)
    attention_vector: np.ndarray  # (2 units, attention units)
    output: np.ndarray  # (attention units, vocab)
    output_bias: np.ndarray  # (vocab,)


def read_weights(model_file, data):
    """Weights of a verified model file (runtime/modelfile.py) from its bytes."""
    try:
        with np.errstate(all="ignore"):  # a damaged scale may overflow; the probabilities' check catches it
            found = READERS[model_file.kind](data, model_file.path)
    except (ValueError, IndexError, TypeError, OverflowError) as error:  # values or shapes that cannot be: damage
        raise CarolError(f"{model_file.path}: its weights cannot be read ({error})") from None
    if "attention_query" in found:  # a step file holds W^T (carolgen/model.py, build_step_model)
        found["attention"] = found.pop("attention_query").T
    return _checked(found, model_file)


def _role(name, kind):
    """The weight a constant named `name` is, when used as a `kind` ('kernel' or 'bias'); None if no layer."""
    parts = name.split(";")[0].split(":")[0].split("/")
    for position, part in enumerate(parts):
        if part in LAYERS:
            if kind == "bias":
                return BIASES.get(part)
            following = parts[position + 1] if position + 1 < len(parts) else ""
            return KERNELS.get((part, following)) or KERNELS.get((part, None))
    return None


def _add(found, role, value, path):
    if role in found:
        raise CarolError(f"{path}: two constants claim to be the {role} weights; it is not a carolgen graph")
    found[role] = np.asarray(value, dtype=np.float32)


def _dequantised(values, scales, zero_points, axis, path):
    """float32 of integer `values` with per-tensor or per-channel (along `axis`) scales and zero points."""
    scales, zero_points = np.asarray(scales, np.float64), np.asarray(zero_points, np.float64)
    if not np.all(np.isfinite(scales)) or (scales.size != 1 and scales.size != values.shape[axis]):
        raise CarolError(f"{path}: a quantised weight's scales are not finite or do not match its shape")
    shape = [1] * values.ndim
    if scales.size > 1:
        shape[axis] = scales.size
    return ((values - zero_points.reshape(shape if zero_points.size > 1 else [])) * scales.reshape(
        shape if scales.size > 1 else [])).astype(np.float32)


# ----- TFLite -----
GATHER, FULLY_CONNECTED, ADD, DEQUANTIZE, SEQUENCE_LSTM = 36, 9, 0, 6, 44
LSTM_INPUTS = {"kernel": range(1, 5), "recurrent": range(5, 9), "bias": range(12, 16)}  # gates i, f, c, o


def _tflite_weights(data, path):
    tensors, operators = TfliteReader(data, path).graph()
    constants = {i: (t.name, _tflite_value(t, path)) for i, t in enumerate(tensors) if t.data is not None}
    for op in operators:  # fp16 files: DEQUANTIZE(constant) is a constant
        if op.code == DEQUANTIZE and op.inputs[0] in constants and len(op.outputs) == 1:
            name, value = constants[op.inputs[0]]
            constants[op.outputs[0]] = (name, value if value is None else value.astype(np.float32))
    found = {}

    def use(index, kind):
        name, value = constants.get(index, ("", None))
        role = _role(name, kind)
        if value is not None and role:
            _add(found, role, value.T if kind == "kernel" else value, path)

    for op in operators:
        inputs = list(op.inputs) + [-1] * 16
        if op.code == GATHER and constants.get(inputs[0], ("", None))[1] is not None:
            _add(found, "embedding", constants[inputs[0]][1], path)
        elif op.code == SEQUENCE_LSTM:
            for role, positions in LSTM_INPUTS.items():
                gates = [constants.get(inputs[p], ("", None))[1] for p in positions]
                if any(g is None for g in gates):
                    raise CarolError(f"{path}: its LSTM op lacks constant {role} weights")
                _add(found, role, np.concatenate([g.T if g.ndim == 2 else g for g in gates], axis=-1), path)
        elif op.code == FULLY_CONNECTED:
            use(inputs[1], "kernel")
            use(inputs[2], "bias")
        elif op.code == ADD:
            use(inputs[0], "bias")
            use(inputs[1], "bias")
    return found


def _tflite_value(tensor, path):
    """A constant as float32 (dequantised), or None when it is not a weight (an integer shape or index)."""
    if tensor.data.dtype.kind == "f":
        return tensor.data.astype(np.float32)
    if not tensor.scales:
        return None
    return _dequantised(tensor.data, tensor.scales, tensor.zero_points, tensor.axis, path)


# ----- ONNX -----
def _onnx_weights(data, path):
    nodes, initializers = OnnxReader(data, path).graph()
    constants = {name: (name, value.astype(np.float32)) for name, value in initializers.items()
                 if value is not None and value.dtype.kind == "f"}
    for node in nodes:  # DequantizeLinear(constant) and Cast(constant) are constants
        inputs = [initializers.get(name) for name in node.inputs]
        if node.op_type == "DequantizeLinear" and inputs and all(v is not None for v in inputs):
            zero_points = inputs[2] if len(inputs) > 2 else 0
            value = _dequantised(inputs[0], inputs[1], zero_points, node.ints.get("axis", 1), path)
            constants[node.outputs[0]] = (node.inputs[0], value)
        elif node.op_type == "Cast" and node.inputs and node.inputs[0] in constants:
            constants[node.outputs[0]] = constants[node.inputs[0]]
    found = {}
    for node in nodes:
        values = [constants.get(name, (name, None)) for name in node.inputs]
        if node.op_type == "Gather" and values and values[0][1] is not None:
            _add(found, "embedding", values[0][1], path)
        elif node.op_type == "LSTM":
            _onnx_lstm(found, [v for _, v in values], path)
        elif node.op_type in ("MatMul", "Add"):
            kind = "kernel" if node.op_type == "MatMul" else "bias"
            for name, value in values:
                role = _role(name, kind) or _role(node.name, kind)
                if value is not None and role:
                    _add(found, role, value, path)
    return found


def _onnx_lstm(found, values, path):
    """ONNX LSTM inputs: X, W (1, 4U, D), R (1, 4U, U), B (1, 8U) = input and recurrent biases."""
    if len(values) < 4 or any(v is None or v.shape[:1] != (1,) for v in values[1:4]):
        raise CarolError(f"{path}: its LSTM node lacks one-direction constant weights")
    units = values[2].shape[-1]

    def keras_order(matrix):  # (4U, n) blocks i, o, f, c -> (n, 4U) columns i, f, c, o
        blocks = matrix.reshape(4, units, -1)
        return np.concatenate([blocks[g] for g in ONNX_GATES], axis=0).T

    _add(found, "kernel", keras_order(values[1][0]), path)
    _add(found, "recurrent", keras_order(values[2][0]), path)
    biases = values[3][0].reshape(2, 4 * units).sum(axis=0)
    _add(found, "bias", keras_order(biases[:, None])[0], path)


READERS = {"tflite": _tflite_weights, "onnx": _onnx_weights}


def _checked(found, model_file):
    """Weights, once every one the architecture needs is there with shapes that fit together."""
    path, vocab = model_file.path, model_file.info.vocab.size
    needed = ["kernel", "recurrent", "bias", "attention", "attention_vector", "output", "output_bias"]
    needed += [] if model_file.info.encoding.scaled else ["embedding"]  # an index input is embedded
    missing = [role for role in needed if role not in found]
    if missing:
        raise CarolError(f"{path}: the numpy backend found no {', '.join(missing)} weights in it "
                         "(not a graph carol-export makes)")
    weights = Weights(found.get("embedding") if "embedding" in needed else None,
                      *(found[role] for role in needed[:7]))
    units = weights.recurrent.shape[0]
    features = weights.embedding.shape[1] if weights.embedding is not None else 1
    attention_units = weights.attention_vector.shape[-1]
    expected = {"kernel": (features, 4 * units), "recurrent": (units, 4 * units), "bias": (4 * units,),
                "attention": (units, units), "attention_vector": (2 * units, attention_units),
                "output": (attention_units, vocab), "output_bias": (vocab,)}
    if weights.embedding is not None:
        expected["embedding"] = (vocab, features)
    wrong = [f"{role} {getattr(weights, role).shape}, not {shape}" for role, shape in expected.items()
             if getattr(weights, role).shape != shape]
    if wrong:
        raise CarolError(f"{path}: its weights do not fit together or its vocabulary: {'; '.join(wrong)}")
    return weights
