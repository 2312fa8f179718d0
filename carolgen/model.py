"""The carol model: [Embedding] -> LSTM -> Luong attention block -> Dense(V) softmax, from standard layers only.

Two architectures, one table (ARCHITECTURES):
- `seed`: the seed project's model, layer for layer: each character fed as one float, index / V, into
  LSTM(32); 17,825 parameters at V = 33.
- `embedding`: each character fed as its index into a learned Embedding, then the same LSTM + attention
  block, larger (sizes chosen by measurement: docs/ARCHITECTURE.md, "Text quality"), with dropout.

`build_step_model` is the same model as a step: one new character and the state in, the probabilities and the
next state out (see its docstring), for files that do O(1) work per character.

`build_model` takes the Keras module to build with, so the training model (Keras 3) and the export twin
(tf_keras, which converts to fused LSTM ops) are the same code and can share weights layer for layer.
No Lambda layers: the checkpoint loads with safe_mode=True.
"""
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from carolgen.runtime.encoding import ENCODINGS, WINDOW
from carolgen.runtime.errors import CarolError


def _scalar_input(config, layers, inputs):
    return inputs


def _embedded_input(config, layers, inputs):
    embedded = layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding")(inputs)
    return layers.Dropout(config.dropout, name="embedding_dropout")(embedded) if config.dropout else embedded


@dataclass(frozen=True)
class Architecture:
    """One row of the architecture table: the input encoding, the layers before the LSTM, the defaults."""

    name: str
    encoding: str  # a key of runtime.encoding.ENCODINGS
    front: Callable  # (config, layers, inputs) -> the sequence the LSTM reads
    defaults: dict = field(default_factory=dict)  # ModelConfig sizes for this architecture
    learning_rate: float = 5e-3  # carol-train's default for it


ARCHITECTURES = {a.name: a for a in (
    Architecture("seed", "index/vocab_size", _scalar_input,
                 {"lstm_units": 32, "attention_units": 128, "embedding_dim": 0, "dropout": 0.0}, learning_rate=5e-3),
    # Sizes and rates measured on the built-in corpus (docs/ARCHITECTURE.md, "Text quality"): LSTM(64) keeps
    # the windowed fp32 ONNX file above 5,000 chars/s greedy; dropout 0.3 at 3e-3 beat 0.1 at 5e-3.
    Architecture("embedding", "index", _embedded_input,
                 {"lstm_units": 64, "attention_units": 128, "embedding_dim": 24, "dropout": 0.3}, learning_rate=3e-3),
)}


