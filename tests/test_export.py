"""carol-export through the real converters and interpreters, on a tiny trained model."""
import json
import math
import os

import numpy as np
import pytest
from conftest import run_cli

from carolgen.runtime.atomic import atomic_path
from carolgen.runtime.modelfile import read_model_file


def test_every_mode_is_exported_or_explained(every_mode):
    out, rows = every_mode
    assert len(rows) == 10
    for row in rows:
        if row.status == "unsupported":
            assert (row.format, row.mode) == ("onnx", "dynamic-compat") and row.reason
            continue
        assert row.status in ("accepted", "rejected"), (row.file, row.reason)
        assert (out / row.file).is_file() and row.size == (out / row.file).stat().st_size
        assert all(math.isfinite(row.parity[k]) for k in ("max_abs_dp", "top1", "mean_kl", "perplexity_increase"))
        assert row.parity["mean_kl"] >= 0 and len(row.parity["greedy"]) == 5
        card = read_model_file(out / row.file).info.document["parity"]
        assert card["verdict"] == row.status and card["windows"] == row.parity["windows"]
        assert card["reference"]["sha256"] and card["limits"]["min_top1"] > 0
    assert {r.file for r in rows if r.mode == "fp32"} == {"model-fp32.tflite", "model-fp32.onnx"}


def test_fp32_files_match_keras(every_mode):
    for row in every_mode[1]:
        if row.mode == "fp32":
            assert row.status == "accepted" and row.parity["max_abs_dp"] <= 1e-5
            assert row.parity["greedy"] == [200] * 5


def test_seed_architecture_exports_and_passes_the_gate(tmp_path, tiny_seed_checkpoint, tiny_lyrics):
    from carolgen.export import export
    rows = export(tiny_seed_checkpoint, ["tflite", "onnx"], ["fp32"], out=tmp_path, calibration_lyrics=str(tiny_lyrics))
    assert [r.status for r in rows] == ["accepted", "accepted"], [r.reason for r in rows]
    assert read_model_file(tmp_path / "model-fp32.onnx").info.encoding.name == "index/vocab_size"


def test_embedding_becomes_gather(every_mode):
    rows = {(r.format, r.mode): r for r in every_mode[1]}
    assert any(op.startswith("GATHER") for op in rows[("tflite", "fp32")].operators)
    assert "Gather" in rows[("onnx", "fp32")].operators
    assert read_model_file(every_mode[0] / "model-fp32.tflite").info.encoding.name == "index"


def test_no_loops_and_native_lstm_in_onnx(every_mode):
    for row in every_mode[1]:
        assert not any(op.startswith(("WHILE", "Loop", "Scan", "Flex")) for op in row.operators)
    fp32_onnx = next(r for r in every_mode[1] if r.file == "model-fp32.onnx")
    assert "LSTM" in fp32_onnx.operators and fp32_onnx.lstm_as == "LSTM"


def test_int8_metadata_records_calibration(every_mode):
    out, rows = every_mode
    row = next(r for r in rows if r.format == "tflite" and r.mode == "int8")
    export = read_model_file(out / row.file).info.document["export"]
    assert export["quantization"] == "int8"
    assert export["calibration"]["windows"] >= 300 and export["calibration"]["seed"] == 0


def test_compatibility_column_flags_the_new_fully_connected(every_mode):
    rows = {(r.format, r.mode): r for r in every_mode[1]}
    assert rows[("tflite", "dynamic")].runtimes["tflite-runtime 2.14"].startswith("no: FULLY_CONNECTED v12")
    assert rows[("tflite", "dynamic-compat")].runtimes["tflite-runtime 2.14"] == "yes"


def test_audit_refuses_a_graph_with_a_loop():
    """Keras 3's own LSTM at batch 1 converts to a WHILE loop: the audit must refuse it."""
    import tensorflow as tf

    from carolgen.export.audit import audit_tflite
    from carolgen.export.tflite import operator_names
    from carolgen.model import ModelConfig, build_model
    from carolgen.runtime.flatbuffer import TfliteReader
    model = build_model(ModelConfig.for_architecture("seed", vocab_size=5, window=8), batch_size=1)
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    audit = audit_tflite(operator_names(TfliteReader(data, "loop").operators()))
    assert not audit.passed and "WHILE" in audit.breaches and audit.lstm_as == "WHILE loop"


def _output_bias_changed(path, vocab_size, change):
    """The ONNX file's bytes with its output bias changed by change(values) in place."""
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(path)
    bias = next(t for t in proto.graph.initializer if list(t.dims) == [vocab_size])
    values = numpy_helper.to_array(bias).copy()
    change(values)
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    return proto.SerializeToString()


def _publish(checkpoint, out, data, fmt="onnx", mode="fp32"):
    """Run the export's gate-and-publish step on `data` as the file of (fmt, mode); returns the row."""
    from carolgen.checkpoint import load_checkpoint
    from carolgen.export.api import Exporter, Options, Row, file_name
    from carolgen.export.audit import Audit
    model, info = load_checkpoint(checkpoint)
    exporter = Exporter(Options(checkpoint, out=out), model, info, out)
    row = Row(file_name(checkpoint.stem, fmt, mode), fmt, mode, "accepted")
    exporter.publish(row, data, Audit([], ""), exporter._metadata(fmt, mode, "window", None))
    return row


