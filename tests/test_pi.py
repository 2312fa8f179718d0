"""The emulated Raspberry Pi check: the reduced CI set for real (qemu-user, arm64 wheels from PyPI), and
its refusals. The full matrix is benchmarks/results/PI.md (carol-pi-check --out benchmarks/results)."""
import json
import shutil

import pytest
from conftest import run_cli

from carolgen.bench import emulator
from carolgen.runtime.errors import CarolError


def test_reduced_check_on_an_emulated_pi(tmp_path):
    """A file per runtime and a step file on a Pi 4 core load and match x86-64; the int8 file, which tflite-runtime 2.14
    computes wrongly or crashes on there, is refused cleanly, as carol-export's table says."""
    result = run_cli("carol-pi-check", "--reduced", "--cpu", "cortex-a72", "--out", tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "pi.json").read_text())
    statuses = {(r["file"], r["runtime"]): r["status"] for r in report["results"]}
    assert statuses == {("model-fp32.tflite", "litert"): "ok", ("model-dynamic-compat.tflite", "tflite-runtime"): "ok",
                        ("model-int8.tflite", "tflite-runtime"): "refused", ("model-fp32.onnx", "onnxruntime"): "ok",
                        ("model-fp32-step.tflite", "litert"): "ok"}
    int8 = next(r for r in report["results"] if r["file"] == "model-int8.tflite")
    assert "64-bit Arm" in int8["note"] and int8["claim"].startswith("no")
    assert "cortex-a72" in (tmp_path / "PI.md").read_text()


def test_unreachable_mirror_leaves_nothing_half_built(tmp_path):
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get (Debian/Ubuntu)")
    with pytest.raises(CarolError, match="apt-get update"):
        emulator.build_rootfs(tmp_path, mirror="http://127.0.0.1:9/debian", security="http://127.0.0.1:9/debian-security")
    assert list(tmp_path.iterdir()) == []


def test_not_enough_disk_is_refused(tmp_path):
    with pytest.raises(CarolError, match="not enough disk"):
        emulator.check_disk(tmp_path, need_mb=10**12)


def test_export_table_carries_the_pi_findings():
    """The exporter's compatibility column says what the committed PI.md matrix found."""
    from pathlib import Path

    from carolgen.export.audit import TFLITE_RUNTIME_214_AARCH64
    committed = json.loads((Path(__file__).parent.parent / "benchmarks/results/pi.json").read_text())["results"]
    int8 = [r for r in committed if r["file"] == "model-int8.tflite" and r["runtime"] == "tflite-runtime"]
    assert {r["status"] for r in int8 if r["kernels"] == "optimised"} == {"crash"}
    assert {r["status"] for r in int8 if r["kernels"] == "reference"} == {"mismatch"}
    assert {r["status"] for r in int8 if r["kernels"] == "auto"} == {"refused"}
    assert TFLITE_RUNTIME_214_AARCH64["int8"].startswith("no") and "refuses" in TFLITE_RUNTIME_214_AARCH64["int8"]
