"""Hostile and broken inputs: one clear line on stderr and exit 2, never a traceback, a crash or a hang."""
import json
import os

import numpy as np
import pytest
from conftest import run_cli

from carolgen.runtime.metadata import dump_metadata
from carolgen.runtime.modelfile import read_model_file


@pytest.fixture(scope="module")
def onnx_file(tiny_exports):
    return tiny_exports[0] / "model-fp32.onnx"


def assert_one_line_exit_2(result, *words):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(word in result.stderr for word in words), result.stderr


def with_metadata(onnx_file, folder, text):
    """A copy of the ONNX file whose carolgen metadata is `text`."""
    from carolgen.export.formats import EXPORT_FORMATS
    path = folder / "tampered.onnx"
    path.write_bytes(EXPORT_FORMATS["onnx"].embed_metadata(onnx_file.read_bytes(), text))
    return path


def document(onnx_file, **changes):
    return dump_metadata({**read_model_file(onnx_file).info.document, **changes})


@pytest.mark.parametrize("case", ["fifo", "directory", "sparse"])
def test_model_paths_that_are_not_model_files(tmp_path, case):
    path = tmp_path / "model.onnx"
    if case == "fifo":
        os.mkfifo(path)  # reading it would block for ever
    elif case == "directory":
        path.mkdir()
    else:
        with open(path, "wb") as handle:
            handle.truncate(2**30)  # 1 GiB, sparse: must not be read whole
    result = run_cli("carol-generate", "--model", path, "--length", 5, timeout=60)
    assert_one_line_exit_2(result, str(path))


@pytest.mark.parametrize("text, words", [
    (None, ["window"]),  # "window": Infinity, from json.dumps
    ("[" * 100_000, ["not valid JSON"]),
    ("window-1e9", ["out of range"]),
    ("normalisation", ["normalisation"]),
])
def test_tampered_metadata(onnx_file, tmp_path, text, words):
    text = {None: document(onnx_file, window=float("inf")),
            "window-1e9": document(onnx_file, window=10**9),
            "normalisation": document(onnx_file, normalisation="lowercase")}.get(text, text)
    result = run_cli("carol-generate", "--model", with_metadata(onnx_file, tmp_path, text), "--length", 5)
    assert_one_line_exit_2(result, *words)


def test_metadata_vocabulary_shorter_than_the_graph(onnx_file, tmp_path):
    """The graph's output is wider than the vocabulary the metadata claims: refused, not silently wrong text."""
    from carolgen.export.api import Exporter
    info = read_model_file(onnx_file).info
    path = tmp_path / "short-vocabulary.onnx"
    path.write_bytes(Exporter.sealed("onnx", onnx_file.read_bytes(), {**info.document, "vocab": info.vocab.chars[:-1]}))
    result = run_cli("carol-generate", "--model", path, "--length", 5, "--quiet")
    assert_one_line_exit_2(result, "probabilities of shape")


def test_a_nan_weight_is_refused_not_sampled(onnx_file, tmp_path):
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(onnx_file)
    weight = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] = np.nan
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    from carolgen.export.api import Exporter
    path = tmp_path / "nan.onnx"
    path.write_bytes(Exporter.sealed("onnx", proto.SerializeToString(), read_model_file(onnx_file).info.document))
    result = run_cli("carol-generate", "--model", path, "--length", 20, "--quiet")
    assert_one_line_exit_2(result, "invalid probabilities")
    for greedy in ([], ["--temperature", "0"]):  # the numpy backend computes from the same NaN weight
        result = run_cli("carol-generate", "--model", path, "--length", 20, "--quiet", "--backend", "numpy", *greedy)
        assert_one_line_exit_2(result, "invalid probabilities")


@pytest.mark.parametrize("args, words", [
    (["--temperature", "1e-320"], ["--temperature"]),
    (["--temperature", "nan"], ["--temperature"]),
    (["--threads", "100000"], ["--threads"]),
    (["--seed", "-1"], ["--seed"]),
    (["--length", str(10**12)], ["--length"]),
    (["--num-samples", str(10**12)], ["--num-samples"]),
    (["--num-samples", "1000", "--length", "900000"], ["split it"]),
])
def test_extreme_options(onnx_file, args, words):
    assert_one_line_exit_2(run_cli("carol-generate", "--model", onnx_file, *args, timeout=60), *words)


