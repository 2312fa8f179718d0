"""The TensorFlow-free runtime on real exported files: loading, generation, the CLI, and damaged files."""
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from carolgen.keras_backend import register_keras
from carolgen.runtime.errors import CarolError
from carolgen.runtime.generate import load
from carolgen.runtime.modelfile import read_model_file


@pytest.fixture(scope="module")
def files(tiny_exports):
    folder, _ = tiny_exports
    return {"tflite": folder / "model-fp32.tflite", "onnx": folder / "model-fp32.onnx"}


def test_metadata_round_trips_through_the_runtime_reader(files, tiny_checkpoint):
    keras_info = read_model_file(tiny_checkpoint).info
    for path in files.values():
        model_file = read_model_file(path)
        assert model_file.info.vocab == keras_info.vocab and model_file.info.window == keras_info.window
        export = model_file.info.document["export"]
        assert export["quantization"] == "fp32" and len(export["source"]["sha256"]) == 64


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_same_seed_same_text(files, kind):
    generator = load(files[kind])
    a = generator.generate("snow falls", 60, temperature=0.8, seed=5)
    b = generator.generate("snow falls", 60, temperature=0.8, seed=5)
    assert a == b and len(a) == 60


def test_num_samples_batched_on_onnx_looped_on_fixed_batch_tflite(files):
    onnx, tflite = load(files["onnx"]), load(files["tflite"])
    texts = onnx.generate_batch("", 30, temperature=1.0, seed=2, num_samples=3)
    assert len(texts) == 3 and onnx.timing.batch_mode == "batched"
    assert tflite.generate_batch("", 30, temperature=1.0, seed=2, num_samples=3) == texts
    assert tflite.timing.batch_mode == "looped"


def test_greedy_text_is_identical_on_tflite_onnx_and_keras(files, tiny_checkpoint):
    register_keras()
    texts = {name: load(path, backend=backend).generate("the star", 200, temperature=0)
             for name, path, backend in [("tflite", files["tflite"], None), ("onnx", files["onnx"], None),
                                         ("keras", tiny_checkpoint, "keras")]}
    assert texts["tflite"] == texts["onnx"] == texts["keras"]


def test_every_tflite_interpreter_gives_the_same_text(files):
    """ai-edge-litert and TensorFlow's own tf.lite interpreter (tflite-runtime: see carol-pi-check, carol-bench)."""
    texts = {backend: load(files["tflite"], backend=backend).generate("snow ", 100, temperature=0)
             for backend in ["litert", "tensorflow-lite"]}
    assert texts["litert"] == texts["tensorflow-lite"]


def test_unknown_prime_characters(files):
    generator = load(files["onnx"])
    with pytest.raises(CarolError, match="'#'"):
        generator.generate("snow#", 5)
    assert len(generator.generate("snow#", 5, temperature=0, unknown="drop")) == 5


def test_cli_streams_text_and_reports_speed(files):
    result = run_cli("carol-generate", "--model", files["tflite"], "--length", 50, "--seed", 4)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.rstrip("\n")) == 50
    assert "chars/s" in result.stderr and "seed 4" in result.stderr


def test_cli_json(files):
    result = run_cli("carol-generate", "--model", files["onnx"], "--length", 20, "--num-samples", 2, "--json")
    document = json.loads(result.stdout)
    assert len(document["texts"]) == 2 and document["backend"] == "onnxruntime"
    assert document["batch_mode"] == "batched" and isinstance(document["seed"], int)
    assert document["verdict"] == "accepted" and document["verdict_warning"] is None and result.stderr == ""


@pytest.mark.parametrize("parity, warning", [
    ({"verdict": "rejected", "reasons": ["top-1 agreement 0.9000 < 0.97"]},
     "was rejected by carol-export's parity gate (top-1 agreement 0.9000 < 0.97)"),
    (None, "carries no parity verdict"),
])
def test_cli_warns_once_about_a_file_without_an_accepted_verdict(files, tmp_path, parity, warning):
    from carolgen.export.api import Exporter
    document = {k: v for k, v in read_model_file(files["onnx"]).info.document.items() if k != "parity"}
    if parity:
        document["parity"] = parity
    path = tmp_path / "model-fp32.onnx.rejected"
    path.write_bytes(Exporter.sealed("onnx", files["onnx"].read_bytes(), document))
    result = run_cli("carol-generate", "--model", path, "--length", 10, "--json")
    assert result.returncode == 0, result.stderr
    assert warning in result.stderr and len(result.stderr.splitlines()) == 1
    assert json.loads(result.stdout)["verdict"] == (parity or {}).get("verdict")


