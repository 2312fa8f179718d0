"""Backends: one small class per interpreter, all behind one call.

    probs(windows: float32 (B, window, 1)) -> float32 (B, vocab_size)

Interpreter packages are imported only when their backend is chosen, so a Pi with only onnxruntime never
tries to import a TFLite package. A backend also says whether it can run a batch of B windows at once.
"""
import importlib
import importlib.util
import platform


from .errors import CarolError
from .modelfile import read_model_file
from .quiet import quiet_native_stderr

# name -> (file kind, the distribution's top-level package, module to import, the class or function that
# opens a model). Availability is checked with find_spec on the package, which imports nothing.
INTERPRETERS = {
    "litert": ("tflite", "ai_edge_litert", "ai_edge_litert.interpreter", "Interpreter"),
    "tflite-runtime": ("tflite", "tflite_runtime", "tflite_runtime.interpreter", "Interpreter"),
    "tensorflow-lite": ("tflite", "tensorflow", "tensorflow.lite.python.interpreter", "Interpreter"),
    "onnxruntime": ("onnx", "onnxruntime", "onnxruntime", "InferenceSession"),
    "keras": ("keras", "tensorflow", "carolgen.keras_backend", "open_keras"),
}
PREFERENCE = {"tflite": ["litert", "tflite-runtime", "tensorflow-lite"], "onnx": ["onnxruntime"],
              "keras": ["keras"]}
INSTALL_HINT = {"tflite": "pip install 'carolgen[litert]'", "onnx": "pip install 'carolgen[onnx]'",
                "keras": "pip install 'carolgen[train]'"}


def _installed(name):
    return importlib.util.find_spec(INTERPRETERS[name][1]) is not None


def _import(name):
    _, _, module, attribute = INTERPRETERS[name]
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError:
        return None


def available_backends(kind):
    """The backends for a file kind whose package is installed here, in order of preference."""
    return [name for name in PREFERENCE[kind] if _installed(name)]


def open_backend(path, backend=None, threads=1, reference_kernels=None):
    """Verify the file, read its metadata, and open it with `backend` (default: the best one installed).

    `reference_kernels` (TFLite only): None decides from the file and platform (see needs_reference_kernels);
    True or False forces TFLite's reference or optimised kernels."""
    model_file = read_model_file(path)
    if threads < 1:
        raise CarolError(f"--threads must be at least 1, not {threads}")
    if backend is None:
        names = available_backends(model_file.kind)
        if not names:
            raise CarolError(f"no interpreter for {model_file.kind} files is installed: "
                             f"{INSTALL_HINT[model_file.kind]}")
        backend = names[0]
    if backend not in INTERPRETERS:
        raise CarolError(f"unknown backend {backend!r}; choose from {', '.join(INTERPRETERS)}")
    if INTERPRETERS[backend][0] != model_file.kind:
        raise CarolError(f"backend {backend} runs {INTERPRETERS[backend][0]} files, "
                         f"but {path} is a {model_file.kind} file")
    opener = _import(backend)
    if opener is None:
        raise CarolError(f"backend {backend} is not installed: {INSTALL_HINT[model_file.kind]}")
    if model_file.kind == "keras":
        return opener(model_file, threads=threads)
    if model_file.kind == "onnx":
        return OnnxBackend(model_file, backend, opener, threads)
    if reference_kernels is None:
        reference_kernels = needs_reference_kernels(backend, model_file.info)
    return TfliteBackend(model_file, backend, opener, threads, reference_kernels)


def needs_reference_kernels(backend, info):
    """True where a known interpreter bug would crash the process, so the reference kernels must be used.

    tflite-runtime 2.14 (its last release) on aarch64 segfaults in its optimised int8 FULLY_CONNECTED
    kernel on full-int8 files whose FULLY_CONNECTED layers have no bias, as carolgen's have (a NULL read,
    seen on every emulated Pi CPU; benchmarks/results/PI.md). Its reference kernels run the same file.
    ai-edge-litert, and the x86-64 build of tflite-runtime, run it fine."""
    return (backend == "tflite-runtime" and platform.machine().lower() in ("aarch64", "arm64")
            and info.document.get("export", {}).get("quantization") == "int8")


