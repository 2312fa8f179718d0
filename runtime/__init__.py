"""The TensorFlow-free runtime: numpy plus one interpreter (ai-edge-litert, tflite-runtime or onnxruntime).

    from carolgen.runtime import load
    generator = load("model-fp32.tflite")
    print(generator.generate("the star ", 200, temperature=0.7, seed=1))
"""
from .errors import CarolError
from .generate import Generator, load

__all__ = ["CarolError", "Generator", "load"]
