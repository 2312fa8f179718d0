"""The parity gate: an exported file, run in its real runtime, against the Keras model.

The parity set is seeded windows of real lyrics, from held-out and training songs (export/windows.py).
Figures, all in float64: max |dp| and mean KL(keras || file) over every window, top-1 agreement, greedy
agreement (for each prime, how many of 200 greedy characters match Keras's before the first difference),
held-out perplexity and its change, lost characters (real next characters Keras gives > 1e-3 that the file
gives < 1e-6) and invalid rows (any probability not finite or negative, or a row not summing to 1).
carol-bench reports the same figures through the same `Reference` and `compare`, so the gate and the bench
agree by construction. Each mode's limits are in export/modes.py.
"""
from dataclasses import asdict, dataclass

import numpy as np

from carolgen.runtime.errors import CarolError
from carolgen.runtime.generate import Generator

from .modes import GREEDY_LENGTH, LOST_BELOW, LOST_IF_REFERENCE_ABOVE, ROW_SUM_TOLERANCE


@dataclass
class Parity:
    windows: int
    max_abs_dp: float
    top1: float
    mean_kl: float
    greedy: list
    perplexity: float
    reference_perplexity: float
    lost: int  # real next characters the file can (all but) never write
    invalid_rows: int

    @property
    def greedy_median(self):
        return float(np.median(self.greedy))

    @property
    def perplexity_increase(self):
        """Held-out perplexity relative to the reference's, minus 1 (NaN stays NaN)."""
        return self.perplexity / self.reference_perplexity - 1

    def to_dict(self):
        return {**asdict(self), "greedy_median": self.greedy_median, "perplexity_increase": self.perplexity_increase}


def greedy_texts(backend, primes, length=GREEDY_LENGTH):
    """Each prime's greedy text; empty for a file whose probabilities the sampler refuses (NaN, say): its
    probabilities fail the gate on their own, so the greedy figures need only say nothing matched."""
    generator = Generator(backend)
    try:
        return [generator.generate(prime, length, temperature=0) for prime in primes]
    except CarolError:
        return [""] * len(primes)


class Reference:
    """What the Keras model says on a parity set, once: probabilities for the windows, greedy texts for the
    primes. `held_out` marks the windows from held-out songs, on which perplexity is measured."""

    def __init__(self, keras_backend, parity_set):
        self.windows, self.targets, self.held_out, self.primes = parity_set
        self.probs = batched_probs(keras_backend, self.windows)
        self.texts = greedy_texts(keras_backend, self.primes)
        self.perplexity = perplexity(self.probs[self.held_out], self.targets[self.held_out])

    def compare(self, probs, texts):
        """Parity of (probabilities for the windows, greedy texts for the primes) against this reference."""
        q = np.asarray(probs, dtype=np.float64)
        p = self.probs
        rows = np.arange(len(self.targets))
        return Parity(windows=len(q), max_abs_dp=float(np.abs(q - p).max()),
                      top1=float(np.mean(q.argmax(1) == p.argmax(1))), mean_kl=mean_kl(p, q),
                      greedy=[common_prefix(a, b) for a, b in zip(self.texts, texts, strict=True)],
                      perplexity=perplexity(q[self.held_out], self.targets[self.held_out]),
                      reference_perplexity=self.perplexity,
                      lost=int(np.sum((p[rows, self.targets] > LOST_IF_REFERENCE_ABOVE)
                                      & ~(q[rows, self.targets] >= LOST_BELOW))),
                      invalid_rows=invalid_rows(q))

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


def invalid_rows(probs):
    """Rows with a probability that is not finite or is negative, or that do not sum to 1."""
    finite = np.isfinite(probs).all(axis=1)
    valid = finite & (np.where(np.isfinite(probs), probs, 0) >= 0).all(axis=1)
    valid &= np.abs(np.where(finite[:, None], probs, 0).sum(axis=1) - 1) <= ROW_SUM_TOLERANCE
    return int(np.sum(~valid))


def mean_kl(p, q):
    """Mean KL(p || q) in nats over rows, each row renormalised in float64 so rounding never makes it
    negative; NaN when q has no valid value (a NaN file must not look faithful)."""
    if not np.isfinite(q).all() or (q < 0).any():
        return float("nan")
    p = np.clip(p, 1e-12, None)
    q = np.clip(q, 1e-12, None)
    p, q = p / p.sum(axis=1, keepdims=True), q / q.sum(axis=1, keepdims=True)
    return float(max(0.0, np.mean(np.sum(p * np.log(p / q), axis=1))))


def perplexity(probs, targets):
    """exp(mean negative log-likelihood) of the targets under the probabilities (NaN stays NaN)."""
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
    """The promises `parity` breaks, as readable strings (empty when it passes). Each check asks whether the
    figure is within its limit, so a NaN figure (a file that computes NaN) always fails."""
    checks = [
        (not parity.invalid_rows == 0, f"{parity.invalid_rows} of {parity.windows} probability rows are not "
                                       "finite, non-negative and summing to 1"),
        (not parity.perplexity_increase <= limits.max_ppl_increase,
         f"held-out perplexity {parity.perplexity:.4f} is {100 * parity.perplexity_increase:+.2f}% vs Keras "
         f"(limit +{100 * limits.max_ppl_increase:g}%)"),
        (not parity.top1 >= limits.min_top1, f"top-1 agreement {parity.top1:.4f} < {limits.min_top1:g}"),
        (not parity.lost == 0, f"{parity.lost} real next characters given < {LOST_BELOW:g} (Keras: > "
                               f"{LOST_IF_REFERENCE_ABOVE:g})"),
        (not parity.max_abs_dp <= limits.max_abs_dp, f"max |dp| {parity.max_abs_dp:.2e} > {limits.max_abs_dp:g}"),
        (limits.all_greedy and not min(parity.greedy) >= GREEDY_LENGTH,
         f"greedy text differs from Keras's after {min(parity.greedy)} chars"),
    ]
    return [message for broken, message in checks if broken]
