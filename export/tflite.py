"""Keras twin -> .tflite in every quantisation mode, with the carolgen metadata inside the flatbuffer.

Graph choice (measured; docs/QUANTISATION.md has the figures): the twin converts to one fused
UNIDIRECTIONAL_SEQUENCE_LSTM op. Its hidden and cell state live in *variable* tensors that persist between
invocations, so every runtime resets them before each window (runtime/backends.py); with that reset the
fused graph matches Keras to ~1e-6, is ~half the unrolled graph's size (the unrolled window was 1,412
operators, each with its own tensor and quantisation records) and no slower. The converter sets the op's
`cell_clip` to 10, which Keras never does; it is set to 0 (no clipping) so the file computes what Keras does.

int8 keeps three things out of integer arithmetic, because they cost more than they save: the softmaxes (an
int8 softmax output has a step of 1/256, so every probability below ~0.004 became 0: +30-40% perplexity),
the output layer (int8 logits flip near-tied characters: top-1 agreement ~0.96) and the LSTM's activations
(TFLite's integer LSTM kernel ran ~8x slower here). Their weights are still stored as int8: they run
TFLite's hybrid kernels, as in dynamic mode.
"""
import numpy as np

from carolgen.runtime.errors import CarolError
from carolgen.runtime.flatbuffer import TfliteReader
from carolgen.runtime.metadata import METADATA_KEY
from carolgen.runtime.quiet import quiet_native_stderr

from .audit import audit_tflite

# Op kinds int8 files keep float, by graph. A step graph's carried state must not pass through int8 (its
# error compounds step after step): its LSTM cell's gate split and the concatenations that build the state.
FLOAT_IN_INT8 = {"window": ["SOFTMAX", "UNIDIRECTIONAL_SEQUENCE_LSTM"],
                 "step": ["SOFTMAX", "SPLIT", "CONCATENATION"]}


def build(model, info, graph, mode, calibration, options, metadata):
    """(file bytes, audit) of `model`'s `graph` (export/graphs.py) as a TFLite file in `mode`, carrying the
    metadata JSON text. TFLite graphs have a fixed batch: --batch."""
    twin = graph.twin(model, info, batch_size=options.batch)
    data = edit_model(convert(twin, mode, calibration, graph), without_cell_clip)
    data = embed_metadata(data, METADATA_KEY, metadata)
    return data, audit_tflite(operator_names(TfliteReader(data, "the converted file").operators()), mode,
                              graph.name)


def convert(twin, mode, calibration=None, graph=None):
    """The flatbuffer bytes of `twin` converted by the mode's recipe. `calibration`: a tuple of arrays, one
    per model input, and `graph` (export/graphs.py, default windowed): for int8 only."""
    import tensorflow as tf
    if mode not in RECIPES:
        raise CarolError(f"TFLite export has no recipe for mode {mode!r}")
    converter = tf.lite.TFLiteConverter.from_keras_model(twin)
    return RECIPES[mode](converter, tf, twin, calibration, graph)


def _fp32(converter, tf, twin, calibration, graph=None):
    return converter.convert()


def _fp16(converter, tf, twin, calibration, graph=None):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def _dynamic(converter, tf, twin, calibration, graph=None):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def _dynamic_compat(converter, tf, twin, calibration, graph=None):
    """Per-tensor weight scales keep FULLY_CONNECTED at version 9, which tflite-runtime 2.14 knows;
    per-channel hybrid FULLY_CONNECTED is version 12 and it refuses to load it."""
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return _dynamic(converter, tf, twin, calibration)


def _int8(converter, tf, twin, calibration, graph=None):
    """int8 weights and activations, float input and output, calibrated on real lyrics windows. The graph's
    FLOAT_IN_INT8 ops, the output layer (the FULLY_CONNECTED feeding a softmax) and the ops of the graph's
    float layers stay float (TensorFlow's selective quantisation); then their weight matrices become int8 for
    the hybrid kernels."""
    float_model = converter.convert()
    head = output_layer_names(float_model) + tensors_of_layers(float_model, graph.float_in_int8 if graph else ())
    float_ops = FLOAT_IN_INT8[graph.name if graph else "window"]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    batch, rows = twin.inputs[0].shape[0] or 1, len(calibration[0])
    names = [i.name.split(":")[0] for i in twin.inputs]

    def representative():
        """Batches keyed by input name: the converted file orders its inputs its own way."""
        return ({n: inputs[i:i + batch] for n, inputs in zip(names, calibration, strict=True)}
                for i in range(0, rows - batch + 1, batch))
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.float32
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=float_ops, denylisted_nodes=head)
    with quiet_native_stderr():  # the MLIR quantiser prints its settings and a benign LSTM note to fd 2
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative,
                                                             debug_options=options)
        quantised = debugger.get_nondebug_quantized_model()
    return edit_model(quantised, int8_hybrid_weights)


