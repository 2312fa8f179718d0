"""The baseline: the seed project's loop, Keras `model.predict` on one window per character."""
from carolgen.runtime.backends import Backend


class SeedLoop:
    """A backend that calls model.predict for every window, as the seed's generation loop did."""

    name, kernels, graph = "keras-predict", "", "window"

    def __init__(self, model, info):
        self.model, self.info = model, info
        self.vocab, self.window, self.batch = info.vocab, info.window, None

    def supports_batch(self, batch):
        return True

    def probs(self, windows):
        return self.model.predict(windows, verbose=0)


def open_seed_loop(model_file, row=None, threads=1, reference_kernels=False):
    from carolgen.checkpoint import load_checkpoint
    return SeedLoop(*load_checkpoint(model_file.path))


SEED_LOOP = Backend("keras-predict", "keras", "tensorflow", open_seed_loop)
