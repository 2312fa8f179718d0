"""Import Keras quietly and deterministically. Every TensorFlow-side module gets Keras from here."""
import os
import sys

from carolgen.runtime.quiet import quiet_native_stderr


def import_keras():
    """Keras 3 on TensorFlow, imported without the start-up chatter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" not in sys.modules:
        with quiet_native_stderr():
            import keras  # noqa: F401
            import tensorflow  # noqa: F401  (loads the native libraries while fd 2 is quiet)
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)
    import keras
    return keras


def make_deterministic(seed):
    """Same seed, data and machine -> same weights (TensorFlow op determinism on)."""
    keras = import_keras()
    import tensorflow as tf
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