# How each mode converts: (converter, tf, twin, calibration windows) -> flatbuffer bytes.
RECIPES = {"fp32": _fp32, "fp16": _fp16, "dynamic": _dynamic, "dynamic-compat": _dynamic_compat, "int8": _int8}


def edit_model(flatbuffer, *edits):
    """The flatbuffer after each edit(schema, model object) has changed the unpacked model in place."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    for edit in edits:
        edit(schema, model)
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def operators_named(schema, model, name):
    """(subgraph, operator) for each operator of the builtin kind `name`."""
    code = getattr(schema.BuiltinOperator, name)
    for graph in model.subgraphs:
        for op in graph.operators:
            opcode = model.operatorCodes[op.opcodeIndex]
            if max(opcode.builtinCode, opcode.deprecatedBuiltinCode) == code:
                yield graph, op


def output_layer_names(flatbuffer):
    """Output tensor names of the FULLY_CONNECTED ops that feed a softmax: the layer whose int8 logits
    would flip near-tied next characters (top-1 agreement fell to ~0.96 with it in int8)."""
    from ai_edge_litert import schema_py_generated as schema
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    softmax_inputs = {op.inputs[0] for _, op in operators_named(schema, model, "SOFTMAX")}
    layers = operators_named(schema, model, "FULLY_CONNECTED")
    return [graph.tensors[op.outputs[0]].name.decode() for graph, op in layers if op.outputs[0] in softmax_inputs]


def tensors_of_layers(flatbuffer, layers):
    """Output tensor names of the ops that belong to the named Keras layers (their names hold /layer/)."""
    from ai_edge_litert import schema_py_generated as schema
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    names = [graph.tensors[op.outputs[0]].name.decode() for graph in model.subgraphs for op in graph.operators]
    return [n for n in names if any(f"/{layer}/" in n for layer in layers)]


def without_cell_clip(schema, model):
    for _, op in operators_named(schema, model, "UNIDIRECTIONAL_SEQUENCE_LSTM"):
        op.builtinOptions.cellClip = 0.0


# Ops whose float weights int8 mode stores as int8 when the op itself stays float: (weight inputs, the op
# version of the hybrid kernel, as the converter writes it for dynamic files with per-tensor scales).
HYBRID_WEIGHTS = {"UNIDIRECTIONAL_SEQUENCE_LSTM": (range(1, 9), 3), "FULLY_CONNECTED": ((1,), 9)}


def int8_hybrid_weights(schema, model):
    """Store the float weight matrices of float LSTM and FULLY_CONNECTED ops as symmetric per-tensor int8:
    the interpreter then runs its hybrid kernels (int8 weights, float activations), as in dynamic mode."""
    for name, (inputs, version) in HYBRID_WEIGHTS.items():
        for graph, op in operators_named(schema, model, name):
            weights = [graph.tensors[op.inputs[i]] for i in inputs]
            if graph.tensors[op.inputs[0]].type != schema.TensorType.FLOAT32 or any(
                    w.type != schema.TensorType.FLOAT32 for w in weights):
                continue
            for tensor in weights:
                _store_int8(schema, tensor, model.buffers[tensor.buffer])
            op.builtinOptions.asymmetricQuantizeInputs = True
            code = model.operatorCodes[op.opcodeIndex]
            code.version = max(code.version, version)


def _store_int8(schema, tensor, buffer):
    weights = np.frombuffer(bytes(buffer.data), dtype=np.float32)
    scale = float(np.abs(weights).max()) / 127 or 1.0
    buffer.data = np.clip(np.round(weights / scale), -127, 127).astype(np.int8).view(np.uint8)
    tensor.type = schema.TensorType.INT8
    tensor.quantization = schema.QuantizationParametersT()
    tensor.quantization.scale, tensor.quantization.zeroPoint = [scale], [0]


def embed_metadata(flatbuffer, name, text):
    """The same model with metadata entry `name` holding `text` (UTF-8); an existing entry's buffer is reused."""
    def set_entry(schema, model):
        data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        for entry in model.metadata or []:
            if entry.name == name.encode():
                model.buffers[entry.buffer].data = data
                return
        buffer = schema.BufferT()
        buffer.data = data
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    return edit_model(flatbuffer, set_entry)


def operator_names(operators):
    """[(name, version)] for the (builtin code, version, custom code) triples of a TFLite file."""
    from ai_edge_litert import schema_py_generated as schema
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [(custom or names.get(code, f"BUILTIN_{code}"), version) for code, version, custom in operators]
