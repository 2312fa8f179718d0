"""The TensorFlow-free runtime: numpy plus one interpreter (ai-edge-litert, tflite-runtime or onnxruntime)."""
