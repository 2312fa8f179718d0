"""The generation loop: roll the window, ask the backend, let the sampler pick, stream characters.

The whole text (window + output) lives in one preallocated array of model inputs per run; each step's window is a
view into it, so the loop allocates nothing per character beyond what the interpreter returns.
"""
import secrets
import time
from dataclasses import dataclass

import numpy as np

from .backends import open_backend
from .encoding import normalise
from .errors import CarolError
from .sampling import DEFAULT_SAMPLING, check_sampling, sample


@dataclass
class Timing:
    """How a run went: characters per sample, seconds to the first character and in all, batch mode."""

    characters: int = 0
    samples: int = 1
    first_char_seconds: float = 0.0
    total_seconds: float = 0.0
    batch_mode: str = "batched"

    @property
    def chars_per_second(self):
        return self.characters * self.samples / self.total_seconds if self.total_seconds else 0.0


MAX_LENGTH = 1_000_000  # characters per sample
MAX_SAMPLES = 1024
MAX_TEXT_CELLS = 50_000_000  # samples x (window + length): the one text array a run allocates


def check_run(length, num_samples, window=0):
    if not 0 <= length <= MAX_LENGTH or not 1 <= num_samples <= MAX_SAMPLES:
        raise CarolError(f"--length must be 0-{MAX_LENGTH:,} and --num-samples 1-{MAX_SAMPLES:,} "
                         f"(got {length}, {num_samples})")
    if num_samples * (window + length) > MAX_TEXT_CELLS:
        raise CarolError(f"--num-samples {num_samples} x --length {length} is more text than one run writes "
                         f"({MAX_TEXT_CELLS:,} characters with the window); split it into several runs")


def new_seed():
    """A fresh seed for a run that was not given one (printed, so the run can be repeated)."""
    return secrets.randbits(31)


class Generator:
    """Text from a backend. One sample: `generate` returns a string, `stream` yields its characters. Many
    samples as one batch: `generate_batch` returns a list of strings, `stream_batch` yields a list of
    characters per step. Sampling defaults are the CLI's (runtime/sampling.DEFAULT_SAMPLING)."""

    def __init__(self, backend):
        self.backend = backend
        self.vocab, self.window, self.encoding = backend.vocab, backend.window, backend.info.encoding
        self._values = self.encoding.values(np.arange(self.vocab.size), self.vocab)
        self.timing = Timing()
        self.attention = []

    def prepare_prime(self, prime, unknown="error"):
        """The prime as the model sees it: normalised like its training text, unknown characters handled."""
        return self.vocab.clean(normalise(prime, **self.backend.info.normalisation), unknown)

    def stream(self, prime="", length=200, **options):
        """Yield the characters of one sample as they come. Temperature 0 is greedy."""
        for step in self.stream_batch(prime, length, num_samples=1, **options):
            yield step[0]

    def generate(self, prime="", length=200, **options):
        """One sample's text."""
        return "".join(self.stream(prime, length, **options))

    def generate_batch(self, prime="", length=200, num_samples=2, **options):
        """`num_samples` texts, generated as one batch where the backend can."""
        steps = list(self.stream_batch(prime, length, num_samples=num_samples, **options))
        return ["".join(step[i] for step in steps) for i in range(num_samples)]

    def stream_batch(self, prime="", length=200, temperature=DEFAULT_SAMPLING["temperature"],
                     top_k=DEFAULT_SAMPLING["top_k"], top_p=DEFAULT_SAMPLING["top_p"], seed=None, num_samples=1,
                     unknown="error", attention=False):
        """Yield, for each step, a list of `num_samples` characters. Temperature 0 is greedy."""
        check_sampling(temperature, top_k, top_p)
        check_run(length, num_samples, self.window)
        rng = np.random.default_rng(seed)
        prime = self.prepare_prime(prime, unknown)
        text = np.empty((num_samples, self.window + length), dtype=self.encoding.dtype)
        text[:, :self.window] = self.encoding.values(self.vocab.window_indices(prime, self.window), self.vocab)
        step, batch_mode = self._step_function(num_samples, attention)
        self.timing, self.attention = Timing(samples=num_samples, batch_mode=batch_mode), []
        start = time.perf_counter()
        for t in range(length):
            probs = step(self.encoding.inputs(text[:, t:t + self.window]))
            if probs.shape != (num_samples, self.vocab.size):
                raise CarolError(f"the model returned probabilities of shape {probs.shape}, not {num_samples} x its "
                                 f"vocabulary of {self.vocab.size}: its metadata does not match the graph")
            picks = sample(probs, temperature, top_k, top_p, rng)
            text[:, self.window + t] = self._values[picks]
            if t == 0:
                self.timing.first_char_seconds = time.perf_counter() - start
            self.timing.characters = t + 1
            self.timing.total_seconds = time.perf_counter() - start
            yield [self.vocab.chars[i] for i in picks]

    def _step_function(self, batch, attention):
        """(probs for a batch of windows, 'batched' | 'looped'): one call when the backend can, else one per window."""
        call = self._probs_recording_attention if attention else self.backend.probs
        if self.backend.supports_batch(batch):
            return call, "batched"
        return lambda windows: np.concatenate([call(np.ascontiguousarray(w[None])) for w in windows]), "looped"

    def _probs_recording_attention(self, windows):
        probs, weights = self.backend.probs_and_attention(windows)
        self.attention.append(np.array(weights))
        return probs


def load(path, backend=None, threads=1, trust=False):
    """A Generator for a model file: `load("model-fp32.tflite").generate("the star", 200, temperature=0)`.
    `trust` runs an exported file that carries no integrity digest."""
    return Generator(open_backend(path, backend=backend, threads=threads, trust=trust))
