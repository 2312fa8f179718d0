"""The numpy backend: weights read out of real exported files, compared with the real interpreters."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import carolgen
from carolgen.runtime import integrity
from carolgen.runtime.backends import open_backend
from carolgen.runtime.errors import CarolError
from carolgen.runtime.generate import Generator, probs_of_windows
from carolgen.runtime.modelfile import read_model_file

INTERPRETER = {".tflite": "litert", ".onnx": "onnxruntime"}
# Files whose interpreter computes in float from the dequantised weights, as the numpy backend does: fp32 and
# fp16 files, and dynamic ONNX files (onnxruntime folds their DequantizeLinear weights at load).
FLOAT_ON_THE_INTERPRETER = ("fp32", "fp16", "dynamic.onnx", "dynamic-step.onnx")
MAX_ABS_DP = 1e-5  # the promise for a float file: the interpreter's probabilities, to 1e-5
GREEDY_CHARS = 120


@pytest.fixture(scope="module")
def seed_exports(tmp_path_factory, tiny_seed_checkpoint):
    """The seed architecture's fp32 files, windowed and step, in both formats: {'seed/' + file name: path}."""
    from carolgen.export import export
    out = tmp_path_factory.mktemp("seed-exports")
    rows = export(tiny_seed_checkpoint, ["tflite", "onnx"], ["fp32"], out=out, graphs=["window", "step"])
    return {f"seed/{row.file}": out / row.file for row in rows if row.status == "accepted"}


@pytest.fixture(scope="module")
def every_file(every_mode, step_exports, seed_exports):
    """{file name: path} of every accepted file of the tiny models: every mode, both graphs and formats."""
    (windowed, windowed_rows), (step, step_rows) = every_mode, step_exports
    files = {r.file: windowed / r.file for r in windowed_rows if r.status == "accepted"}
    files.update({r.file: step / r.file for r in step_rows.values() if r.status == "accepted"})
    return {**files, **seed_exports}


def probabilities(backend, windows):
    """Each window's next-character probabilities: windowed files take the window, step files are fed it from a
    zero state and then go on through the following windows' last characters with one continuous state."""
    if backend.graph == "window":
        return probs_of_windows(backend, windows)
    from carolgen.export.parity import stream_probs
    stream = np.concatenate([windows[0], windows[1:, -1]])[None]  # one long stream through the windows
    return stream_probs(backend, stream, backend.window)


def compared(path, count=40):
    """(max |dp|, greedy texts equal) of the numpy backend against the file's interpreter."""
    from carolgen.export.windows import parity_set
    interpreter, numpy = open_backend(path, INTERPRETER[path.suffix]), open_backend(path, "numpy")
    windows = parity_set(interpreter.info, count=count)[0]
    dp = float(np.abs(probabilities(numpy, windows) - probabilities(interpreter, windows)).max())
    greedy = [Generator(b).generate("the ", GREEDY_CHARS, temperature=0) for b in (interpreter, numpy)]
    return dp, greedy[0] == greedy[1]


def test_float_files_give_their_interpreters_probabilities_and_text(every_file):
    """Every architecture, graph and format: fp32 and fp16 files, and dynamic ONNX files (float arithmetic
    on the interpreter too) give the interpreter's probabilities to 1e-5 and the same greedy text."""
    floats = {name: path for name, path in every_file.items() if any(tag in name for tag in FLOAT_ON_THE_INTERPRETER)}
    assert {"seed/model-fp32.tflite", "seed/model-fp32-step.onnx", "model-fp16-step.tflite",
            "model-dynamic.onnx"} <= set(floats)
    for name, path in floats.items():
        dp, same_text = compared(path)
        assert dp <= MAX_ABS_DP and same_text, f"{name}: max |dp| {dp:.2e}, same greedy text {same_text}"


def test_integer_files_meet_their_modes_promises_on_the_numpy_backend(every_mode, step_exports, tiny_checkpoint,
                                                                       tiny_lyrics):
    """TFLite dynamic and int8 files compute in integers on the interpreter and in float (dequantised weights)
    on the numpy backend, so the two differ; what a user is promised is the file's mode limits against the
    Keras model, measured by the same gate the exporter ran."""
    from carolgen.checkpoint import load_checkpoint
    from carolgen.export.api import Exporter, Options
    from carolgen.export.modes import MODES
    from carolgen.export.parity import failures
    model, info = load_checkpoint(tiny_checkpoint)
    job = Exporter(Options(tiny_checkpoint, calibration_lyrics=str(tiny_lyrics)), model, info, None)
    rows = [(every_mode[0], r) for r in every_mode[1]] + [(step_exports[0], r) for r in step_exports[1].values()]
    checked = 0
    for folder, row in rows:
        if row.status != "accepted" or row.format != "tflite" or row.mode in ("fp32", "fp16"):
            continue
        measured = job.gate(row.graph).measure(open_backend(folder / row.file, "numpy"), MODES[row.mode].limits)
        problems = [p for _, figures, limits in measured for p in failures(figures, limits)]
        assert not problems, f"{row.file} on the numpy backend: {problems}"
        checked += 1
    assert checked >= 4  # dynamic, dynamic-compat, int8 windowed; their step files


