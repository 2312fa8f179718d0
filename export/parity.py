"""The parity gate: an exported file, run in its real runtime, against the Keras model.

The parity set is seeded windows of real lyrics, from held-out and training songs (export/windows.py);
step files are measured on streams of the same songs instead (StepGate), exactly and for drift.
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
from carolgen.runtime.generate import Generator, per_sample, probs_of_windows

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
    """What a reference model says on a parity set: probabilities at each position and greedy texts for the
    primes. `held_out` marks the positions from held-out songs, on which perplexity is measured."""

    def __init__(self, probs, texts, targets, held_out):
        self.probs, self.texts, self.targets, self.held_out = probs, texts, targets, held_out
        self.perplexity = perplexity(self.probs[self.held_out], self.targets[self.held_out])

    def compare(self, probs, texts):
        """Parity of (probabilities at each position, greedy texts for the primes) against this reference."""
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


class WindowGate:
    """The gate for windowed files: the file against the Keras model on the parity set's windows."""

    def __init__(self, keras_backend, parity_set):
        self.windows, targets, held_out, self.primes = parity_set
        self.reference = Reference(batched_probs(keras_backend, self.windows),
                                   greedy_texts(keras_backend, self.primes), targets, held_out)

    def parity(self, backend):
        """The Parity of an opened backend."""
        return self.reference.compare(batched_probs(backend, self.windows), greedy_texts(backend, self.primes))

    def measure(self, backend, limits):
        """[(label, Parity, Limits)] of an opened backend: one comparison, under the mode's limits."""
        return [("", self.parity(backend), limits)]


class StepGate:
    """The gate for step files, on streams of real lyrics (export/windows.parity_streams), each fed from a zero
    state through its first window and then one character at a time: the file against the Keras step model
    (exact: the mode's limits) and against the windowed Keras model (drift: the step graph's own limits)."""

    def __init__(self, keras_backend, keras_step_backend, parity_streams, drift_limits):
        self.streams, targets, held_out, self.primes = parity_streams
        window = keras_backend.window
        targets, held_out = targets.reshape(-1), np.repeat(held_out, targets.shape[1])
        windowed = batched_probs(keras_backend, stream_windows(self.streams, window))
        self.exact = Reference(stream_probs(keras_step_backend, self.streams, window),
                               greedy_texts(keras_step_backend, self.primes), targets, held_out)
        self.drift = Reference(windowed, greedy_texts(keras_backend, self.primes), targets, held_out)
        self.drift_limits = drift_limits

    def measure(self, backend, limits):
        probs = stream_probs(backend, self.streams, backend.window)
        texts = greedy_texts(backend, self.primes)
        return [("", self.exact.compare(probs, texts), limits),
                ("drift", self.drift.compare(probs, texts), self.drift_limits)]


def stream_windows(streams, window):
    """The window before each predicted position of each stream, (streams x positions, window, ...)."""
    positions = range(streams.shape[1] - window)
    return np.stack([stream[t:t + window] for stream in streams for t in positions])


def stream_probs(backend, streams, window):
    """Probabilities at each predicted position of each stream (streams x positions, vocab), the streams fed
    one character at a time from a zero state; the first `window` characters of a stream are its prime."""
    call = backend.step if backend.supports_batch(len(streams)) else per_sample(backend.step)
    state = np.zeros((len(streams), *backend.state_shape), dtype=np.float32)
    predicted = []
    for t in range(streams.shape[1] - 1):
        probs, state = call(np.ascontiguousarray(streams[:, t]), state)
        if t >= window - 1:
            predicted.append(probs)
    return np.stack(predicted, axis=1).reshape(-1, predicted[0].shape[-1]).astype(np.float64)


def batched_probs(backend, windows):
    """Probabilities for many windows, in batches the backend accepts, as float64."""
    return probs_of_windows(backend, windows).astype(np.float64)


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
        (not parity.mean_kl <= limits.max_mean_kl, f"mean KL {parity.mean_kl:.2e} > {limits.max_mean_kl:g}"),
        (limits.all_greedy and not min(parity.greedy) >= GREEDY_LENGTH,
         f"greedy text differs from Keras's after {min(parity.greedy)} chars"),
    ]
    return [message for broken, message in checks if broken]
