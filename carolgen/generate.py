"""carol-generate as installed: the runtime's command plus what only the package has, the bundled model
and the Keras reference backend."""
import carolgen
from carolgen.keras_backend import register_keras
from carolgen.runtime import cli
from carolgen.runtime.backends import available_backends, backend_row
from carolgen.runtime.errors import CarolError
from carolgen.runtime.generate import load as runtime_load

# The files shipped in carolgen/models, by format, in the order carol-generate tries them.
BUNDLED = {"tflite": "model-fp32.tflite", "onnx": "model-fp32.onnx", "keras": "model.keras"}


def bundled_model(backend=None):
    """The bundled file for `backend`, or the first this machine can run: TFLite, then ONNX."""
    if backend is not None:
        return carolgen.MODELS_DIR / BUNDLED[backend_row(backend).format]
    for kind in ("tflite", "onnx"):
        if available_backends(kind):
            return carolgen.MODELS_DIR / BUNDLED[kind]
    raise CarolError("no interpreter is installed: pip install 'carolgen[litert]' or 'carolgen[onnx]'")


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
