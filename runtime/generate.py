"""The generation loop: feed the model, let the sampler pick, stream characters.

A session feeds the model its input for each next character, by the file's graph (runtime/metadata.GRAPHS):
- WindowSession (windowed files) keeps the last `window` characters in a buffer of twice that, each
  character written twice, so the current window is always one contiguous slice and nothing is shifted;
- StepSession (step files) feeds the prime one character at a time from a zero state, then each new one.
Either way a run's memory does not grow with --length, and the loop allocates nothing per character beyond
what the interpreter returns.
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

    @property
    def steady_chars_per_second(self):
        """The rate after the first character: without the prime (a step file feeds it one step per character)."""
        seconds = self.total_seconds - self.first_char_seconds
        return (self.characters - 1) * self.samples / seconds if seconds > 0 else 0.0


MAX_LENGTH = 1_000_000  # characters per sample
MAX_SAMPLES = 1024
MAX_TEXT_CHARS = 50_000_000  # samples x length: the text one run writes (a batch's texts are kept to print)
MAX_STATE_VALUES = 64_000_000  # samples x a step file's state: 256 MB of float32


def check_run(length, num_samples):
    if not 0 <= length <= MAX_LENGTH or not 1 <= num_samples <= MAX_SAMPLES:
        raise CarolError(f"--length must be 0-{MAX_LENGTH:,} and --num-samples 1-{MAX_SAMPLES:,} "
                         f"(got {length}, {num_samples})")
    if num_samples * length > MAX_TEXT_CHARS:
        raise CarolError(f"--num-samples {num_samples} x --length {length} is more text than one run writes "
                         f"({MAX_TEXT_CHARS:,} characters); split it into several runs")


class WindowSession:
    """A windowed file's input: the last `window` characters of each sample, re-run every step."""

    def __init__(self, generator, batch, call):
        self.window, self.call = generator.window, call
        buffer = np.empty((batch, 2 * self.window), dtype=generator.encoding.dtype)
        self.buffer, self.inputs = buffer, generator.encoding.inputs(buffer)  # the model's view of the buffer
        self.position = self.window - 1  # the newest character is at position and position + window

    def start(self, values):
        """Probabilities after the prime's window (batch, window) of input values."""
        self.buffer[:, :self.window] = self.buffer[:, self.window:] = values
        self.position = self.window - 1
        return self.call(self.inputs[:, self.window:])

    def advance(self, values):
        """Probabilities after one more input value per sample (a list: set one by one, which for the usual
        one sample costs a tenth of numpy converting the list)."""
        p = self.position = (self.position + 1) % self.window
        buffer, other = self.buffer, p + self.window
        for index, value in enumerate(values):
            buffer[index, p] = buffer[index, other] = value
        return self.call(self.inputs[:, p + 1:p + 1 + self.window])


class StepSession:
    """A step file's input: one character per sample and the state the file returned for the last one."""

    def __init__(self, generator, batch, call):
        shape = generator.backend.state_shape
        if batch * int(np.prod(shape)) > MAX_STATE_VALUES:
            raise CarolError(f"{batch} samples of this step file's state {shape} exceed {MAX_STATE_VALUES:,} values; "
                             "use fewer --num-samples")
        self.call = call
        self.chars = np.empty(batch, dtype=generator.encoding.dtype)
        self.inputs = generator.encoding.inputs(self.chars)  # the model's view of the characters
        self.zero_state = np.zeros((batch, *shape), dtype=np.float32)
        self.state = self.zero_state

    def start(self, values):
        """Feed the prime's window (batch, window) from a zero state: the first probabilities are then
        exactly the windowed model's."""
        self.state = self.zero_state
        for column in range(values.shape[1] - 1):
            self.advance(values[:, column].tolist())
        return self.advance(values[:, -1].tolist())

    def advance(self, values):
        for index, value in enumerate(values):
            self.chars[index] = value
        probs, self.state = self.call(self.inputs, self.state)
        return probs


