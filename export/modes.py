"""The quantisation modes: one table, one record per mode, that export, the gate, the bench and the Pi
check all read. A mode not in the table is a clear error wherever it is named.

Gate limits: fp32 is the contract (max |dp| <= 1e-5, identical greedy text). The quantised limits were set
from measurements on the bundled model with headroom (docs/ARCHITECTURE.md has the figures): e.g. dynamic
measured max |dp| 0.021-0.053, top-1 0.978-0.992, KL 1.6e-4-1.3e-3; int8 max |dp| 0.049-0.16, top-1
0.93-0.98, KL ~0.11 (int8 softmax outputs round small probabilities to 0). Greedy agreement is a weak signal
for quantised files of a small model (near-tied characters flip), so its floor there is low.

Pi tolerance: the largest max |dp| between the emulated Arm run and the x86-64 run of the same file. Float
files compute the same float math (other SIMD kernels): measured ~1e-7. Quantised files may round an int8
step differently on Arm's kernels: dynamic measured 7.7e-3; int8 on tflite-runtime's reference kernels
3.1e-2 (rounding differences compound over the 100 unrolled steps).
"""
from dataclasses import dataclass, field, fields, replace

from carolgen.runtime.errors import CarolError

GREEDY_LENGTH = 200


@dataclass(frozen=True)
class Limits:
    """The parity gate's limits for one mode (see export/parity.py for how each is measured)."""

    max_abs_dp: float
    min_top1: float
    max_kl: float
    min_greedy: float  # median greedy agreement, characters of GREEDY_LENGTH
    all_greedy: bool = False  # every prime's greedy text identical

    def overridden(self, overrides):
        return replace(self, **overrides)


LIMIT_NAMES = [f.name for f in fields(Limits) if f.type is float]


@dataclass(frozen=True)
class Mode:
    """One row of the mode table."""

    name: str
    summary: str
    limits: Limits
    pi_tolerance: float
    calibrated: bool = False  # needs calibration windows from real lyrics
    unsupported: dict = field(default_factory=dict)  # format -> why this format has no such file


MODES = {m.name: m for m in (
    Mode("fp32", "float32, the reference", Limits(1e-5, 1.0, 1e-6, GREEDY_LENGTH, all_greedy=True), 1e-5),
    Mode("fp16", "float16 weights, float arithmetic", Limits(2e-3, 0.99, 1e-4, 100), 1e-5),
    Mode("dynamic", "int8 weights, float activations", Limits(0.1, 0.95, 0.005, 5), 2e-2),
    Mode("dynamic-compat", "dynamic with per-tensor weights, for tflite-runtime 2.14",
         Limits(0.1, 0.95, 0.005, 5), 2e-2,
         unsupported={"onnx": "dynamic-compat is a TFLite variant for tflite-runtime 2.14; "
                              "ONNX dynamic already loads on every onnxruntime"}),
    Mode("int8", "int8 weights and activations, float input and output", Limits(0.25, 0.9, 0.15, 3), 5e-2,
         calibrated=True),
)}


def mode(name):
    """The mode's row; CarolError naming the known modes otherwise."""
    if name not in MODES:
        raise CarolError(f"unknown quantisation mode {name!r}; modes: {', '.join(MODES)}")
    return MODES[name]
