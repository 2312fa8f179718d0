"""The numpy backend: any carolgen .tflite or .onnx file, run without an interpreter.

It reads the weights out of the verified file (runtime/weights.py) and computes the model in numpy
(runtime/numpy_model.py), so a machine with nothing but numpy (a Pi Zero, 32-bit Pi OS without
tflite-runtime) can generate. It computes in float32: an fp32 file gives its interpreter's probabilities
to about 1e-6; a quantised file's dequantised weights give the float model those weights make, not the
interpreter's integer arithmetic (carol-bench and carol-pi-check report the difference).
"""
import numpy as np

from . import numpy_model
from .weights import read_weights


class NumpyBackend:
    """Same calls as the interpreter backends (runtime/backends.py), any batch."""

    note = None  # set by open_backend when it chose this backend for want of an interpreter

    def __init__(self, model_file, row, threads=1, reference_kernels=False):
        self.name, self.model_file, self.info = row.name, model_file, model_file.info
        self.vocab, self.window, self.graph = self.info.vocab, self.info.window, self.info.graph
        self.kernels, self.batch = "", None
        self.weights = read_weights(model_file, model_file.data)
        self.state_shape = (self.window + 1, self.weights.recurrent.shape[0])

    def supports_batch(self, batch):
        return True

    def probs(self, windows):
        return self.probs_and_attention(windows)[0]

    def probs_and_attention(self, windows):
        with np.errstate(all="ignore"):  # damaged weights overflow: the probabilities' check says so, once
            return numpy_model.window_probs(self.weights, windows)

    def step(self, chars, state):
        probs, next_state, _ = self.step_and_attention(chars, state)
        return probs, next_state

    def step_and_attention(self, chars, state):
        with np.errstate(all="ignore"):
            return numpy_model.step(self.weights, chars, state)
