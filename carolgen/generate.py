"""carol-generate as installed: the runtime's command plus what only the package has, the bundled model
and the Keras reference backend."""
import carolgen
from carolgen.keras_backend import register_keras
from carolgen.runtime import cli
from carolgen.runtime.backends import BACKENDS, backend_row
from carolgen.runtime.generate import load as runtime_load

# The files shipped in carolgen/models, by format, in the order carol-generate tries them.
BUNDLED = {"tflite": "model-fp32.tflite", "onnx": "model-fp32.onnx", "keras": "model.keras"}


def bundled_model(backend=None):
    """The bundled file for `backend`, or for the first installed backend in the table's order (an
    interpreter before the numpy backend, which runs the TFLite file when nothing else is installed)."""
    if backend is not None:
        return carolgen.MODELS_DIR / BUNDLED[backend_row(backend).formats[0]]
    first = next(row for row in BACKENDS.values() if row.installed and row.formats[0] in ("tflite", "onnx"))
    return carolgen.MODELS_DIR / BUNDLED[first.formats[0]]


def load(path=None, backend=None, threads=1, trust=False):
    """A Generator for a model file, as carol-generate opens it; with no path, the bundled model:
    `carolgen.load().generate("the star ", 200)`."""
    register_keras()
    return runtime_load(bundled_model(backend) if path is None else path, backend=backend, threads=threads,
                        trust=trust)


def main(argv=None):
    register_keras()
    return cli.main(argv, default_model=bundled_model)


if __name__ == "__main__":
    raise SystemExit(main())
