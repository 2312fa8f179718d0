"""The generation loop's own cost per character: everything Generator does except the model call.

Generator is driven by a backend that returns fixed probabilities at once (a windowed and a step one, for
both sessions): real rows the model computed (the Keras reference's rows on the parity windows), taken in
turn, so that the sampler meets distributions as peaked as a trained model's. What is timed is the
session's bookkeeping, the sampler and the loop, in microseconds per character: greedy, and at temperature
0.7 + top-p 0.9.
"""

import numpy as np

from carolgen.runtime.generate import Generator

SETTINGS = {"greedy": {"temperature": 0}, "sampled": {"temperature": 0.7, "top_p": 0.9, "top_k": 0}}


class FixedBackend:
    """A backend whose calls return the given probability rows (N, vocab), one after another, at once."""

    name, kernels, batch = "fixed", "", None

    def __init__(self, info, graph, rows):
        self.info, self.vocab, self.window, self.graph = info, info.vocab, info.window, graph
        self.rows, self.calls = np.ascontiguousarray(rows, dtype=np.float32), 0
        self.state_shape = (info.window + 1, 1)

    def supports_batch(self, batch):
        return batch == 1

    def probs(self, windows):
        self.calls = (self.calls + 1) % len(self.rows)
        return self.rows[self.calls:self.calls + 1]

    def step(self, chars, state):
        return self.probs(None), state


def per_char_us(generator, settings, chars, rounds):
    """Median over rounds of microseconds per generated character."""
    generator.generate("", chars // 10, seed=0, **settings)
    times = []
    for _ in range(rounds):
        generator.generate("", chars, seed=0, **settings)
        times.append(generator.timing.total_seconds / chars * 1e6)
    return float(np.median(times))


def loop_overhead(info, rows, chars=20_000, rounds=5):
    """{graph: {setting: µs per character}} for one sample, the backend returning `rows` in turn."""
    return {graph: {name: per_char_us(Generator(FixedBackend(info, graph, rows)), settings, chars, rounds)
                    for name, settings in SETTINGS.items()}
            for graph in ("window", "step")}

