"""The parity gate: an exported file, run in its real runtime, against the Keras model.

Figures: max |dp| and mean KL(keras || file) over held-out windows, top-1 agreement, and greedy agreement
(for each prime, how many of 200 greedy characters match Keras's before the first difference).
"""
from dataclasses import asdict, dataclass

import numpy as np

from carolgen.runtime.generate import Generator

GREEDY_LENGTH = 200

# Default thresholds per mode. fp32 is the contract (max |dp| <= 1e-5, identical greedy text). The quantised
# ones were set from measurements on the bundled model with headroom (docs/ARCHITECTURE.md has the figures):
# e.g. dynamic measured max |dp| 0.021-0.053, top-1 0.978-0.992, KL 1.6e-4-1.3e-3; int8 max |dp| 0.049-0.16,
# top-1 0.93-0.98, KL ~0.11 (int8 softmax outputs round small probabilities to 0). Greedy agreement is a
# weak signal for quantised files of a small model (near-tied characters flip), so its floor there is low.
THRESHOLDS = {
    "fp32": {"max_abs_dp": 1e-5, "min_top1": 1.0, "max_kl": 1e-6, "min_greedy": GREEDY_LENGTH, "all_greedy": True},
    "fp16": {"max_abs_dp": 2e-3, "min_top1": 0.99, "max_kl": 1e-4, "min_greedy": 100},
    "dynamic": {"max_abs_dp": 0.1, "min_top1": 0.95, "max_kl": 0.005, "min_greedy": 5},
    "dynamic-compat": {"max_abs_dp": 0.1, "min_top1": 0.95, "max_kl": 0.005, "min_greedy": 5},
    "int8": {"max_abs_dp": 0.25, "min_top1": 0.9, "max_kl": 0.15, "min_greedy": 3},
}


@dataclass
class Parity:
    max_abs_dp: float
    top1: float
    mean_kl: float
    greedy: list

    @property
    def greedy_median(self):
        return float(np.median(self.greedy))

    def to_dict(self):
        return {**asdict(self), "greedy_median": self.greedy_median}


class Reference:
    """What the Keras model says on the parity set, computed once per checkpoint."""

    def __init__(self, keras_backend, windows, primes):
        self.windows, self.primes = windows, primes
        self.probs = batched_probs(keras_backend, windows)
        generator = Generator(keras_backend)
        self.texts = [generator.generate(p, GREEDY_LENGTH, temperature=0) for p in primes]


def batched_probs(backend, windows):
    """Probabilities for many windows, in batches the backend accepts."""
    batch = backend.batch or 256
    if not backend.supports_batch(batch):
        batch = 1
    rows = [backend.probs(np.ascontiguousarray(windows[i:i + batch])) for i in range(0, len(windows) - batch + 1, batch)]
    done = sum(len(r) for r in rows)
    rows += [backend.probs(np.ascontiguousarray(windows[i:i + 1])) for i in range(done, len(windows))]
    return np.concatenate(rows).astype(np.float64)


def measure(backend, reference):
    """Parity figures of `backend` against the Keras reference."""
    generator = Generator(backend)
    texts = [generator.generate(prime, GREEDY_LENGTH, temperature=0) for prime in reference.primes]
    return compare(batched_probs(backend, reference.windows), texts, reference.probs, reference.texts)


def compare(probs, texts, reference_probs, reference_texts):
    """Parity of (probabilities, greedy texts) against the reference's: the one definition of the figures."""
    p = np.clip(reference_probs, 1e-12, 1.0)
    q = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    return Parity(max_abs_dp=float(np.abs(q - p).max()), top1=float(np.mean(q.argmax(1) == p.argmax(1))),
                  mean_kl=float(np.mean(np.sum(p * np.log(p / q), axis=1))),
                  greedy=[common_prefix(a, b) for a, b in zip(reference_texts, texts)])


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def failures(parity, limits):
    """The thresholds `parity` breaks, as readable strings (empty when it passes)."""
    checks = [(parity.max_abs_dp > limits["max_abs_dp"], f"max |dp| {parity.max_abs_dp:.2e} > {limits['max_abs_dp']:g}"),
              (parity.top1 < limits["min_top1"], f"top-1 {parity.top1:.3f} < {limits['min_top1']:g}"),
              (parity.mean_kl > limits["max_kl"], f"mean KL {parity.mean_kl:.2e} > {limits['max_kl']:g}"),
              (parity.greedy_median < limits["min_greedy"],
               f"median greedy agreement {parity.greedy_median:.0f} < {limits['min_greedy']} chars"),
              (limits.get("all_greedy") and min(parity.greedy) < GREEDY_LENGTH,
               f"greedy text differs from Keras's after {min(parity.greedy)} chars")]
    return [message for broken, message in checks if broken]
