"""The Keras model as one more backend: the reference that every exported file is compared with.

The runtime does not know this backend; carolgen adds its row to the runtime's table with `register_keras`
(carol-generate does so at start), so the runtime never imports the training side.
"""
from carolgen.runtime.backends import Backend, register


class KerasBackend:
    """A Keras carol model, called through a compiled tf.function (about 20x faster than predict per call)."""

    name, kernels, graph = "keras", "", "window"

    def __init__(self, model, info, threads=1):
        from carolgen.keras_setup import import_keras
        from carolgen.model import attention_model
        import_keras()
        import tensorflow as tf
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TensorFlow was already running in this process; it keeps its thread count.
        self.model, self.info = model, info
        self.vocab, self.window, self.batch = info.vocab, info.window, None
        self._probs = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        both = attention_model(model)
        self._both = tf.function(lambda x: both(x, training=False), reduce_retracing=True)

    def supports_batch(self, batch):
        return True

    def probs(self, windows):
        return self._probs(windows).numpy()

    def probs_and_attention(self, windows):
        probs, attention = self._both(windows)
        return probs.numpy(), attention.numpy()


class KerasStepBackend:
    """The Keras model as a step model (carolgen/model.build_step_model) with the checkpoint's weights: the
    reference a step file is compared with exactly, and the source of int8 step files' calibration states."""

    name, kernels, graph, batch = "keras-step", "", "step", None

    def __init__(self, model, info):
        from carolgen.keras_setup import import_keras
        from carolgen.model import ModelConfig, build_step_model, copy_weights_to_step
        keras = import_keras()
        import tensorflow as tf
        self.info, self.vocab, self.window = info, info.vocab, info.window
        step_model = build_step_model(ModelConfig.from_dict(info.document["model"]), keras)
        copy_weights_to_step(model, step_model)
        self.state_shape = tuple(step_model.inputs[1].shape[1:])
        self._step = tf.function(lambda chars, state: step_model([chars, state], training=False),
                                 reduce_retracing=True)

    def supports_batch(self, batch):
        return True

    def step(self, chars, state):
        probs, next_state, _ = self._step(chars, state)
        return probs.numpy(), next_state.numpy()

    def step_and_attention(self, chars, state):
        return tuple(t.numpy() for t in self._step(chars, state))


def open_keras(model_file, row=None, threads=1, reference_kernels=False):
    """The opener in the backend row: load the checkpoint (safe_mode) and wrap it."""
    from carolgen.checkpoint import load_checkpoint
    model, info = load_checkpoint(model_file.path)
    return KerasBackend(model, info, threads)


KERAS = Backend("keras", ("keras",), "tensorflow", open_keras)


def register_keras():
    """Make `--backend keras` (and load(path, backend="keras")) available to the runtime."""
    register(KERAS)
