"""Backends: one small class per interpreter family, all behind one call.

    windowed files:  probs(windows: (B, window, ...) as the file's input encoding says) -> float32 (B, vocab_size)
    step files:      step(chars: (B, ...), state: (B, *state_shape)) -> (probs, next state)

Each opened backend says which with `graph` (the file's metadata: runtime/metadata.GRAPHS). BACKENDS is
the one table of them: the formats each runs, the module imported when it is chosen (availability is
checked with find_spec, which imports nothing), the class that wraps it; preferred in table order, the
numpy backend (runtime/numpy_backend.py) last. Layers above the runtime add rows with `register` (carolgen
adds its Keras reference backend), so the runtime itself never imports the training side.
"""
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

from .compat import why_not
from .errors import CarolError
from .graph_inputs import STEP_INPUTS, STEP_OUTPUTS, check_input, check_step_input
from .modelfile import FORMATS, read_model_file
from .numpy_backend import NumpyBackend
from .quiet import quiet_native_stderr

# More threads than any Pi or laptop has cores gains nothing; TFLite crashed on --threads 100000.
MAX_THREADS = 64


@dataclass(frozen=True)
class Backend:
    """One row of the backend table (which files it may run on which machine: runtime/compat.py)."""

    name: str  # what --backend takes
    formats: tuple  # the file formats it runs (keys of runtime.modelfile.FORMATS)
    module: str  # the interpreter's module, imported only when this backend is opened
    opener: Callable  # (model_file, backend row, threads, reference_kernels) -> an opened backend
    # quantisation -> the interpreter's session settings for such files (see OnnxBackend).
    session_config_for: dict = field(default_factory=dict)

    @property
    def installed(self):
        return importlib.util.find_spec(self.module.split(".")[0]) is not None


def register(backend):
    """Add a backend row (or replace the row of the same name)."""
    BACKENDS[backend.name] = backend


def available_backends(kind):
    """The backends for a file format whose interpreter is installed here, in order of preference."""
    return [b.name for b in BACKENDS.values() if kind in b.formats and b.installed]


def backend_row(name):
    if name not in BACKENDS:
        raise CarolError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return BACKENDS[name]


def open_backend(path, backend=None, threads=1, reference_kernels=None, trust=False):
    """Verify the file, read its metadata, and open it with `backend` (default: the best one installed).

    `reference_kernels` (TFLite only): None for the optimised kernels with the backend's refusals for this
    machine applied; True or False forces the reference or optimised kernels (carol-pi-check, for the record).
    `trust`: run an exported file that carries no integrity digest (see read_model_file)."""
    model_file = read_model_file(path, trust)
    if not 1 <= threads <= MAX_THREADS:
        raise CarolError(f"--threads must be 1-{MAX_THREADS}, not {threads}")
    if backend is None:
        return _open_first(model_file, threads)
    row = backend_row(backend)
    if model_file.kind not in row.formats:
        raise CarolError(f"backend {backend} runs {' and '.join(row.formats)} files, but {path} is a "
                         f"{model_file.kind} file")
    if not row.installed:
        raise CarolError(f"backend {backend} is not installed: {FORMATS[model_file.kind].install_hint}")
    problem = why_not(row.name, model_file)
    if problem and reference_kernels is None:
        raise CarolError(f"{row.name} cannot run {path} on this machine: {problem} (--backend numpy runs any file)")
    return row.opener(model_file, row, threads, bool(reference_kernels))


def _open_first(model_file, threads):
    """The first installed backend for the file that compat does not rule out here; `note` says what was
    passed over when the choice fell to the numpy backend (slower), so the user knows why."""
    passed_over = []
    for name in available_backends(model_file.kind):
        problem = why_not(name, model_file)
        if problem:
            passed_over.append(f"{name}: {problem}")
            continue
        row = BACKENDS[name]
        backend = row.opener(model_file, row, threads, False)
        if name == "numpy":
            backend.note = (f"using the numpy backend ({'; '.join(passed_over)})" if passed_over else
                            f"using the numpy backend: no interpreter for {model_file.kind} files is installed "
                            f"({FORMATS[model_file.kind].install_hint} is faster)")
        return backend
    raise CarolError(f"nothing here can run {model_file.path}: {'; '.join(passed_over)}")


def _interpreter(row, attribute):
    try:
        return getattr(importlib.import_module(row.module), attribute)
    except ImportError:
        raise CarolError(f"backend {row.name} could not be imported: "
                         f"{FORMATS[row.formats[0]].install_hint}") from None


