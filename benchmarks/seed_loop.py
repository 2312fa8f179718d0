"""The baseline: the seed project's loop, Keras `model.predict` on one window per character."""


class SeedLoop:
    """A backend that calls model.predict for every window, as the seed's generation loop did."""

    name = "keras-predict"

    def __init__(self, model, info):
        self.model, self.info = model, info
        self.vocab, self.window, self.batch = info.vocab, info.window, None

    def supports_batch(self, batch):
        return True

    def probs(self, windows):
        return self.model.predict(windows, verbose=0)


def open_seed_loop(path):
    from carolgen.checkpoint import load_checkpoint
    return SeedLoop(*load_checkpoint(path))