def test_a_full_stdout_is_one_line(onnx_file):
    """Writing to /dev/full fails with ENOSPC: one line on stderr, exit 2."""
    import shutil
    import subprocess
    with open("/dev/full", "w") as full:
        result = subprocess.run([shutil.which("carol-generate"), "--model", str(onnx_file), "--length", "5000",
                                 "--quiet"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert_one_line_exit_2(result, "No space left")


@pytest.mark.parametrize("kind", ["fifo", "huge", "continue-fifo"])
def test_lyrics_that_would_hang_or_exhaust(tmp_path, tiny_lyrics, onnx_file, kind):
    folder = tmp_path / "lyrics"
    folder.mkdir()
    for song in sorted(tiny_lyrics.iterdir())[:2]:
        (folder / song.name).write_bytes(song.read_bytes())
    bad = folder / "odd.txt"
    if kind == "huge":
        bad.write_text("snow " * 1_000_000)
    else:
        os.mkfifo(bad)
    if kind == "continue-fifo":
        result = run_cli("carol-generate", "--model", onnx_file, "--continue", bad, timeout=60)
    else:
        result = run_cli("carol-train", "--lyrics", folder, "--epochs", 1, "--out", tmp_path / "run", timeout=120)
    assert_one_line_exit_2(result, "odd.txt")
    assert not (tmp_path / "run" / "model.keras").exists()


def test_json_document_still_parses_after_a_refusal(onnx_file):
    """A refused option never leaves half a JSON document on stdout."""
    result = run_cli("carol-generate", "--model", onnx_file, "--json", "--threads", "0")
    assert result.returncode == 2 and result.stdout == ""
    assert json.loads(run_cli("carol-generate", "--model", onnx_file, "--json", "--length", 3).stdout)["texts"]


@pytest.mark.parametrize("module, args, blocked, extra", [
    ("carolgen.export.cli", ["--quantize", "fp32"], "tensorflow", "train"),
    ("carolgen.generate", ["--backend", "keras", "--length", "5"], "tensorflow", "train"),
    ("carolgen.generate", ["--attention", "a.png", "--length", "5"], "matplotlib", "plots"),
])
def test_a_runtime_only_install_is_told_which_extra_to_add(tmp_path, module, args, blocked, extra):
    """With a package missing (blocked in sys.modules, as in a runtime-only install): one line naming the
    extra, exit 2, and nothing written."""
    import subprocess
    import sys
    script = (f"import sys\nsys.modules[{blocked!r}] = None\nfrom {module} import main\n"
              f"raise SystemExit(main({args!r}))")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert_one_line_exit_2(result, f"carolgen[{extra}]")
    assert list(tmp_path.iterdir()) == []


def _ctrl_c_as_at_a_terminal():
    """SIGINT back to its default in the child: a test run started in the background (CI) inherits SIGINT
    ignored, and Python then installs no Ctrl-C handler at all."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_what_was_written(onnx_file):
    """Ctrl-C during a --json batch run still prints the texts so far (marked interrupted), exit 130."""
    import shutil
    import signal
    import subprocess
    import time
    process = subprocess.Popen([shutil.which("carol-generate"), "--model", str(onnx_file), "--json",
                                "--num-samples", "2", "--length", "1000000"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_as_at_a_terminal)
    time.sleep(20)  # well past start-up, even on a loaded machine: the interrupt must land while it generates
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"no exit within 120 s of Ctrl-C: {process.communicate()[1][-500:]!r}") from None
    assert process.returncode == 130, stderr
    document = json.loads(stdout)
    assert document["interrupted"] and len(document["texts"]) == 2 and len(document["texts"][0]) > 0
    assert "interrupted" in stderr and "Traceback" not in stderr


def test_a_quantisation_scale_no_interpreter_survives_is_refused(tmp_path):
    """A TFLite file whose int8 tensor claims a scale of 1.8e-43 made the interpreter abort: it is refused
    before any interpreter sees it."""
    import carolgen
    from carolgen.export.tflite import edit_model

    def tiny_scale(schema, model):
        graph = model.subgraphs[0]
        tensor = next(t for t in graph.tensors if t.type == schema.TensorType.INT8 and t.quantization)
        tensor.quantization.scale = [1.8e-43] * len(tensor.quantization.scale)
    int8 = tmp_path / "int8.tflite"
    from carolgen.export import export
    export(carolgen.DEFAULT_CHECKPOINT, ["tflite"], ["dynamic-compat"], out=tmp_path)
    path = tmp_path / "model-dynamic-compat.tflite"
    int8.write_bytes(edit_model(path.read_bytes(), tiny_scale))
    result = run_cli("carol-generate", "--model", int8, "--length", 5)
    assert_one_line_exit_2(result, "quantised tensor")


def test_a_tensor_shape_no_file_holds_is_refused(tmp_path):
    """A flipped bit made a TFLite output tensor claim 134,217,729 x 33 elements; ai-edge-litert then spent
    more than 20 s allocating it (carol-fuzz). The reader refuses such a shape before any interpreter runs."""
    import carolgen
    from carolgen.export.tflite import edit_model

    def huge_output(schema, model):
        tensor = next(t for t in model.subgraphs[0].tensors if list(t.shape) == [1, 33])
        tensor.shape = [134217729, 33]
    damaged = tmp_path / "huge.tflite"
    damaged.write_bytes(edit_model((carolgen.MODELS_DIR / "model-fp32.tflite").read_bytes(), huge_output))
    result = run_cli("carol-generate", "--model", damaged, "--length", 5, "--trust-file")
    assert_one_line_exit_2(result, "more than 67,108,864 elements")


def test_a_tensor_the_graph_writes_that_claims_constant_data_is_refused(tmp_path):
    """A flipped bit pointed a BATCH_MATMUL output at a weight's buffer; ai-edge-litert then wrote into the
    read-only constant and died of SIGSEGV (carol-fuzz). The reader refuses such a graph first."""
    import carolgen
    from carolgen.export.tflite import edit_model

    def output_onto_a_weight(schema, model):
        graph = model.subgraphs[0]
        matmul = next(op for op in graph.operators
                      if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.BATCH_MATMUL)
        weight = next(t for t in graph.tensors if model.buffers[t.buffer].data is not None
                      and len(model.buffers[t.buffer].data) > 0)
        graph.tensors[matmul.outputs[0]].buffer = weight.buffer
    damaged = tmp_path / "written-constant.tflite"
    damaged.write_bytes(edit_model((carolgen.MODELS_DIR / "model-fp32.tflite").read_bytes(), output_onto_a_weight))
    result = run_cli("carol-generate", "--model", damaged, "--length", 5, "--trust-file")
    assert_one_line_exit_2(result, "which the graph writes, claims constant data")