class TfliteBackend:
    """A .tflite file on ai-edge-litert, tflite-runtime or tf.lite (the same Interpreter API)."""

    def __init__(self, model_file, row, threads, reference_kernels=False):
        self.name, self.model_file, self.info = row.name, model_file, model_file.info
        self.vocab, self.window = self.info.vocab, self.info.window
        interpreter_class = _interpreter(row, "Interpreter")
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
            raise CarolError(f"{row.name} cannot run {model_file.path}: {_first_line(error)}") from None
        self.graph = self.info.graph
        if self.graph == "step":
            self._find_step_tensors()
        else:
            window_input = self.interpreter.get_input_details()[0]
            check_input(model_file, window_input["shape"], window_input["dtype"])
            self.input = window_input["index"]
            self._find_outputs()
        self.batch = int(self.interpreter.get_input_details()[0]["shape"][0])

    def _find_step_tensors(self):
        """The step graph's tensors, by the names its signature gives them."""
        inputs, outputs = _signature(self.interpreter, self.model_file.path)
        self.char_input, self.state_input = (inputs[n]["index"] for n in STEP_INPUTS)
        self.probs_output, self.state_output, self.attention_output = (outputs[n]["index"] for n in STEP_OUTPUTS)
        char, state = inputs["char"], inputs["state"]
        self.state_shape = check_step_input(self.model_file, char["shape"], char["dtype"], state["shape"])

    def _find_outputs(self):
        by_width = {int(d["shape"][-1]): d["index"] for d in self.interpreter.get_output_details()}
        self.probs_output = by_width.get(self.vocab.size)
        self.attention_output = by_width.get(self.window)
        if self.probs_output is None:
            raise CarolError(f"{self.model_file.path} has no output of width {self.vocab.size} (its vocabulary)")

    def supports_batch(self, batch):
        """True when `batch` windows can run as one call: only the batch the file was converted with. A
        carolgen TFLite graph cannot be resized after conversion (the LSTM is unrolled at a fixed batch), and
        asking tflite-runtime 2.14 to resize it crashes the process instead of raising."""
        return batch == self.batch

    def probs(self, windows):
        """Each window from a zero state: the fused LSTM op keeps its state in variable tensors that would
        otherwise carry over from the previous call."""
        self.interpreter.reset_all_variables()
        self._invoke((self.input, windows))
        return self.interpreter.get_tensor(self.probs_output)

    def probs_and_attention(self, windows):
        _require_attention(self.attention_output, self.model_file.path)
        probs = self.probs(windows)
        return probs, self.interpreter.get_tensor(self.attention_output)

    def step(self, chars, state):
        """(probabilities, next state) for one character per sample (a step file: no variables to reset)."""
        self._invoke((self.char_input, chars), (self.state_input, state))
        return self.interpreter.get_tensor(self.probs_output), self.interpreter.get_tensor(self.state_output)

    def _invoke(self, *feeds):
        """Set the inputs and run; a graph whose tensors do not fit what it computes (a damaged file run with
        --trust-file: a step file whose next state has another shape than its state) is a CarolError."""
        try:
            for index, value in feeds:
                self.interpreter.set_tensor(index, value)
            self.interpreter.invoke()
        except (ValueError, RuntimeError) as error:
            raise CarolError(f"{self.name} failed running {self.model_file.path}: {_first_line(error)}") from None

    def step_and_attention(self, chars, state):
        probs, next_state = self.step(chars, state)
        return probs, next_state, self.interpreter.get_tensor(self.attention_output)


def _signature(interpreter, path):
    """({name: input details}, {name: output details}) of the file's one signature; CarolError without it."""
    try:
        runner = interpreter.get_signature_runner()
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
    except (ValueError, RuntimeError, AttributeError):
        raise CarolError(f"{path} says it is a step file but has no signature naming its tensors") from None
    if set(STEP_INPUTS) - set(inputs) or set(STEP_OUTPUTS) - set(outputs):
        raise CarolError(f"{path} says it is a step file but its signature lacks {', '.join(STEP_INPUTS)} -> "
                         f"{', '.join(STEP_OUTPUTS)}: the file is damaged or mislabelled")
    return inputs, outputs


# onnxruntime's names for the input types carolgen's encodings use.
ONNX_TYPES = {"tensor(float)": "float32", "tensor(int32)": "int32"}


