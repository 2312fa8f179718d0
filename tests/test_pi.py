"""The emulated Raspberry Pi check: the reduced CI set for real (qemu-user; 64-bit Pi OS with PyPI's aarch64
wheels, 32-bit Pi OS with Debian's numpy and tflite-runtime's armv7l wheel, a Pi Zero's ARMv6 core with numpy
alone), and its refusals. The full matrix is benchmarks/results/PI.md (carol-pi-check --out benchmarks/results)."""
import json
import shutil

import pytest
from conftest import run_cli

from carolgen.bench import emulator
from carolgen.runtime.errors import CarolError


def test_reduced_check_on_emulated_pis(tmp_path):
    """On a Pi 4 core ai-edge-litert and onnxruntime run a windowed and a step file as on x86-64; on 32-bit Pi OS
    tflite-runtime's armv7l wheel runs the fp32 file, and the windowed int8 file, which it crashes on there, is
    refused cleanly, as carol-export's table says; on a Pi Zero's ARMv6 core, with numpy alone (pip finds no
    tflite-runtime there), the numpy backend runs a step file."""
    result = run_cli("carol-pi-check", "--reduced", "--cpu", "cortex-a72", "--cpu", "cortex-a7", "--cpu", "arm1176",
                     "--out", tmp_path, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "pi.json").read_text())
    statuses = {(r["file"], r["runtime"], r["cpu"]): r["status"] for r in report["results"]}
    assert statuses == {("model-fp32.tflite", "litert", "cortex-a72"): "ok",
                        ("model-fp32.onnx", "onnxruntime", "cortex-a72"): "ok",
                        ("model-fp32-step.tflite", "litert", "cortex-a72"): "ok",
                        ("model-fp32.tflite", "tflite-runtime", "cortex-a7"): "ok",
                        ("model-int8.tflite", "tflite-runtime", "cortex-a7"): "refused",
                        ("model-fp32-step.tflite", "numpy", "arm1176"): "ok"}
    int8 = next(r for r in report["results"] if r["file"] == "model-int8.tflite")
    assert "crash" in int8["note"] and int8["claim"].startswith("no")
    zero = report["facts"]["targets"]["armv6"]["environments"]["pi-zero"]
    assert "No matching distribution" in zero["unzipped"]["tflite_runtime"]
    assert "arm1176" in (tmp_path / "PI.md").read_text()


def test_unreachable_mirror_leaves_nothing_half_built(tmp_path):
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get (Debian/Ubuntu)")
    with pytest.raises(CarolError, match="apt-get update"):
        emulator.build_rootfs(tmp_path, mirror="http://127.0.0.1:9/debian", security="http://127.0.0.1:9/debian-security")
    assert list(tmp_path.iterdir()) == []


def test_not_enough_disk_is_refused(tmp_path):
    with pytest.raises(CarolError, match="not enough disk"):
        emulator.check_disk(tmp_path, need_mb=10**12)


def test_the_runtime_refuses_what_the_committed_matrix_found():
    """runtime/compat.py (what carolgen's runtime refuses, and the export table's runtimes column with it) says
    what the committed PI.md matrix found: tflite-runtime's Arm builds crash on the windowed int8 file, not on
    the int8 step file, and tflite-runtime has no ARMv6 build."""
    from pathlib import Path

    from carolgen.export.audit import audit_tflite
    from carolgen.runtime.compat import MACHINE_REFUSALS, refusal
    committed = json.loads((Path(__file__).parent.parent / "benchmarks/results/pi.json").read_text())["results"]
    machines = {"cortex-a72": "aarch64", "cortex-a76": "aarch64", "cortex-a7": "armv7l"}

    def tflite_runtime(name):
        return [r for r in committed if r["file"] == name and r["runtime"] == "tflite-runtime"
                and r["cpu"] in machines]
    windowed, step = tflite_runtime("model-int8.tflite"), tflite_runtime("model-int8-step.tflite")
    assert {r["cpu"] for r in windowed} == set(machines)
    assert {r["status"] for r in windowed if r["kernels"] == "optimised"} == {"crash"}
    assert {r["status"] for r in windowed if r["kernels"] == "auto"} == {"refused"}
    assert {r["status"] for r in step} == {"ok"}
    for machine in set(machines.values()):
        assert refusal("tflite-runtime", machine, "int8", "window") and not refusal("tflite-runtime", machine, "int8",
                                                                                     "step")
        claims = audit_tflite([("FULLY_CONNECTED", 9)], "int8", "window").runtimes
        assert claims[f"tflite-runtime 2.14 {machine}"].startswith("no")
    assert ("tflite-runtime", "armv6l") in MACHINE_REFUSALS
    zero = [r for r in committed if r["cpu"] == "arm1176"]
    assert {r["status"] for r in zero if r["runtime"] == "numpy"} == {"ok"}
    assert {r["status"] for r in zero if r["runtime"] == "tflite-runtime" and r["kernels"] == "auto"} == {"refused"}