@pytest.mark.parametrize("change, reason", [
    (lambda values: values.__setitem__(0, values[0] + 0.5), "max |dp|"),
    (lambda values: values.__setitem__(1, np.nan), "not finite"),
])
def test_parity_gate_rejects_a_perturbed_or_nan_file(tmp_path, tiny_checkpoint, every_mode, change, reason):
    """A file whose output layer was nudged, or holds one NaN weight, fails the gate; the accepted file of the
    final name is left as it was, and the rejected file says so in its metadata."""
    vocab_size = read_model_file(tiny_checkpoint).info.vocab.size
    data = _output_bias_changed(every_mode[0] / "model-fp32.onnx", vocab_size, change)
    target = tmp_path / "model-fp32.onnx"
    target.write_bytes(b"an accepted file from another run")
    row = _publish(tiny_checkpoint, tmp_path, data)
    assert row.status == "rejected" and reason in row.reason, row.reason
    assert target.read_bytes() == b"an accepted file from another run"
    card = read_model_file(tmp_path / "model-fp32.onnx.rejected").info.document["parity"]
    assert card["verdict"] == "rejected" and any(reason in r for r in card["reasons"])
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_parity_gate_rejects_an_int8_softmax_output(tmp_path):
    """Plain full-int8 conversion (softmax output in int8: probabilities in steps of 1/256) of the bundled
    model: real next characters get probability 0 and perplexity rises, so the gate must refuse it."""
    import tensorflow as tf

    import carolgen
    from carolgen.checkpoint import load_checkpoint
    from carolgen.export.tflite import embed_metadata
    from carolgen.export.twin import make_twin
    from carolgen.export.windows import calibration_windows
    from carolgen.runtime.metadata import METADATA_KEY, dump_metadata
    model, info = load_checkpoint(carolgen.DEFAULT_CHECKPOINT)
    converter = tf.lite.TFLiteConverter.from_keras_model(make_twin(model, info, batch_size=1))
    windows, _ = calibration_windows(info, count=300)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([windows[i:i + 1]] for i in range(len(windows)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.float32
    data = embed_metadata(converter.convert(), METADATA_KEY, dump_metadata(info.document))
    row = _publish(carolgen.DEFAULT_CHECKPOINT, tmp_path, data, fmt="tflite", mode="int8")
    assert row.status == "rejected" and "real next characters given < 1e-06" in row.reason, row.reason


def test_cli_exits_1_and_renames_when_the_gate_fails(tmp_path, tiny_checkpoint):
    result = run_cli("carol-export", "--model", tiny_checkpoint, "--quantize", "fp16", "--gate", "fp16.max_abs_dp=1e-9",
                     "--output", tmp_path, "--json")
    assert result.returncode == 1, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0]["status"] == "rejected" and rows[0]["file"] == "model-fp16.tflite.rejected"
    assert not (tmp_path / "model-fp16.tflite").exists()


def test_cli_table(tmp_path, tiny_checkpoint):
    result = run_cli("carol-export", "--model", tiny_checkpoint, "--format", "onnx", "--output", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| model-fp32.onnx |" in result.stdout and "✅ accepted" in result.stdout


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo"])
def test_atomic_writes_replace_only_regular_files(tmp_path, kind):
    from carolgen.runtime.errors import CarolError
    target, elsewhere = tmp_path / "model.tflite", tmp_path / "elsewhere"
    elsewhere.write_bytes(b"keep")
    {"symlink": lambda: target.symlink_to(elsewhere), "directory": target.mkdir,
     "fifo": lambda: os.mkfifo(target)}[kind]()
    with pytest.raises(CarolError, match="not a regular file"):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"new")
    assert elsewhere.read_bytes() == b"keep"
    assert target.is_symlink() if kind == "symlink" else not target.is_file()


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("case", ["missing", "corrupt", "format", "mode", "calibration", "unwritable", "opset",
                                  "gate"])
def test_cli_bad_input_one_line_exit_2(tmp_path, tiny_checkpoint, case):
    args = {"missing": ["--model", tmp_path / "nope.keras"],
            "corrupt": ["--model", tmp_path / "corrupt.keras"],
            "format": ["--model", tiny_checkpoint, "--format", "coreml"],
            "mode": ["--model", tiny_checkpoint, "--quantize", "int4"],
            "calibration": ["--model", tiny_checkpoint, "--quantize", "int8", "--calibration-lyrics", tmp_path / "no"],
            "unwritable": ["--model", tiny_checkpoint, "--output", tmp_path / "a-file" / "sub"],
            "opset": ["--model", tiny_checkpoint, "--opset", "3"],
            "gate": ["--model", tiny_checkpoint, "--gate", "fp32.max_abs_dp=lots"]}[case]
    (tmp_path / "corrupt.keras").write_bytes(b"PK\x03\x04" + bytes(np.random.default_rng(0).integers(0, 255, 500)))
    (tmp_path / "a-file").write_text("not a folder")
    result = run_cli("carol-export", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "error:" in result.stderr and "Traceback" not in result.stderr


def test_every_mode_has_a_recipe_or_a_reason_in_every_format():
    """A mode added to the table without a recipe in a format module (or a reason it cannot exist) fails here."""
    from carolgen.export.formats import EXPORT_FORMATS
    from carolgen.export.modes import MODES
    for fmt, row in EXPORT_FORMATS.items():
        recipes = row.module.RECIPES
        for name, mode in MODES.items():
            assert (name in recipes) != (fmt in mode.unsupported), (fmt, name)
