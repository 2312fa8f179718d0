"""Reference graphs the speed targets are measured against, built from the checkpoint's own weights.

- A hand-built ONNX graph around the native ONNX LSTM op (onnx.helper): the practical floor for ONNX.
- The unrolled TFLite file (the LSTM as 100 copies of its cell): the previous export, which the fused
  file carol-export now writes must be no slower than.
Both carry the fp32 file's metadata so the runtime opens them like any exported file.
"""
import numpy as np

from carolgen.runtime.metadata import METADATA_KEY, dump_metadata


def keras_to_onnx_gates(matrix, units):
    """Keras packs LSTM gates as i, f, c, o along the last axis; ONNX wants i, o, f, c."""
    i, f, c, o = (matrix[..., k * units:(k + 1) * units] for k in range(4))
    return np.concatenate([i, o, f, c], axis=-1)


def window_input(weights, window):
    """(graph input, nodes turning it into the LSTM's time-major [seq, batch, features] input, initializers).

    The seed architecture feeds floats [batch, window, 1]; the embedding architecture feeds int32 indices
    [batch, window] through a Gather of its embedding table."""
    from onnx import TensorProto, helper
    # onnxruntime's CPU LSTM takes time-major input only (layout 0): [seq, batch, input].
    if "embedding" not in weights:
        return (helper.make_tensor_value_info("window", TensorProto.FLOAT, ["batch", window, 1]),
                [helper.make_node("Transpose", ["window"], ["window_tm"], perm=[1, 0, 2])], {})
    return (helper.make_tensor_value_info("window", TensorProto.INT32, ["batch", window]),
            [helper.make_node("Gather", ["embedding_table", "window"], ["embedded"]),
             helper.make_node("Transpose", ["embedded"], ["window_tm"], perm=[1, 0, 2])],
            {"embedding_table": weights["embedding"][0]})


def hand_built_onnx(model, metadata):
    """Bytes of an ONNX model computing the carol model with the native LSTM op and plain MatMuls."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    weights = {layer.name: layer.get_weights() for layer in model.layers if layer.get_weights()}
    kernel, recurrent, bias = weights["lstm"]
    units = recurrent.shape[0]
    window = model.inputs[0].shape[1]
    vocab = weights["output"][1].shape[0]
    graph_input, input_nodes, input_tensors = window_input(weights, window)
    tensors = {
        **input_tensors,
        "W": keras_to_onnx_gates(kernel, units).T[None], "R": keras_to_onnx_gates(recurrent, units).T[None],
        "B": np.concatenate([keras_to_onnx_gates(bias, units), np.zeros(4 * units, np.float32)])[None],
        "score_w": weights["attention_score_vec"][0], "vector_w": weights["attention_vector"][0],
        "out_w": weights["output"][0], "out_b": weights["output"][1],
        **{f"axis{k}": np.array([k], np.int64) for k in (0, 1, 2)}, "axis_last": np.array([-1], np.int64),
    }
    node = helper.make_node
    nodes = input_nodes + [
        node("LSTM", ["window_tm", "W", "R", "B"], ["Y", "Y_h"], hidden_size=units),
        node("Transpose", ["Y"], ["Y_bm"], perm=[2, 0, 1, 3]),
        node("Squeeze", ["Y_bm", "axis2"], ["hidden"]), node("Squeeze", ["Y_h", "axis0"], ["h_t"]),
        node("MatMul", ["hidden", "score_w"], ["score_first"]),
        node("Unsqueeze", ["h_t", "axis_last"], ["h_col"]),
        node("MatMul", ["score_first", "h_col"], ["score_col"]), node("Squeeze", ["score_col", "axis_last"], ["score"]),
        node("Softmax", ["score"], ["attention_weight"], axis=1),
        node("Unsqueeze", ["attention_weight", "axis1"], ["attention_row"]),
        node("MatMul", ["attention_row", "hidden"], ["context_row"]),
        node("Squeeze", ["context_row", "axis1"], ["context"]),
        node("Concat", ["context", "h_t"], ["joined"], axis=1),
        node("MatMul", ["joined", "vector_w"], ["vector_linear"]), node("Tanh", ["vector_linear"], ["vector"]),
        node("MatMul", ["vector", "out_w"], ["logits_nobias"]), node("Add", ["logits_nobias", "out_b"], ["logits"]),
        node("Softmax", ["logits"], ["output"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "carol_hand_built",
        [graph_input],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", vocab]),
         helper.make_tensor_value_info("attention_weight", TensorProto.FLOAT, ["batch", window])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in tensors.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, dump_metadata(metadata)
    return proto.SerializeToString()


def unrolled_tflite(model, info, metadata):
    """Bytes of the unrolled fp32 TFLite file of the same weights (100 copies of the LSTM cell as plain ops):
    what carol-export wrote before the fused graph, the speed the fused file must not fall below."""
    from carolgen.export import tflite
    from carolgen.export.twin import make_twin
    data = tflite.convert(make_twin(model, info, batch_size=1, unroll=True), "fp32")
    return tflite.embed_metadata(data, METADATA_KEY, dump_metadata(metadata))
