"""carol-export: Keras checkpoint -> .tflite / .onnx files that carry their own metadata and pass a parity gate."""