def architecture(name):
    if name not in ARCHITECTURES:
        raise CarolError(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    window: int = WINDOW
    architecture: str = "seed"
    lstm_units: int = 32
    attention_units: int = 128
    embedding_dim: int = 0
    dropout: float = 0.0

    @classmethod
    def for_architecture(cls, name, vocab_size, window=WINDOW, **sizes):
        """The architecture's default sizes, overridden by any size given (None = default)."""
        chosen = {k: v for k, v in sizes.items() if v is not None}
        return cls(vocab_size, window, name, **{**architecture(name).defaults, **chosen})

    @classmethod
    def from_dict(cls, document):
        """The config recorded in metadata; a checkpoint from before architectures existed is `seed`."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in document.items() if k in known})

    @property
    def encoding(self):
        return ENCODINGS[architecture(self.architecture).encoding]

    def to_dict(self):
        return asdict(self)


def build_model(config, keras_module=None, batch_size=None, unroll=False):
    """The model of `config.architecture`, its layers named as the seed named them."""
    if keras_module is None:
        import keras as keras_module
    layers = keras_module.layers
    encoding = config.encoding
    inputs = keras_module.Input(shape=(config.window, *encoding.per_position), batch_size=batch_size,
                                dtype=encoding.keras_dtype, name="window")
    sequence = architecture(config.architecture).front(config, layers, inputs)
    hidden = layers.LSTM(config.lstm_units, return_sequences=True, unroll=unroll, name="lstm")(sequence)
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
    if config.dropout:
        attention_vector = layers.Dropout(config.dropout, name="output_dropout")(attention_vector)
    outputs = layers.Dense(config.vocab_size, activation="softmax", name="output")(attention_vector)
    return keras_module.Model(inputs, outputs, name="carol")


def build_step_model(config, keras_module=None, batch_size=None):
    """One step of the model: (character, state) -> (probabilities, next state, attention weights).

    The state is (window + 1, lstm_units): row 0 the LSTM's cell state, rows 1.. the hidden states of the last
    `window` characters, oldest first (the last row is the LSTM's hidden state). Each step runs the LSTM
    cell once, shifts the newest hidden state into the rows and attends over them as the windowed model
    attends over its window, so a step costs O(window) instead of the window's O(window) LSTM steps.

    The score h_t . (W h_s) is computed as (W^T h_t) . h_s (layer attention_query, W^T), so the state need
    not also carry each hidden state's projection. From a zero state, after the `window` characters of a
    window, the step model's probabilities are the windowed model's; after that it keeps one continuous
    state where the windowed model restarts from zero at each window (an approximation: the gate measures it).
    """
    if keras_module is None:
        import keras as keras_module
    layers = keras_module.layers
    units, window, encoding = config.lstm_units, config.window, config.encoding
    char = keras_module.Input(shape=encoding.per_position, batch_size=batch_size, dtype=encoding.keras_dtype,
                              name="char")
    state = keras_module.Input(shape=(window + 1, units), batch_size=batch_size, name="state")
    c_prev = layers.Flatten(name="c_prev")(layers.Cropping1D((0, window), name="c_prev_row")(state))
    h_prev = layers.Flatten(name="h_prev")(layers.Cropping1D((window, 0), name="h_prev_row")(state))
    features = architecture(config.architecture).front(config, layers, char)
    h_t, (_, c_t) = layers.LSTMCell(config.lstm_units, name="lstm")(features, [h_prev, c_prev])
    kept = layers.Cropping1D((2, 0), name="kept_hidden_states")(state)
    h_row = layers.Reshape((1, units), name="h_row")(h_t)  # (batch, 1, units): rows keep the graph small
    hidden = layers.Concatenate(axis=1, name="hidden_states")([kept, h_row])
    next_state = layers.Concatenate(axis=1, name="next_state")([layers.Reshape((1, units), name="c_row")(c_t),
                                                                 hidden])
    query = layers.Reshape((1, units), name="query_row")(layers.Dense(units, use_bias=False,
                                                                      name="attention_query")(h_t))
    score = layers.Dot(axes=2, name="attention_score")([query, hidden])  # (batch, 1, window)
    attention_weights = layers.Activation("softmax", name="attention_weight")(score)
    context_vector = layers.Dot(axes=[2, 1], name="context_vector")([attention_weights, hidden])
    pre_activation = layers.Flatten(name="attention_input")(
        layers.Concatenate(name="attention_output")([context_vector, h_row]))
    attention_vector = layers.Dense(config.attention_units, use_bias=False, activation="tanh",
                                    name="attention_vector")(pre_activation)
    outputs = layers.Dense(config.vocab_size, activation="softmax", name="output")(attention_vector)
    return keras_module.Model([char, state], [outputs, next_state, attention_weights], name="carol_step")


# The step model's layers on the carried state's path (the LSTM cell and the state's rows).
STEP_STATE_LAYERS = ("c_prev_row", "c_prev", "h_prev_row", "h_prev", "lstm", "kept_hidden_states", "hidden_states",
                     "h_row", "c_row", "next_state")
# Step-model layers whose weights are a transform of a checkpoint layer's: name -> (checkpoint layer, transform).
STEP_WEIGHT_SOURCES = {"attention_query": ("attention_score_vec", lambda weights: [weights[0].T])}


def copy_weights_to_step(model, step_model):
    """Give `step_model` the weights of `model` (a windowed model of the same config), layer by layer."""
    for layer in step_model.layers:
        if not layer.weights:
            continue
        source, transform = STEP_WEIGHT_SOURCES.get(layer.name, (layer.name, list))
        layer.set_weights(transform(model.get_layer(source).get_weights()))


def attention_model(model):
    """A model sharing `model`'s layers that returns (next-char probabilities, attention weights)."""
    import keras
    return keras.Model(model.inputs, [model.output, model.get_layer("attention_weight").output])
