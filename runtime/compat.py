"""Which interpreter can run which file on which machine, as data: the op audit's and carol-pi-check's
findings. open_backend consults it: a backend chosen automatically is skipped where it is ruled out (the
numpy backend, last in the table, runs every file), and one named with --backend is refused with the reason.
"""
import platform

# Highest operator versions seen to load and run on tflite-runtime 2.14.0 (x86-64, numpy 1.26), from the
# files carol-export writes (fp32, fp16, dynamic-compat, int8 all loaded; dynamic's FULLY_CONNECTED v12 did not;
# GATHER v1 (fp32) and v2 (int8), the embedding architecture's input, loaded and ran; the fused
# UNIDIRECTIONAL_SEQUENCE_LSTM v1 (float) and v3 (hybrid: int8 weights) loaded and ran).
# An op missing here, or newer, is taken as not known to load there.
TFLITE_RUNTIME_214 = {
    "ADD": 2, "BATCH_MATMUL": 2, "CONCATENATION": 2, "DEQUANTIZE": 3, "FULLY_CONNECTED": 9, "GATHER": 2, "LOGISTIC": 2,
    "MUL": 2, "PACK": 2, "QUANTIZE": 1, "RESHAPE": 1, "SOFTMAX": 2, "SPLIT": 2, "STRIDED_SLICE": 2, "TANH": 2,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 3, "UNPACK": 2,
}
# TFLite's BuiltinOperator numbers (schema.fbs) of the ops above.
BUILTIN_NAMES = {0: "ADD", 126: "BATCH_MATMUL", 2: "CONCATENATION", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED",
                 36: "GATHER", 14: "LOGISTIC", 18: "MUL", 83: "PACK", 114: "QUANTIZE", 22: "RESHAPE", 25: "SOFTMAX",
                 49: "SPLIT", 45: "STRIDED_SLICE", 28: "TANH", 44: "UNIDIRECTIONAL_SEQUENCE_LSTM", 88: "UNPACK"}
# backend -> the highest op versions it loads (a TFLite file with a newer or unknown op is ruled out).
MAX_OP_VERSIONS = {"tflite-runtime": TFLITE_RUNTIME_214}

# tflite-runtime 2.14 (its last release) on Arm, with carolgen's windowed int8 file (full-integer
# FULLY_CONNECTED layers beside the hybrid LSTM): its optimised kernels segfault on 64-bit Arm (Pi 4 and
# Pi 5 cores) and on 32-bit Arm (ARMv7), and its reference kernels compute probabilities up to 0.59 away
# from the same kernels on x86-64 on 64-bit Arm (benchmarks/results/PI.md). The int8 step file (no fused
# LSTM) runs correctly there. ai-edge-litert, and the x86-64 build of tflite-runtime, run both fine.
_INT8_WINDOW_ON_ARM = ("its Arm builds crash on this windowed int8 file, or compute it wrongly (carol-pi-check): "
                       "use the int8 step file, the fp16 or dynamic-compat file, ai-edge-litert where it installs, "
                       "or the numpy backend")
# (backend, machine, quantisation, graph) -> why the backend must not run such files there.
REFUSALS = {("tflite-runtime", machine, "int8", "window"): _INT8_WINDOW_ON_ARM
            for machine in ("aarch64", "arm64", "armv7l")}
# (backend, machine) -> why the backend must not run any file there. tflite-runtime's 32-bit wheel is built for
# ARMv7: pip on an ARMv6 Pi (Zero, Zero W, 1) finds no wheel for it, and its users report "Illegal instruction"
# when one is forced on (carol-pi-check records what the wheel does on an emulated ARMv6 core).
MACHINE_REFUSALS = {("tflite-runtime", "armv6l"): "tflite-runtime has no build for ARMv6 (its 32-bit wheel is "
                                                  "for ARMv7): the numpy backend runs every file there"}


def this_machine():
    return platform.machine().lower()


def why_not(backend, model_file, machine=None):
    """Why `backend` (a name) must not run the file on `machine` (default: this one), or None."""
    limits = MAX_OP_VERSIONS.get(backend)
    if limits and model_file.kind == "tflite":
        too_new = sorted({f"{BUILTIN_NAMES.get(code, f'op {code}')} v{version}" for code, version, _ in
                          model_file.operators if version > limits.get(BUILTIN_NAMES.get(code), 0)})
        if too_new:
            return f"its {', '.join(too_new)} {'is' if len(too_new) == 1 else 'are'} newer than {backend} knows"
    return refusal(backend, machine or this_machine(), model_file.info.quantisation, model_file.info.graph)


def refusal(backend, machine, quantisation, graph):
    """Why carol-pi-check's findings rule `backend` out for such a file on `machine`, or None."""
    return MACHINE_REFUSALS.get((backend, machine)) or REFUSALS.get((backend, machine, quantisation, graph))
