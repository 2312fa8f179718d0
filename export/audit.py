"""The op audit: what the LSTM became, whether the graph has a loop or Flex op, and who can load it."""
from dataclasses import dataclass, field

FORBIDDEN = {"tflite": {"WHILE"}, "onnx": {"Loop", "Scan"}}

# Highest operator versions seen to load and run on tflite-runtime 2.14.0 (x86-64, numpy 1.26), from the
# files carol-export writes (fp32, fp16, dynamic-compat, int8 all loaded; dynamic's FULLY_CONNECTED v12 did not;
# GATHER v1 (fp32) and v2 (int8), the embedding architecture's input, loaded and ran; the fused
# UNIDIRECTIONAL_SEQUENCE_LSTM v1 (float) and v3 (hybrid: int8 weights) loaded and ran).
# An op missing here, or newer, is reported as not known to load there.
TFLITE_RUNTIME_214 = {
    "ADD": 2, "BATCH_MATMUL": 2, "CONCATENATION": 2, "DEQUANTIZE": 3, "FULLY_CONNECTED": 9, "GATHER": 2, "LOGISTIC": 2,
    "MUL": 2, "PACK": 2, "QUANTIZE": 1, "RESHAPE": 1, "SOFTMAX": 2, "SPLIT": 2, "STRIDED_SLICE": 2, "TANH": 2,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 3, "UNPACK": 2,
}


@dataclass
class Audit:
    operators: list
    lstm_as: str
    breaches: list = field(default_factory=list)
    runtimes: dict = field(default_factory=dict)

    @property
    def passed(self):
        return not self.breaches


# What the emulated Raspberry Pi check (carol-pi-check, benchmarks/results/PI.md) found for tflite-runtime 2.14's
# aarch64 build, by mode, where it differs from "loads when its op versions are known".
TFLITE_RUNTIME_214_AARCH64 = {
    "int8": "no: its optimised int8 kernels crash on this file and its reference kernels compute it wrongly "
            "(carol-pi-check); carolgen's runtime refuses it there",
}


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
    x86 = f"no: {', '.join(sorted(set(too_new)))} newer than it knows" if too_new else "yes"
    runtimes = {"ai-edge-litert": "yes", "tflite-runtime 2.14": x86,
                "tflite-runtime 2.14 aarch64": TFLITE_RUNTIME_214_AARCH64.get(mode, x86) if not too_new else x86}
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