class TfliteBackend:
    """A .tflite file on ai-edge-litert, tflite-runtime or tf.lite (the same Interpreter API)."""

    def __init__(self, model_file, name, interpreter_class, threads, reference_kernels=False):
        self.name, self.model_file, self.info = name, model_file, model_file.info
        self.vocab, self.window = self.info.vocab, self.info.window
        options = {"model_path": str(model_file.path), "num_threads": threads}
        self.kernels = "reference" if reference_kernels else "optimised"
        if reference_kernels:
            resolvers = importlib.import_module(interpreter_class.__module__).OpResolverType
            options["experimental_op_resolver_type"] = resolvers.BUILTIN_REF
        try:
            with quiet_native_stderr():
                self.interpreter = interpreter_class(**options)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise CarolError(f"{name} cannot run {model_file.path}: {_first_line(error)}") from None
        self.input = self.interpreter.get_input_details()[0]["index"]
        self._find_outputs()
        self.batch = int(self.interpreter.get_input_details()[0]["shape"][0])

    def _find_outputs(self):
        by_width = {int(d["shape"][-1]): d["index"] for d in self.interpreter.get_output_details()}
        self.probs_output = by_width.get(self.vocab.size)
        self.attention_output = by_width.get(self.window)
        if self.probs_output is None:
            raise CarolError(f"{self.model_file.path} has no output of width {self.vocab.size} (its vocabulary)")

    def supports_batch(self, batch):
        """True when `batch` windows can run as one call (resizing the input if the graph allows)."""
        if batch == self.batch:
            return True
        try:
            self.interpreter.resize_tensor_input(self.input, [batch, self.window, 1], strict=False)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError):
            self.interpreter.resize_tensor_input(self.input, [self.batch, self.window, 1], strict=False)
            self.interpreter.allocate_tensors()
            return False
        self.batch = batch
        self._find_outputs()
        return True

    def probs(self, windows):
        self.interpreter.set_tensor(self.input, windows)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.probs_output)

    def probs_and_attention(self, windows):
        if self.attention_output is None:
            raise CarolError(f"{self.model_file.path} was exported without an attention output "
                             "(carol-export --attention), or use --backend keras with the checkpoint")
        probs = self.probs(windows)
        return probs, self.interpreter.get_tensor(self.attention_output)


class OnnxBackend:
    """An .onnx file on onnxruntime (CPU)."""

    def __init__(self, model_file, name, session_class, threads):
        import onnxruntime
        self.name, self.model_file, self.info = name, model_file, model_file.info
        self.vocab, self.window = self.info.vocab, self.info.window
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.log_severity_level = 3
        try:
            self.session = session_class(str(model_file.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for a bad model.
            raise CarolError(f"onnxruntime cannot run {model_file.path}: {_first_line(error)}") from None
        self.input = self.session.get_inputs()[0].name
        batch = self.session.get_inputs()[0].shape[0]
        self.batch = batch if isinstance(batch, int) else None
        names = [o.name for o in self.session.get_outputs()]
        if "output" not in names:
            raise CarolError(f"{model_file.path} has no 'output' (next-character probabilities) output")
        self.outputs = ["output"]
        self.attention_output = "attention_weight" if "attention_weight" in names else None

    def supports_batch(self, batch):
        return self.batch is None or batch == self.batch

    def probs(self, windows):
        return self.session.run(self.outputs, {self.input: windows})[0]

    def probs_and_attention(self, windows):
        if self.attention_output is None:
            raise CarolError(f"{self.model_file.path} was exported without an attention output "
                             "(carol-export --attention), or use --backend keras with the checkpoint")
        probs, attention = self.session.run(self.outputs + [self.attention_output], {self.input: windows})
        return probs, attention


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
