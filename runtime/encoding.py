"""The encoding contract, defined once for training and for every device.

A model sees a window of `window` characters, each fed as ``index / vocab_size`` (a single float per
position, input shape (window, 1)). The vocabulary is the sorted set of the training corpus's characters.

Padding: a prime shorter than the window is left-padded with the pad character, a space. Training pads the
start of every song the same way (see carolgen.corpus.song_windows), so an empty or short prime looks
exactly like the beginning of a song the model has seen: space is the corpus's word separator and always
in the vocabulary, so it never needs a character the model was not trained on.
"""
import re
from dataclasses import dataclass

import numpy as np

from .errors import CarolError

WINDOW = 100
PAD_CHAR = " "
UNKNOWN_POLICIES = ("error", "drop", "replace")


@dataclass(frozen=True)
class Vocab:
    """Characters <-> indices, and indices -> the model's float inputs."""

    chars: str

    def __post_init__(self):
        if len(self.chars) < 2 or len(set(self.chars)) != len(self.chars) or "".join(sorted(self.chars)) != self.chars:
            raise CarolError("a vocabulary must be at least two distinct characters in sorted order")

    @classmethod
    def from_text(cls, text):
        return cls("".join(sorted(set(text))))

    @property
    def size(self):
        return len(self.chars)

    @property
    def pad_char(self):
        """The pad character: a space when the vocabulary has one, else its first character."""
        return PAD_CHAR if PAD_CHAR in self.chars else self.chars[0]

    def index(self, text):
        """Indices of `text`'s characters (all must be in the vocabulary)."""
        lookup = {c: i for i, c in enumerate(self.chars)}
        return np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, indices):
        return "".join(self.chars[i] for i in indices)

    def values(self, indices):
        """The model's input values for some indices: index / vocab_size as float32."""
        return (np.asarray(indices, dtype=np.float32) / np.float32(self.size)).astype(np.float32)

    def clean(self, text, unknown="error"):
        """Apply the unknown-character policy: 'error' (default), 'drop' them, or 'replace' with the pad."""
        if unknown not in UNKNOWN_POLICIES:
            raise CarolError(f"unknown-character policy must be one of {', '.join(UNKNOWN_POLICIES)}, not {unknown!r}")
        missing = sorted(set(text) - set(self.chars))
        if not missing:
            return text
        if unknown == "drop":
            return "".join(c for c in text if c in self.chars)
        if unknown == "replace":
            return "".join(c if c in self.chars else self.pad_char for c in text)
        shown = " ".join(repr(c) for c in missing)
        raise CarolError(f"the prime has characters outside the model's vocabulary: {shown} "
                         "(use --unknown drop or --unknown replace)")

    def window_indices(self, prime, window=WINDOW):
        """The last `window` characters of `prime` as indices, left-padded with the pad character."""
        text = prime[-window:] if window else ""
        text = self.pad_char * (window - len(text)) + text
        return self.index(text)


def encode_windows(vocab, texts, window=WINDOW):
    """Model input for a batch of texts: float32 (len(texts), window, 1), each text padded or cut to fit."""
    rows = [vocab.values(vocab.window_indices(t, window)) for t in texts]
    return np.stack(rows)[:, :, None]


NORMALISE_DEFAULTS = {"lowercase": True, "strip_tags": True, "newlines_to_spaces": True,
                      "commas_to_spaces": True, "collapse_spaces": True}


def normalise(text, **options):
    """Normalise lyrics the way training did. Each step is an option; the defaults are the seed's."""
    unknown = set(options) - set(NORMALISE_DEFAULTS)
    if unknown:
        raise CarolError(f"unknown normalisation option(s): {', '.join(sorted(unknown))}")
    steps = {**NORMALISE_DEFAULTS, **options}
    if steps["lowercase"]:
        text = text.lower()
    if steps["strip_tags"]:
        text = re.sub(r"<[^>]*>", "", text)
    if steps["newlines_to_spaces"]:
        text = re.sub(r"[\r\n]+", " ", text)
    if steps["commas_to_spaces"]:
        text = text.replace(",", " ")
    if steps["collapse_spaces"]:
        text = re.sub(r"[ \t]+", " ", text)
    return text
