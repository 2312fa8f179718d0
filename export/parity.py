"""The parity gate: an exported file, run in its real runtime, against the Keras model.

Figures: max |dp| and mean KL(keras || file) over held-out windows, top-1 agreement, greedy agreement (for
each prime, how many of 200 greedy characters match Keras's before the first difference) and held-out
perplexity. carol-bench reports the same figures through the same `Reference` and `compare`, so the gate
and the bench agree by construction. Each mode's limits are in export/modes.py.
"""
from dataclasses import asdict, dataclass

import numpy as np

from carolgen.runtime.generate import Generator

from .modes import GREEDY_LENGTH


@dataclass
class Parity:
    max_abs_dp: float
    top1: float
    mean_kl: float
    greedy: list
    perplexity: float

    @property
    def greedy_median(self):
        return float(np.median(self.greedy))

    def to_dict(self):
        return {**asdict(self), "greedy_median": self.greedy_median}


def greedy_texts(backend, primes, length=GREEDY_LENGTH):
    generator = Generator(backend)
    return [generator.generate(prime, length, temperature=0) for prime in primes]


class Reference:
    """What the Keras model says on a parity set (windows, their next characters, greedy primes), once."""

    def __init__(self, keras_backend, windows, targets, primes):
        self.windows, self.targets, self.primes = windows, targets, primes
        self.probs = batched_probs(keras_backend, windows)
        self.texts = greedy_texts(keras_backend, primes)
        self.perplexity = perplexity(self.probs, targets)

    def compare(self, probs, texts):
        """Parity of (probabilities for the windows, greedy texts for the primes) against this reference."""
        p = np.clip(self.probs, 1e-12, 1.0)
        q = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
        return Parity(max_abs_dp=float(np.abs(q - p).max()), top1=float(np.mean(q.argmax(1) == p.argmax(1))),
                      mean_kl=float(np.mean(np.sum(p * np.log(p / q), axis=1))),
                      greedy=[common_prefix(a, b) for a, b in zip(self.texts, texts, strict=True)],
                      perplexity=perplexity(q, self.targets))

    def measure(self, backend):
        """Parity of an opened backend against this reference."""
        return self.compare(batched_probs(backend, self.windows), greedy_texts(backend, self.primes))


def batched_probs(backend, windows):
    """Probabilities for many windows, in batches the backend accepts."""
    batch = backend.batch or 256
    if not backend.supports_batch(batch):
        batch = 1
    rows = [backend.probs(np.ascontiguousarray(windows[i:i + batch]))
            for i in range(0, len(windows) - batch + 1, batch)]
    done = sum(len(r) for r in rows)
    rows += [backend.probs(np.ascontiguousarray(windows[i:i + 1])) for i in range(done, len(windows))]
    return np.concatenate(rows).astype(np.float64)


def perplexity(probs, targets):
    """exp(mean negative log-likelihood) of the targets under the probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    return float(np.exp(-np.mean(np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-12, 1)))))


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b, strict=False):  # texts may differ in length
        if x != y:
            break
        n += 1
    return n


def failures(parity, limits):
    """The limits `parity` breaks, as readable strings (empty when it passes). Each check asks whether the
    figure is within its limit, so a NaN figure (a file that computes NaN) always fails."""
    checks = [(not parity.max_abs_dp <= limits.max_abs_dp, f"max |dp| {parity.max_abs_dp:.2e} > {limits.max_abs_dp:g}"),
              (not parity.top1 >= limits.min_top1, f"top-1 {parity.top1:.3f} < {limits.min_top1:g}"),
              (not parity.mean_kl <= limits.max_kl, f"mean KL {parity.mean_kl:.2e} > {limits.max_kl:g}"),
              (not parity.greedy_median >= limits.min_greedy,
               f"median greedy agreement {parity.greedy_median:.0f} < {limits.min_greedy:g} chars"),
              (limits.all_greedy and min(parity.greedy) < GREEDY_LENGTH,
               f"greedy text differs from Keras's after {min(parity.greedy)} chars")]
    return [message for broken, message in checks if broken]
