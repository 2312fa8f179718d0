"""The layering rules: imports flow one way, runtime <- carolgen <- export <- benchmarks, and the runtime
and the package root import no training-side package."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["tensorflow", "keras", "tf_keras", "tf2onnx", "onnx"]
# Folder -> (its dotted package, its layer). A module may import its own layer and the layers below.
FOLDERS = {"runtime": ("carolgen.runtime", 0), "lyrics": ("carolgen.lyrics", 1), "carolgen": ("carolgen", 1),
           "export": ("carolgen.export", 2), "benchmarks": ("carolgen.bench", 3)}
LAYER_NAMES = {0: "runtime", 1: "carolgen", 2: "export", 3: "benchmarks"}
MODULE_STRING = re.compile(r"^carolgen(\.[A-Za-z_]\w*)+(:\w+)?$")
SUBPACKAGE_FOLDERS = {"runtime": "runtime", "export": "export", "bench": "benchmarks", "lyrics": "lyrics"}


def layer_of(module):
    """The layer of a dotted carolgen module name (None for anything outside carolgen)."""
    if module != "carolgen" and not module.startswith("carolgen."):
        return None
    sub = module.split(".")[1] if "." in module else ""
    return {"runtime": 0, "export": 2, "bench": 3}.get(sub, 1)


def module_exists(module):
    """True when a dotted carolgen name is a module or package of this tree (so a string names a module)."""
    parts = module.split(".")[1:]
    folder = SUBPACKAGE_FOLDERS.get(parts[0])
    relative = [folder, *parts[1:]] if folder else ["carolgen", *parts]
    path = ROOT.joinpath(*relative)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path, package):
    """Every carolgen module a file names: import statements (lazy ones included, relative ones resolved)
    and strings that look like module names (importlib.import_module, entry points)."""
    tree = ast.parse(path.read_text(), str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.match(node.value):
            if module_exists(node.value.split(":")[0]):
                names.append(node.value.split(":")[0])
    return names


def upward_edges():
    edges = []
    for folder, (package, layer) in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in imported_modules(path, package):
                target = layer_of(module)
                if target is not None and target > layer:
                    edges.append(f"{path.relative_to(ROOT)} ({LAYER_NAMES[layer]}) imports {module} "
                                 f"({LAYER_NAMES[target]})")
    return edges


def test_imports_flow_one_way():
    assert upward_edges() == []


def test_the_walker_sees_lazy_imports_and_importlib_strings(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from carolgen.export import api\n    import_module('carolgen.keras_backend')\n"
                     "from .. import train\n")
    names = imported_modules(probe, "carolgen.runtime")
    assert {"carolgen.export", "carolgen.keras_backend", "carolgen.train"} <= set(names)
    assert [layer_of(n) for n in ("carolgen.export", "carolgen.keras_backend", "carolgen.runtime.cli")] == [2, 1, 0]


@pytest.mark.parametrize("module", ["carolgen", "carolgen.runtime", "carolgen.runtime.cli", "carolgen.generate",
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


def test_no_module_over_300_lines():
    long = [f"{p.relative_to(ROOT)}: {n}" for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300]
    assert long == []


def test_lint_is_clean():
    """ruff, with the configuration committed in pyproject.toml (installed by the dev extra)."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
