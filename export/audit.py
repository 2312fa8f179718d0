"""The op audit: what the LSTM became, whether the graph has a loop or Flex op, and who can load it."""
from dataclasses import dataclass, field

from carolgen.runtime.compat import REFUSALS, TFLITE_RUNTIME_214

FORBIDDEN = {"tflite": {"WHILE"}, "onnx": {"Loop", "Scan"}}

# The machines whose tflite-runtime 2.14 build the audit speaks for: runtimes column -> platform.machine().
# On each, the file loads when its op versions are known (runtime/compat.py) and carol-pi-check found no fault.
TFLITE_RUNTIME_MACHINES = {"tflite-runtime 2.14": "x86_64", "tflite-runtime 2.14 aarch64": "aarch64",
                           "tflite-runtime 2.14 armv7l": "armv7l"}


@dataclass
class Audit:
    operators: list
    lstm_as: str
    breaches: list = field(default_factory=list)
    runtimes: dict = field(default_factory=dict)

    @property
    def passed(self):
        return not self.breaches


def audit_tflite(named_operators, mode=None, graph="window"):
    """Audit [(op name, version)] of a TFLite file of `graph` exported in `mode`."""
    names = sorted({name for name, _ in named_operators})
    breaches = [n for n in names if n in FORBIDDEN["tflite"] or n.startswith("Flex")]
    if graph == "step":
        lstm_as = "one step (FULLY_CONNECTED, LOGISTIC, TANH)"
    elif "UNIDIRECTIONAL_SEQUENCE_LSTM" in names:
        lstm_as = "UNIDIRECTIONAL_SEQUENCE_LSTM"
    elif "WHILE" in names:
        lstm_as = "WHILE loop"
    else:
        lstm_as = "unrolled (FULLY_CONNECTED, LOGISTIC, TANH)"
    too_new = [f"{n} v{v}" for n, v in named_operators if v > TFLITE_RUNTIME_214.get(n, 0)]
    runtimes = {"ai-edge-litert": "yes"}
    for column, machine in TFLITE_RUNTIME_MACHINES.items():
        refusal = REFUSALS.get(("tflite-runtime", machine, mode, graph))
        runtimes[column] = (f"no: {', '.join(sorted(set(too_new)))} newer than it knows" if too_new else
                            f"no: {refusal}; carolgen's runtime refuses it there" if refusal else "yes")
    return Audit([f"{n} v{v}" for n, v in sorted(set(named_operators))], lstm_as, breaches, runtimes)


def audit_onnx(op_types, mode, graph="window"):
    """Audit the op types of an ONNX file; a windowed fp32 file must use the native LSTM op (a step file runs
    one LSTM step as plain ops). An op from another domain than ONNX's own (onnxruntime's contrib ops) limits
    the file to onnxruntime."""
    breaches = [n for n in op_types if n in FORBIDDEN["onnx"]]
    lstm_ops = [n for n in op_types if "LSTM" in n]
    if mode == "fp32" and graph == "window" and "LSTM" not in op_types:
        breaches.append("no native LSTM op")
    lstm_as = ", ".join(lstm_ops) if lstm_ops else ("Loop" if "Loop" in op_types else "unrolled")
    if graph == "step" and not lstm_ops:
        lstm_as = "one step (MatMul, Sigmoid, Tanh)"
    contrib = [n for n in op_types if "." in n]
    others = f"no: needs {', '.join(contrib)}, onnxruntime's own" if contrib else "yes: standard ONNX ops only"
    return Audit(list(op_types), lstm_as, breaches, {"onnxruntime": "yes", "other ONNX runtimes": others})
