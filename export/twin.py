"""The convertible twin: the checkpoint's architecture rebuilt in tf_keras (Keras 2) with the same weights.

Why a twin (measured on TF 2.21 / Keras 3.15, see docs/ARCHITECTURE.md): Keras 3's LSTM reaches the
converters as a loop (a TFLite WHILE, an ONNX Loop) that is slow and whose int8 conversion crashed;
tf_keras's LSTM is recognised by both converters. The twin is built by the same `build_model` (or
`build_step_model`), so the layers, names and weight order are the checkpoint's by construction.
"""
from carolgen.model import ModelConfig, build_model, build_step_model, copy_weights_to_step


def make_twin(model, info, batch_size=None, unroll=False):
    """A tf_keras windowed model with `model`'s weights, returning (probabilities, attention weights)."""
    import tf_keras
    twin = build_model(ModelConfig.from_dict(info.document["model"]), tf_keras, batch_size=batch_size, unroll=unroll)
    twin.set_weights(model.get_weights())
    return tf_keras.Model(twin.inputs, [twin.output, twin.get_layer("attention_weight").output])


def make_step_twin(model, info, batch_size=None):
    """A tf_keras step model with `model`'s weights: (character, state) -> (probabilities, next state,
    attention weights). Its LSTM cell is one step of plain ops in both formats (no state variables)."""
    import tf_keras
    twin = build_step_model(ModelConfig.from_dict(info.document["model"]), tf_keras, batch_size=batch_size)
    copy_weights_to_step(model, twin)
    return twin