class OnnxBackend:
    """An .onnx file on onnxruntime (CPU)."""

    def __init__(self, model_file, row, threads, reference_kernels=False):
        self.name, self.model_file, self.info = row.name, model_file, model_file.info
        self.vocab, self.window = self.info.vocab, self.info.window
        self.kernels = ""
        onnxruntime = importlib.import_module(row.module)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.log_severity_level = 3
        for key, value in row.session_config_for.get(self.info.quantisation, {}).items():
            options.add_session_config_entry(key, value)
        try:
            self.session = onnxruntime.InferenceSession(str(model_file.path), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for a bad model.
            raise CarolError(f"onnxruntime cannot run {model_file.path}: {_first_line(error)}") from None
        self.graph = self.info.graph
        inputs = {i.name: i for i in self.session.get_inputs()}
        names = [o.name for o in self.session.get_outputs()]
        if self.graph == "step":
            self._find_step_tensors(inputs, names)
        else:
            window_input = self.session.get_inputs()[0]
            check_input(model_file, window_input.shape, ONNX_TYPES.get(window_input.type, "void"))
            self.input = window_input.name
            if "output" not in names:
                raise CarolError(f"{model_file.path} has no 'output' (next-character probabilities) output")
            self.outputs = ["output"]
            self.attention_output = "attention_weight" if "attention_weight" in names else None
        batch = self.session.get_inputs()[0].shape[0]
        self.batch = batch if isinstance(batch, int) else None

    def _find_step_tensors(self, inputs, outputs):
        if set(STEP_INPUTS) - set(inputs) or set(STEP_OUTPUTS) - set(outputs):
            raise CarolError(f"{self.model_file.path} says it is a step file but lacks the tensors "
                             f"{', '.join(STEP_INPUTS)} -> {', '.join(STEP_OUTPUTS)}: it is damaged or mislabelled")
        char, state = inputs["char"], inputs["state"]
        self.state_shape = check_step_input(self.model_file, char.shape, ONNX_TYPES.get(char.type, "void"),
                                            state.shape)
        self.step_outputs = list(STEP_OUTPUTS[:2])
        self.attention_outputs = list(STEP_OUTPUTS)

    def supports_batch(self, batch):
        return self.batch is None or batch == self.batch

    def probs(self, windows):
        return self._run(self.outputs, {self.input: windows})[0]

    def probs_and_attention(self, windows):
        _require_attention(self.attention_output, self.model_file.path)
        return self._run(self.outputs + [self.attention_output], {self.input: windows})

    def step(self, chars, state):
        """(probabilities, next state) for one character per sample."""
        return self._run(self.step_outputs, {"char": chars, "state": state})

    def step_and_attention(self, chars, state):
        return self._run(self.attention_outputs, {"char": chars, "state": state})

    def _run(self, outputs, feeds):
        try:
            return self.session.run(outputs, feeds)
        except Exception as error:  # onnxruntime's own exception types: a graph that fails when it runs
            raise CarolError(f"onnxruntime failed running {self.model_file.path}: {_first_line(error)}") from None


def _require_attention(output, path):
    if output is None:
        raise CarolError(f"{path} has no attention output (files from carol-export always carry one); "
                         "use a file carol-export wrote, or the .keras checkpoint with --backend keras")


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# A dynamic ONNX file stores int8 weights behind DequantizeLinear nodes (export/onnx.py). onnxruntime keeps
# such nodes unfolded by default (to fuse them into integer kernels), which would dequantise every weight on
# every call and stop the LSTM from pre-packing its weights; with its QDQ handling off it folds them into
# float weights once, at load, and the file runs as fast as fp32 (measured: docs/QUANTISATION.md).
_FOLD_INT8_WEIGHTS = {"dynamic": {"session.disable_quant_qdq": "1"}}

# The numpy backend comes last: it runs every file, slowest, and is what a machine with no interpreter uses.
BACKENDS = {b.name: b for b in (
    Backend("litert", ("tflite",), "ai_edge_litert.interpreter", TfliteBackend),
    Backend("tflite-runtime", ("tflite",), "tflite_runtime.interpreter", TfliteBackend),
    Backend("tensorflow-lite", ("tflite",), "tensorflow.lite.python.interpreter", TfliteBackend),
    Backend("onnxruntime", ("onnx",), "onnxruntime", OnnxBackend, session_config_for=_FOLD_INT8_WEIGHTS),
    Backend("numpy", ("tflite", "onnx"), "numpy", NumpyBackend),
)}
