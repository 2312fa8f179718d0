"""The quantisation modes: one table, one record per mode, that export, the gate, the bench and the Pi
check all read. A mode not in the table is a clear error wherever it is named.

Gate limits are promises to the user, set from what a user of the file needs (not from what a converter
happened to produce), and written in the README:
- held-out perplexity at most 0.1% above the Keras model's for fp32 and fp16, 1% for dynamic, 3% for int8:
  what the text costs;
- top-1 agreement at least 0.999 (fp32, fp16) or 0.97 (quantised): how often the likeliest next character
  is the same;
- for every mode: no real next character that Keras gives more than 1e-3 is given less than 1e-6 (a
  character the file can never write), and every probability finite, non-negative, each row summing to 1;
- fp32 is the reference itself: max |dp| at most 1e-5 and identical greedy text.
max |dp|, mean KL and greedy agreement are reported for every file.

Pi tolerance: the largest max |dp| between the emulated Arm run and the x86-64 run of the same file. Float
files compute the same float math (other SIMD kernels): measured ~1e-7. Quantised files may round an int8
step differently on Arm's kernels: dynamic measured 7.7e-3; int8 on tflite-runtime's reference kernels
3.1e-2.
"""
import math
from dataclasses import dataclass, field, fields, replace

from carolgen.runtime.errors import CarolError

GREEDY_LENGTH = 200
LOST_IF_REFERENCE_ABOVE = 1e-3  # a next character Keras gives more than this ...
LOST_BELOW = 1e-6  # ... is lost when the file gives it less than this
ROW_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Limits:
    """The parity gate's limits for one mode (see export/parity.py for how each is measured)."""

    max_ppl_increase: float  # held-out perplexity at most (1 + this) x the Keras model's
    min_top1: float  # share of windows whose likeliest next character is Keras's
    max_abs_dp: float = math.inf  # largest difference in any probability (fp32 only; reported for all)
    max_mean_kl: float = math.inf  # mean KL(reference || file) in nats (step drift only; reported for all)
    all_greedy: bool = False  # every prime's greedy text identical to Keras's

    def overridden(self, overrides):
        return replace(self, **overrides)


LIMIT_NAMES = [f.name for f in fields(Limits) if f.type is float]
FLOAT_FAITHFUL = Limits(max_ppl_increase=0.001, min_top1=0.999)
QUANTISED_TOP1 = 0.97
# A step file against the windowed Keras model: it carries one continuous state where the windowed model
# restarts at each window, so it is an approximation. What a user of a step file is promised, whatever its
# mode: held-out perplexity within +2% of the windowed model's (the text costs little), the same likeliest
# next character at least 95% of the time (greedy text mostly the same), and a mean KL of at most 1/200 nat
# per character: a default run's 200 characters carry, on average, less than one nat of evidence that they
# came from the step file rather than the windowed model.
STEP_DRIFT = Limits(max_ppl_increase=0.02, min_top1=0.95, max_mean_kl=1 / 200)


@dataclass(frozen=True)
class Mode:
    """One row of the mode table."""

    name: str
    summary: str
    limits: Limits
    # max |dp| between a file on an Arm device and the same file on the same runtime on x86-64 (carol-pi-check).
    # Float files: 1e-4, with identical greedy text, a difference no text shows (tflite-runtime's 32-bit Arm
    # kernels computed the seed model's fp32 file 1.7e-5 away from x86-64, same greedy text).
    pi_tolerance: float
    calibrated: bool = False  # needs calibration windows from real lyrics
    unsupported: dict = field(default_factory=dict)  # format -> why this format has no such file


MODES = {m.name: m for m in (
    Mode("fp32", "float32, the reference",
         replace(FLOAT_FAITHFUL, max_abs_dp=1e-5, all_greedy=True), 1e-4),
    Mode("fp16", "float16 weights, float arithmetic", FLOAT_FAITHFUL, 1e-4),
    Mode("dynamic", "int8 weights, float activations", Limits(0.01, QUANTISED_TOP1), 2e-2),
    Mode("dynamic-compat", "dynamic with per-tensor weights, for tflite-runtime 2.14",
         Limits(0.01, QUANTISED_TOP1), 2e-2,
         unsupported={"onnx": "dynamic-compat is a TFLite variant for tflite-runtime 2.14; "
                              "ONNX dynamic already loads on every onnxruntime"}),
    Mode("int8", "int8 weights and activations, softmax in float; float input and output",
         Limits(0.03, QUANTISED_TOP1), 5e-2, calibrated=True),
)}


def mode(name):
    """The mode's row; CarolError naming the known modes otherwise."""
    if name not in MODES:
        raise CarolError(f"unknown quantisation mode {name!r}; modes: {', '.join(MODES)}")
    return MODES[name]