SESSIONS = {"window": WindowSession, "step": StepSession}


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
        check_run(length, num_samples)
        rng = np.random.default_rng(seed)
        prime = self.prepare_prime(prime, unknown)
        start = self.encoding.values(self.vocab.window_indices(prime, self.window), self.vocab)
        session, batch_mode = self._session(num_samples, attention)
        self.timing, self.attention = Timing(samples=num_samples, batch_mode=batch_mode), []
        chars, values, expected = self.vocab.chars, self._values.tolist(), (num_samples, self.vocab.size)
        began = time.perf_counter()
        probs = session.start(np.broadcast_to(start, (num_samples, self.window)))
        self.attention = self.attention[-1:]  # a step file's prime ran one step per character: keep the last
        for t in range(length):
            if probs.shape != expected:
                raise CarolError(f"the model returned probabilities of shape {probs.shape}, not {num_samples} x its "
                                 f"vocabulary of {self.vocab.size}: its metadata does not match the graph")
            picks = sample(probs, temperature, top_k, top_p, rng)
            now = time.perf_counter()
            if t == 0:
                self.timing.first_char_seconds = now - began
            self.timing.characters, self.timing.total_seconds = t + 1, now - began
            yield [chars[i] for i in picks]
            if t + 1 < length:
                probs = session.advance([values[i] for i in picks])

    def _session(self, batch, attention):
        """(the file's session for `batch` samples, 'batched' | 'looped'): one call per step when the backend
        takes the batch, else one call per sample."""
        backend = self.backend
        graph = backend.graph
        if graph == "step":
            call = self._step_recording_attention if attention else backend.step
        else:
            call = self._probs_recording_attention if attention else backend.probs
        if backend.supports_batch(batch):
            return SESSIONS[graph](self, batch, call), "batched"
        return SESSIONS[graph](self, batch, per_sample(call)), "looped"

    def _probs_recording_attention(self, windows):
        probs, weights = self.backend.probs_and_attention(windows)
        self.attention.append(np.array(weights))
        return probs

    def _step_recording_attention(self, chars, state):
        probs, next_state, weights = self.backend.step_and_attention(chars, state)
        self.attention.append(np.array(weights).reshape(len(probs), -1))  # (batch, window) as a windowed file's
        return probs, next_state


def per_sample(call):
    """`call` for a batch, made of one call per sample (for files converted for another batch size)."""
    def looped(*batches):
        results = [call(*(np.ascontiguousarray(b[i:i + 1]) for b in batches)) for i in range(len(batches[0]))]
        if isinstance(results[0], np.ndarray):
            return np.concatenate(results)
        return tuple(np.concatenate(parts) for parts in zip(*results, strict=True))
    return looped


def probs_of_windows(backend, windows, chunk=256):
    """Next-character probabilities (N, vocab) after each of `windows` (N, window, ...) of model inputs, from
    either graph, in chunks the backend accepts. A step file is fed each window from a zero state, so it
    computes what the windowed model computes (its drift only shows over longer runs)."""
    if not backend.supports_batch(chunk):
        chunk = backend.batch or 1
    rows = []
    for start in range(0, len(windows), chunk):
        part = np.ascontiguousarray(windows[start:start + chunk])
        rows.append(_window_probs(backend, part) if backend.supports_batch(len(part))
                    else np.concatenate([_window_probs(backend, part[i:i + 1]) for i in range(len(part))]))
    return np.concatenate(rows)


def _window_probs(backend, windows):
    if backend.graph == "window":
        return backend.probs(windows)
    state = np.zeros((len(windows), *backend.state_shape), dtype=np.float32)
    for column in range(windows.shape[1]):
        probs, state = backend.step(np.ascontiguousarray(windows[:, column]), state)
    return probs


def load(path, backend=None, threads=1, trust=False):
    """A Generator for a model file: `load("model-fp32.tflite").generate("the star", 200, temperature=0)`.
    `trust` runs an exported file that carries no integrity digest."""
    return Generator(open_backend(path, backend=backend, threads=threads, trust=trust))
