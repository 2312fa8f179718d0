"""The layering rules: the runtime and the package root import no training-side package."""
import subprocess
import sys

import pytest

HEAVY = ["tensorflow", "keras", "tf_keras", "tf2onnx", "onnx"]


@pytest.mark.parametrize("module", ["carolgen", "carolgen.runtime", "carolgen.runtime.cli",
                                    "carolgen.runtime.generate", "carolgen.runtime.backends"])
def test_light_imports(module):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_runtime_generation_imports_no_tensorflow(tiny_exports):
    folder, _ = tiny_exports
    code = ("import sys; from carolgen.runtime.generate import load; "
            f"g = load({str(folder / 'model-fp32.onnx')!r}); g.generate('the ', 20, temperature=0); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
