"""Parity of the bundled model's files with Keras, quantised files against the gate, and carol-bench --quick."""
import csv
import json
import math

import pytest

import carolgen
from carolgen.keras_backend import register_keras
from carolgen.runtime.generate import load

register_keras()

FILES = {"tflite": carolgen.MODELS_DIR / "model-fp32.tflite", "onnx": carolgen.MODELS_DIR / "model-fp32.onnx"}
PRIMES = ["", "snow falls soft on the ", "bells across the valley", "the kings are riding "]


@pytest.fixture(scope="module")
def keras_generator():
    return load(carolgen.DEFAULT_CHECKPOINT, backend="keras")


@pytest.fixture(scope="module")
def bundled_reference(keras_generator):
    from carolgen.export.parity import WindowGate
    from carolgen.export.windows import parity_set
    return WindowGate(keras_generator.backend, parity_set(keras_generator.backend.info))


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_bundled_fp32_files_match_keras(kind, bundled_reference):
    parity = bundled_reference.parity(load(FILES[kind]).backend)
    assert parity.max_abs_dp <= 1e-5
    assert parity.greedy == [200] * len(bundled_reference.primes)


def test_greedy_200_identical_on_tflite_onnx_and_keras(keras_generator):
    for prime in PRIMES:
        expected = keras_generator.generate(prime, 200, temperature=0)
        assert load(FILES["tflite"]).generate(prime, 200, temperature=0) == expected
        assert load(FILES["onnx"]).generate(prime, 200, temperature=0) == expected


def test_sampler_draws_identically_whatever_the_backend(keras_generator):
    options = dict(temperature=1.0, top_k=10, top_p=0.95, seed=2026)
    expected = keras_generator.generate("the star ", 200, **options)
    assert load(FILES["tflite"]).generate("the star ", 200, **options) == expected
    assert load(FILES["onnx"]).generate("the star ", 200, **options) == expected


def test_quantised_files_of_the_bundled_model_pass_the_gate(tmp_path, bundled_reference):
    """Every quantised mode of the default model must still meet the thresholds the export gate enforces."""
    from carolgen.export import export
    from carolgen.export.modes import MODES
    from carolgen.export.parity import failures
    rows = export(None, ["tflite", "onnx"], ["fp16", "dynamic", "int8"], out=tmp_path)
    for row in rows:
        assert row.status == "accepted", (row.file, row.reason)
        parity = bundled_reference.parity(load(tmp_path / row.file).backend)
        assert failures(parity, MODES[row.mode].limits) == [], row.file


def test_bench_quick_writes_all_outputs(tmp_path, tiny_checkpoint):
    from conftest import run_cli
    out = tmp_path / "bench"
    result = run_cli("carol-bench", "--quick", "--model", tiny_checkpoint, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ["REPORT.md", "report.json", "report.csv", "latency.png", "size_fidelity.png"]:
        assert (out / name).stat().st_size > 0
    report = json.loads((out / "report.json").read_text())
    measured = [r for r in report["rows"] if r["p50_us"] is not None]
    assert len(measured) >= 10
    for row in measured:
        assert all(math.isfinite(row[k]) and row[k] > 0 for k in ("p50_us", "p90_us", "chars_per_s", "peak_rss_mb"))
    files = [r for r in measured if r["max_abs_dp"] is not None]
    assert files and all(math.isfinite(r["max_abs_dp"]) and math.isfinite(r["perplexity"]) for r in files)
    with open(out / "report.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(report["rows"])
    assert "## Speed targets" in (out / "REPORT.md").read_text()
    steps = [r for r in measured if r["key"][1] == "step"]
    assert {r["key"][2] for r in steps} == {"tflite", "onnx"} and all(r["max_abs_dp"] <= 1e-5 for r in steps)
    pairs = {p["runtime"]: p for p in report["generation"]}
    assert {"litert", "onnxruntime"} <= set(pairs) and all(min(p["greedy_chars_per_s"]) > 0 for p in pairs.values())
    assert all(0 < us < 1000 for graph in report["loop_overhead_us"].values() for us in graph.values())
    assert "## Step files against windowed files" in (out / "REPORT.md").read_text()
