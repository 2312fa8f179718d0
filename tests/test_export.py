"""carol-export through the real converters and interpreters, on a tiny trained model."""
import json
import math

import numpy as np
import pytest
from conftest import run_cli

from carolgen.runtime.atomic import atomic_path
from carolgen.runtime.modelfile import read_model_file


@pytest.fixture(scope="module")
def every_mode(tmp_path_factory, tiny_checkpoint, tiny_lyrics):
    from carolgen.export import MODES, export
    out = tmp_path_factory.mktemp("every-mode")
    return out, export(tiny_checkpoint, ["tflite", "onnx"], MODES, out=out, calibration_lyrics=str(tiny_lyrics))


def test_every_mode_is_exported_or_explained(every_mode):
    out, rows = every_mode
    assert len(rows) == 10
    for row in rows:
        if row.status == "unsupported":
            assert (row.format, row.mode) == ("onnx", "dynamic-compat") and row.reason
            continue
        assert row.status in ("accepted", "rejected"), (row.file, row.reason)
        assert (out / row.file).is_file() and row.size == (out / row.file).stat().st_size
        assert all(math.isfinite(row.parity[k]) for k in ("max_abs_dp", "top1", "mean_kl"))
        assert len(row.parity["greedy"]) == 5
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


def test_parity_gate_rejects_a_perturbed_file(tmp_path, tiny_checkpoint, every_mode):
    """A file whose output layer was nudged must fail the gate and never keep its final name."""
    import onnx
    from onnx import numpy_helper

    from carolgen.checkpoint import load_checkpoint
    from carolgen.export.api import Exporter, Options, Row
    from carolgen.export.audit import audit_onnx
    out = every_mode[0]
    proto = onnx.load(out / "model-fp32.onnx")
    bias = max(proto.graph.initializer, key=lambda t: t.dims == [read_model_file(tiny_checkpoint).info.vocab.size])
    values = numpy_helper.to_array(bias).copy()
    values[0] += 0.5
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    target = tmp_path / "model-fp32.onnx"
    target.write_bytes(b"an older accepted file")
    model, info = load_checkpoint(tiny_checkpoint)
    exporter = Exporter(Options(tiny_checkpoint, out=tmp_path), model, info, tmp_path)
    row = Row("model-fp32.onnx", "onnx", "fp32", "accepted")
    exporter.publish(row, proto.SerializeToString(), audit_onnx(["LSTM"], "fp32"))
    assert row.status == "rejected" and "max |dp|" in row.reason
    assert not target.exists() and (tmp_path / "model-fp32.onnx.rejected").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


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
