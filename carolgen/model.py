"""The carol model: LSTM(32) -> Luong attention block -> Dense(V) softmax, built from standard layers only.

`build_model` takes the Keras module to build with, so the training model (Keras 3) and the export twin
(tf_keras, which converts to fused LSTM ops) are the same code and can share weights layer for layer.
No Lambda layers: the checkpoint loads with safe_mode=True.
"""
from dataclasses import asdict, dataclass

from carolgen.runtime.encoding import WINDOW


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    window: int = WINDOW
    lstm_units: int = 32
    attention_units: int = 128

    def to_dict(self):
        return asdict(self)


def build_model(config, keras_module=None, batch_size=None, unroll=False):
    """The seed's architecture, layer for layer, named as the seed named them."""
    if keras_module is None:
        import keras as keras_module
    layers = keras_module.layers
    inputs = keras_module.Input(shape=(config.window, 1), batch_size=batch_size, name="window")
    hidden = layers.LSTM(config.lstm_units, return_sequences=True, unroll=unroll, name="lstm")(inputs)
    # Attention block (Luong's multiplicative score): score(h_t, h_s) = h_t . W h_s.
    score_first_part = layers.Dense(config.lstm_units, use_bias=False, name="attention_score_vec")(hidden)
    last = layers.Cropping1D((config.window - 1, 0), name="last_hidden_state_window")(hidden)
    h_t = layers.Flatten(name="last_hidden_state")(last)
    score = layers.Dot(axes=[1, 2], name="attention_score")([h_t, score_first_part])
    attention_weights = layers.Activation("softmax", name="attention_weight")(score)
    context_vector = layers.Dot(axes=[1, 1], name="context_vector")([hidden, attention_weights])
    pre_activation = layers.Concatenate(name="attention_output")([context_vector, h_t])
    attention_vector = layers.Dense(config.attention_units, use_bias=False, activation="tanh",
                                    name="attention_vector")(pre_activation)
    outputs = layers.Dense(config.vocab_size, activation="softmax", name="output")(attention_vector)
    return keras_module.Model(inputs, outputs, name="carol")


def attention_model(model):
    """A model sharing `model`'s layers that returns (next-char probabilities, attention weights)."""
    import keras
    return keras.Model(model.inputs, [model.output, model.get_layer("attention_weight").output])