def test_cli_continue_and_compare(files, tiny_lyrics, tmp_path):
    song = tiny_lyrics / "north-wind.txt"
    result = run_cli("carol-generate", "--model", files["onnx"], "--continue", song, "--compare", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "held-back half" in result.stdout and "similarity" in result.stdout


def test_cli_attention_picture(files, tmp_path):
    picture = tmp_path / "attention.png"
    result = run_cli("carol-generate", "--model", files["onnx"], "--length", 10, "--attention", picture)
    assert result.returncode == 0, result.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args", [["--temperature", "-1"], ["--top-p", "0"], ["--top-k", "-2"],
                                  ["--length", "-5"], ["--prime", "snow~"], ["--backend", "nope"],
                                  ["--threads", "0"], ["--model", "missing.tflite"]])
def test_cli_bad_input_one_line_exit_2(files, args):
    result = run_cli("carol-generate", "--model", files["tflite"], *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "error:" in result.stderr and "Traceback" not in result.stderr


def _damaged_versions(data, rng):
    yield bytes(rng.integers(0, 256, 4096, dtype=np.uint8))
    for cut in [9, 64, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1]:
        yield data[:cut]


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_any_changed_byte_fails_the_integrity_digest(files, kind, tmp_path):
    """One byte changed anywhere in a sealed file (here: in the graph, far from the metadata) is refused
    before an interpreter sees the file; a file without a digest needs --trust-file."""
    data = bytearray(files[kind].read_bytes())
    data[len(data) // 3] ^= 0x01
    path = tmp_path / f"flipped.{kind}"
    path.write_bytes(bytes(data))
    result = run_cli("carol-generate", "--model", path, "--length", 5)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "damaged" in result.stderr and "Traceback" not in result.stderr


def test_a_file_without_a_digest_runs_only_with_trust_file(files, tmp_path):
    from carolgen.export.formats import EXPORT_FORMATS
    from carolgen.runtime.metadata import dump_metadata
    document = {k: v for k, v in read_model_file(files["onnx"]).info.document.items() if k != "integrity"}
    path = tmp_path / "unsealed.onnx"
    path.write_bytes(EXPORT_FORMATS["onnx"].embed_metadata(files["onnx"].read_bytes(), dump_metadata(document)))
    refused = run_cli("carol-generate", "--model", path, "--length", 5)
    assert refused.returncode == 2 and "--trust-file" in refused.stderr, refused.stderr
    trusted = run_cli("carol-generate", "--model", path, "--length", 5, "--trust-file", "--quiet")
    assert trusted.returncode == 0 and len(trusted.stdout.rstrip("\n")) == 5, trusted.stderr


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_damaged_files_are_refused_before_any_interpreter(files, kind, tmp_path):
    data = files[kind].read_bytes()
    for i, damaged in enumerate(_damaged_versions(data, np.random.default_rng(0))):
        path = tmp_path / f"damaged-{i}.{kind}"
        path.write_bytes(damaged)
        result = run_cli("carol-generate", "--model", path, "--length", 5)
        assert result.returncode == 2, (i, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_file_without_carolgen_metadata(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(CarolError, match="no carolgen metadata"):
        read_model_file(path)


def test_the_readme_main_command_uses_the_bundled_model():
    """`carol-generate` with no --model, as the README's set-up runs it: the bundled model, default sampling."""
    result = run_cli("carol-generate", "--length", 80, "--seed", 1)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.rstrip("\n")) == 80 and "model-fp32" in result.stderr


def test_the_readme_python_example_runs_as_written():
    """Every ```python block of the README, run from the repository root as a user would paste it."""
    import re
    import subprocess
    import sys
    root = Path(__file__).resolve().parent.parent
    blocks = re.findall(r"```python\n(.*?)```", _readme(), re.S)
    assert blocks
    for block in blocks:
        result = subprocess.run([sys.executable, "-c", block], cwd=root, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr


def _readme():
    return (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_readme_generate_commands_run_as_written(tmp_path):
    """Every carol-generate command of the README that needs no training run before it, as written, from the
    repository root; whatever they write there (attention.png) is removed afterwards."""
    import shlex
    import subprocess
    root = Path(__file__).resolve().parent.parent
    commands = [line.strip() for line in _readme().splitlines() if line.startswith("    carol-generate ")]
    commands = [c.split("  #")[0] for c in commands if "runs/" not in c]
    assert len(commands) >= 4
    before = set(root.iterdir())
    try:
        for command in commands:
            result = subprocess.run(shlex.split(command), cwd=root, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, (command, result.stderr)
            assert "Traceback" not in result.stderr and "warning" not in result.stderr, (command, result.stderr)
    finally:
        for path in set(root.iterdir()) - before:
            path.unlink()


def test_the_readme_quoted_sample_is_what_the_command_prints():
    """The README's opening sample is regenerated by its own command (bundled model, seed 1)."""
    lines = _readme().splitlines()
    start = lines.index("    $ carol-generate --seed 1 --length 200 --quiet")
    quoted = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        quoted.append(line.strip())
    result = run_cli("carol-generate", "--seed", 1, "--length", 200, "--quiet")
    assert result.returncode == 0, result.stderr
    assert " ".join(result.stdout.split()) == " ".join(" ".join(quoted).split())


def test_api_strings_for_one_sample_lists_for_a_batch(files):
    generator = load(files["onnx"])
    text = generator.generate("snow ", 20, seed=3)
    assert isinstance(text, str) and len(text) == 20
    assert "".join(generator.stream("snow ", 20, seed=3)) == text
    batch = generator.generate_batch("snow ", 20, num_samples=2, seed=3)
    assert isinstance(batch, list) and len(batch) == 2 and all(isinstance(t, str) and len(t) == 20 for t in batch)


def test_cli_refuses_options_it_would_ignore(files):
    for args, words in [(["--compare"], "--continue"), (["--model", ""], "--model is empty")]:
        result = run_cli("carol-generate", *args)
        assert result.returncode == 2 and words in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_metadata_that_misstates_the_input_is_refused(files, kind, tmp_path):
    """An index-input file whose metadata claims the seed's float input (or another window), sealed again so
    that its digest matches (a crafted file): one line, exit 2, before any character is written, never a
    traceback from the interpreter."""
    from carolgen.export.api import Exporter
    document = read_model_file(files[kind]).info.document
    for i, change in enumerate([{"encoding": "index/vocab_size"}, {"window": 50}]):
        path = tmp_path / f"lying-{i}.{kind}"
        path.write_bytes(Exporter.sealed(kind, files[kind].read_bytes(), {**document, **change}))
        result = run_cli("carol-generate", "--model", path, "--length", 5)
        assert result.returncode == 2, result.stderr[-1500:]
        assert result.stderr.count("\n") == 1 and "input" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("encoding", [[], {"a": 1}, None, 3])
def test_metadata_encoding_of_the_wrong_type_is_one_line(encoding):
    from carolgen.runtime.metadata import parse_metadata
    text = json.dumps({"format": "carolgen", "format_version": 1, "vocab": " ab", "window": 4, "pad_char": " ",
                       "encoding": encoding})
    with pytest.raises(CarolError, match="encoding"):
        parse_metadata(text, "doc")


def test_attention_picture_crops_the_padding_and_scales_to_uniform():
    """An empty prime is all padding: the picture starts a few columns before the first character that matters,
    and weights are shown relative to uniform attention."""
    from carolgen.runtime.plots import MARGIN, attention_grid
    window, text = 20, " " * 20 + "snow"
    weights = [np.full(window, 1 / window)] * 4
    weights[2] = np.r_[np.full(window - 1, 0.5 / window), [0.5 + 0.5 / window]]
    grid, first = attention_grid(text, weights, window)
    assert grid.shape == (4, len(text)) and first == len(text) - len("snow") - MARGIN
    assert np.nanmax(grid[0]) == pytest.approx(1.0) and np.nanmax(grid[2]) > 10
