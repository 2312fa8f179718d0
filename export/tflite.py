"""Keras twin -> .tflite in every quantisation mode, with the carolgen metadata inside the flatbuffer.

Graph choice, measured on the trained default model (figures in docs/ARCHITECTURE.md and the bench report):
the fused UNIDIRECTIONAL_SEQUENCE_LSTM op drifts from Keras by ~1e-2 in probability at fp32, far beyond the
1e-5 gate, and its full-int8 kernel is ~10x slower; the unrolled twin (plain FULLY_CONNECTED / LOGISTIC /
TANH / MUL / ADD ops) matches Keras to ~1e-7 at the same speed. So every TFLite mode converts the unrolled
twin, with a fixed batch (TFLite cannot convert an LSTM with a dynamic batch).
"""
import numpy as np

from carolgen.runtime.errors import CarolError
from carolgen.runtime.flatbuffer import TfliteReader
from carolgen.runtime.metadata import METADATA_KEY

from .audit import audit_tflite
from .twin import make_twin


def build(model, info, mode, calibration, options, metadata):
    """(file bytes, audit) of `model` as a TFLite file in `mode`, carrying the metadata JSON text."""
    twin = make_twin(model, info, batch_size=options.batch, unroll=True)
    data = embed_metadata(convert(twin, mode, calibration), METADATA_KEY, metadata)
    return data, audit_tflite(operator_names(TfliteReader(data, "the converted file").operators()), mode)


def convert(twin, mode, calibration=None):
    """The flatbuffer bytes of `twin` converted by the mode's recipe."""
    import tensorflow as tf
    if mode not in RECIPES:
        raise CarolError(f"TFLite export has no recipe for mode {mode!r}")
    converter = tf.lite.TFLiteConverter.from_keras_model(twin)
    RECIPES[mode](converter, tf, twin, calibration)
    return converter.convert()


def _fp32(converter, tf, twin, calibration):
    pass


def _fp16(converter, tf, twin, calibration):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, tf, twin, calibration):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _dynamic_compat(converter, tf, twin, calibration):
    """Per-tensor weight scales keep FULLY_CONNECTED at version 9, which tflite-runtime 2.14 knows;
    per-channel hybrid FULLY_CONNECTED is version 12 and it refuses to load it."""
    _dynamic(converter, tf, twin, calibration)
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True


def _int8(converter, tf, twin, calibration):
    """Full int8 with float input and output, calibrated on real lyrics windows in batches of the twin's size."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    batch = twin.inputs[0].shape[0] or 1
    converter.representative_dataset = lambda: ([calibration[i:i + batch]]
                                                for i in range(0, len(calibration) - batch + 1, batch))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.float32


# How each mode sets up the converter: (converter, tf, twin, calibration windows) -> None.
RECIPES = {"fp32": _fp32, "fp16": _fp16, "dynamic": _dynamic, "dynamic-compat": _dynamic_compat, "int8": _int8}


def embed_metadata(flatbuffer, name, text):
    """The same model with a metadata entry `name` whose buffer holds `text` (UTF-8)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != name.encode()] + [entry]
    builder = flatbuffers.Builder(len(flatbuffer) + len(text) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def operator_names(operators):
    """[(name, version)] for the (builtin code, version, custom code) triples of a TFLite file."""
    from ai_edge_litert import schema_py_generated as schema
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [(custom or names.get(code, f"BUILTIN_{code}"), version) for code, version, custom in operators]
