"""The carol model: [Embedding] -> LSTM -> Luong attention block -> Dense(V) softmax, from standard layers only.

Two architectures, one table (ARCHITECTURES):
- `seed`: the seed project's model, layer for layer: each character fed as one float, index / V, into
  LSTM(32); 17,825 parameters at V = 33.
- `embedding`: each character fed as its index into a learned Embedding, then the same LSTM + attention
  block, larger (sizes chosen by measurement: docs/ARCHITECTURE.md, "Text quality"), with dropout.

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


def attention_model(model):
    """A model sharing `model`'s layers that returns (next-char probabilities, attention weights)."""
    import keras
    return keras.Model(model.inputs, [model.output, model.get_layer("attention_weight").output])
