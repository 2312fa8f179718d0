"""LiteRT's own benchmark tool (shipped in the ai-edge-litert wheel), as a cross-check of carol-bench's timing."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TOOL_TIMEOUT_S = 600


def litert_benchmark_tool(model, runs):
    """(median latency in µs, note) from LiteRT's benchmark tool, or (None, why not).

    The tool feeds random inputs; for integer inputs it draws from [-128, 127] with no way to set a range,
    which are not valid character indices for an embedding model's GATHER, so such files are not run."""
    from carolgen.runtime.modelfile import read_model_file
    if np.dtype(read_model_file(model).info.encoding.dtype).kind != "f":
        return None, ("not run: the tool fills integer inputs with random values in [-128, 127], not valid "
                      "character indices for this file's GATHER")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        try:
            subprocess.run([sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", f"--model={model}",
                            f"--num_runs={runs}", "--warmup_runs=50", "--num_threads=1", f"--result_json={out}"],
                           capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=True)
            result = json.loads(out.read_text())
        except (subprocess.SubprocessError, OSError, ValueError) as error:
            return None, f"LiteRT's benchmark tool did not run: {str(error).splitlines()[0][:120]}"
    median_ms = result.get("latency", {}).get("median_ms")
    return (median_ms * 1000, "") if median_ms is not None else (None, "no latency.median_ms in the tool's JSON")