def test_numpy_only_python_generates_from_the_bundled_model_and_each_kind_of_file(tmp_path, every_file):
    """A Python that sees numpy and carolgen and nothing else (no site-packages: no interpreter, no
    TensorFlow) writes from the bundled model and from a file of each format, graph and architecture, choosing
    the numpy backend and saying so (every file's numbers are checked in-process above)."""
    path = numpy_only_path(tmp_path / "numpy-only")
    kinds = ["model-fp32.tflite", "model-int8.onnx", "model-dynamic-step.tflite", "model-fp16-step.onnx",
             "seed/model-fp32-step.tflite"]
    for model in [None, *(every_file[name] for name in kinds)]:
        args = ["--length", "60", "--temperature", "0"] + ([] if model is None else ["--model", str(model)])
        done = subprocess.run([sys.executable, "-S", "-c", "import sys; from carolgen.generate import main; "
                               "sys.exit(main(sys.argv[1:]))", *args], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(path), "PYTHONNOUSERSITE": "1"})
        assert done.returncode == 0, (model, done.stderr[-500:])
        assert "using the numpy backend: no interpreter for" in done.stderr, done.stderr
        expected = Generator(open_backend(model or carolgen.MODELS_DIR / "model-fp32.tflite", "numpy")).generate(
            "", 60, temperature=0)
        assert done.stdout.rstrip("\n") == expected and len(expected) == 60


def numpy_only_path(folder):
    """A folder to put on PYTHONPATH holding carolgen laid out as its wheel installs it, and numpy."""
    root = Path(carolgen.__file__).resolve().parent.parent
    package = folder / "carolgen"
    package.mkdir(parents=True)
    for entry in (root / "carolgen").iterdir():
        (package / entry.name).symlink_to(entry)
    for name, source in {"runtime": "runtime", "export": "export", "bench": "benchmarks"}.items():
        (package / name).symlink_to(root / source)
    site = Path(np.__file__).resolve().parent.parent
    for entry in site.glob("numpy*"):
        (folder / entry.name).symlink_to(entry)
    return folder


def resealed(data):
    """A file's bytes sealed again after an edit (as if carol-export had written them)."""
    digest = read_digest(data)
    return integrity.seal(data.replace(integrity._marker(digest), integrity._marker(integrity.PLACEHOLDER)))


def read_digest(data):
    start = data.index(b'"file_sha256": "') + len(b'"file_sha256": "')
    return data[start:start + 64].decode()


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_a_file_without_a_layers_weights_is_refused_with_one_line(tmp_path, tiny_exports, suffix):
    """A graph whose constants do not name the attention_vector layer (as no carol-export graph lacks) is
    refused by the numpy backend with its reason, not run with a weight missing."""
    folder, rows = tiny_exports
    source = next(folder / r.file for r in rows if r.file.endswith(suffix))
    data = source.read_bytes()
    assert b"attention_vector/MatMul" in data
    damaged = tmp_path / source.name
    damaged.write_bytes(resealed(data.replace(b"attention_vector/MatMul", b"attention_vectoX/MatMul")))
    read_model_file(damaged)  # still a sound, sealed file
    with pytest.raises(CarolError, match="found no attention_vector weights"):
        open_backend(damaged, "numpy")


def test_the_numpy_backend_is_refused_no_file_format_it_cannot_read(tiny_checkpoint):
    with pytest.raises(CarolError, match="runs tflite and onnx files"):
        open_backend(tiny_checkpoint, "numpy")


def test_the_runtime_chooses_from_what_each_backend_can_run_where(every_mode, step_exports):
    """runtime/compat.py's findings decide the automatic choice: a file an installed interpreter may run goes
    to it; tflite-runtime 2.14 is ruled out for ops newer than it knows, for the windowed int8 file on Arm, and
    on ARMv6 altogether, and nothing rules out the numpy backend."""
    from carolgen.runtime.compat import why_not
    (folder, rows), (step_folder, _) = every_mode, step_exports
    files = {r.file: read_model_file(folder / r.file) for r in rows if r.status == "accepted"}
    int8_step = read_model_file(step_folder / "model-int8-step.tflite")
    assert "newer than tflite-runtime knows" in why_not("tflite-runtime", files["model-dynamic.tflite"], "x86_64")
    assert why_not("tflite-runtime", files["model-dynamic-compat.tflite"], "x86_64") is None
    for machine in ("aarch64", "armv7l"):
        assert "crash" in why_not("tflite-runtime", files["model-int8.tflite"], machine)
        assert why_not("tflite-runtime", int8_step, machine) is None
    assert "ARMv6" in why_not("tflite-runtime", files["model-fp32.tflite"], "armv6l")
    assert all(why_not(name, f, machine) is None for name in ("litert", "numpy") for f in files.values()
               for machine in ("x86_64", "aarch64", "armv7l", "armv6l"))
    chosen = open_backend(folder / "model-fp32.tflite")
    assert chosen.name == "litert" and getattr(chosen, "note", None) is None
