"""The generation loop's own cost per character: everything Generator does except the model call.

Generator is driven by a backend that returns the same fixed probabilities at once (a windowed and a step
one, for both sessions), so what is timed is the session's bookkeeping, the sampler and the loop. Reported
as microseconds per character: greedy, and at carol-generate's sampled settings.
"""

import numpy as np

from carolgen.runtime.generate import Generator

SETTINGS = {"greedy": {"temperature": 0}, "sampled": {"temperature": 0.7, "top_p": 0.9, "top_k": 0}}


class FixedBackend:
    """A backend whose every call returns the same probabilities (a peaked row, as a trained model gives)."""

    name, kernels, batch = "fixed", "", None

    def __init__(self, info, graph):
        self.info, self.vocab, self.window, self.graph = info, info.vocab, info.window, graph
        logits = np.random.default_rng(0).normal(0, 3, info.vocab.size)
        self.row = (np.exp(logits) / np.exp(logits).sum()).astype(np.float32)[None]
        self.state_shape = (info.window + 1, 1)

    def supports_batch(self, batch):
        return batch == 1

    def probs(self, windows):
        return self.row

    def step(self, chars, state):
        return self.row, state


def per_char_us(generator, settings, chars, rounds):
    """Median over rounds of microseconds per generated character."""
    generator.generate("", chars // 10, seed=0, **settings)
    times = []
    for _ in range(rounds):
        generator.generate("", chars, seed=0, **settings)
        times.append(generator.timing.total_seconds / chars * 1e6)
    return float(np.median(times))


def loop_overhead(info, chars=20_000, rounds=5):
    """{graph: {setting: µs per character}} for one sample."""
    return {graph: {name: per_char_us(Generator(FixedBackend(info, graph)), settings, chars, rounds)
                    for name, settings in SETTINGS.items()}
            for graph in ("window", "step")}

