"""Step files: exported through the real converters, gated exactly and for drift, run by the real interpreters."""
import json
import tracemalloc

import numpy as np
import pytest
from conftest import STEP_MODES, run_cli

from carolgen.runtime.errors import CarolError
from carolgen.runtime.generate import Generator, load, probs_of_windows
from carolgen.runtime.modelfile import read_model_file


def step_file(folder, rows, name):
    """The path of an exported file, whatever its verdict (the tiny model may drift past the limits)."""
    return folder / rows[name].file


@pytest.mark.parametrize("name", ["model-fp32-step.tflite", "model-fp32-step.onnx"])
def test_fp32_step_files_match_the_keras_step_model_exactly(step_exports, name):
    folder, rows = step_exports
    row = rows[name]
    assert row.graph == "step" and "one step" in row.lstm_as
    assert row.parity["max_abs_dp"] <= 1e-5 and min(row.parity["greedy"]) == 200, row.parity
    assert {"top1", "mean_kl", "perplexity_increase"} <= set(row.parity["drift"])
    info = read_model_file(step_file(folder, rows, name), trust=True).info
    assert info.graph == "step" and info.section("parity")["drift"]["limits"]["max_mean_kl"] == pytest.approx(0.005)


def test_every_step_mode_is_written_and_audited(step_exports):
    _, rows = step_exports
    for mode in STEP_MODES:
        for suffix in (".tflite", ".onnx"):
            row = rows[f"model-{mode}-step{suffix}"]
            assert row.status in ("accepted", "rejected"), (row.file, row.reason)
            assert not any(op.startswith(("WHILE", "Loop", "Scan", "Flex")) for op in row.operators)
    assert "calibration" in read_model_file(step_file(*step_exports, "model-int8-step.onnx"), trust=True).info.section(
        "export") and rows["model-int8-step.onnx"].parity["drift"]["windows"] > 0


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_a_step_file_fed_a_window_gives_the_windowed_files_probabilities(step_exports, tiny_exports, suffix):
    """From a zero state, after the characters of a window, the step file computes what the windowed file does."""
    folder, rows = step_exports
    from carolgen.export.windows import parity_set
    step = load(step_file(folder, rows, f"model-fp32-step{suffix}"), trust=True).backend
    window = load(tiny_exports[0] / f"model-fp32{suffix}").backend
    windows = parity_set(window.info, count=40)[0]
    assert np.abs(probs_of_windows(step, windows) - probs_of_windows(window, windows)).max() <= 1e-5


def test_step_files_generate_the_same_text_in_both_formats_batched_and_looped(step_exports):
    folder, rows = step_exports
    tflite = load(step_file(folder, rows, "model-fp32-step.tflite"), trust=True)
    onnx = load(step_file(folder, rows, "model-fp32-step.onnx"), trust=True)
    texts = onnx.generate_batch("snow ", 120, num_samples=3, temperature=0)
    assert onnx.timing.batch_mode == "batched" and len(set(texts)) == 1
    assert tflite.generate_batch("snow ", 120, num_samples=3, temperature=0) == texts
    assert tflite.timing.batch_mode == "looped"
    assert tflite.generate("snow ", 120, temperature=0.8, seed=4) == onnx.generate("snow ", 120, temperature=0.8,
                                                                                   seed=4)


def test_the_drift_limits_gate_a_step_file(tmp_path, tiny_checkpoint):
    from carolgen.export import export
    rows = export(tiny_checkpoint, ["onnx"], ["fp32"], out=tmp_path, graphs=["step"],
                  thresholds={"drift": {"min_top1": 1.01}})
    assert rows[0].status == "rejected" and "drift: top-1 agreement" in rows[0].reason, rows[0].reason
    assert rows[0].file == "model-fp32-step.onnx.rejected"


def test_a_step_file_whose_metadata_lies_about_the_window_is_refused(tmp_path, step_exports):
    """The state the graph takes must have window + 1 rows: a file claiming another window is mislabelled."""
    from carolgen.export.api import Exporter
    folder, rows = step_exports
    path = step_file(folder, rows, "model-fp32-step.onnx")
    info = read_model_file(path).info
    document = {**info.document, "window": info.window + 1}
    document.pop("integrity")
    liar = tmp_path / "liar-step.onnx"
    liar.write_bytes(Exporter.sealed("onnx", path.read_bytes(), document))
    with pytest.raises(CarolError, match="damaged or mislabelled"):
        load(liar)


def test_cli_exports_both_graphs_and_generates_from_a_step_file(tmp_path, tiny_checkpoint):
    result = run_cli("carol-export", "--model", tiny_checkpoint, "--format", "onnx", "--graph", "both",
                     "--output", tmp_path, "--json", "--gate", "drift.min_top1=0", "--gate", "drift.max_mean_kl=1",
                     "--gate", "drift.max_ppl_increase=1")
    assert result.returncode == 0, result.stderr
    assert [r["file"] for r in json.loads(result.stdout)] == ["model-fp32.onnx", "model-fp32-step.onnx"]
    generated = run_cli("carol-generate", "--model", tmp_path / "model-fp32-step.onnx", "--length", "40", "--seed", "1",
                        "--quiet")
    assert generated.returncode == 0 and len(generated.stdout.strip()) >= 30, generated.stderr


@pytest.mark.parametrize("graph", ["window", "step"])
def test_generation_memory_does_not_grow_with_length(graph):
    """Streaming 50,000 characters allocates no more than streaming 2,000 (no array of window + length)."""
    from carolgen.bench.loop_overhead import FixedBackend
    info = read_model_file(__import__("carolgen").MODELS_DIR / "model-fp32.onnx").info
    generator = Generator(FixedBackend(info, graph, np.full((3, info.vocab.size), 1 / info.vocab.size)))

    def peak(length):
        tracemalloc.start()
        for _ in generator.stream("", length, temperature=0.7, seed=1):
            pass
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size
    assert peak(50_000) < peak(2_000) + 64 * 1024
