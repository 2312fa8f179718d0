"""The encoding contract, defined once for training and for every device.

A model sees a window of `window` characters. How each character is fed is the model's input encoding,
recorded in its metadata and looked up in ENCODINGS: the seed architecture takes ``index / vocab_size``
(one float32 per position, input shape (window, 1)); the embedding architecture takes the index itself
(int32, input shape (window,)). The vocabulary is the sorted set of the training corpus's characters.

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


@dataclass(frozen=True)
class InputEncoding:
    """One row of the encoding table: how character indices become a model's input."""

    name: str  # what the metadata's "encoding" field says
    dtype: type
    per_position: tuple  # the input's shape per window position: (1,) one float, () one index
    scaled: bool  # divided by the vocabulary size

    @property
    def keras_dtype(self):
        return np.dtype(self.dtype).name

    def values(self, indices, vocab):
        """The model's input values for some indices (any shape), without the per-position axis."""
        values = np.asarray(indices).astype(self.dtype)
        return values / self.dtype(vocab.size) if self.scaled else values

    def inputs(self, values):
        """Values (batch, window) shaped as the model's input (batch, window, *per_position)."""
        return values.reshape(values.shape + self.per_position)


ENCODINGS = {e.name: e for e in (
    InputEncoding("index/vocab_size", np.float32, (1,), scaled=True),
    InputEncoding("index", np.int32, (), scaled=False),
)}


def encode_windows(vocab, texts, encoding, window=WINDOW):
    """Model input for a batch of texts, each padded or cut to the window."""
    rows = [encoding.values(vocab.window_indices(t, window), vocab) for t in texts]
    return encoding.inputs(np.stack(rows))


NORMALISE_DEFAULTS = {"fold_typography": True, "lowercase": True, "strip_tags": True, "newlines_to_spaces": True,
                      "commas_to_spaces": True, "collapse_spaces": True}
# Typographic quotes and dashes -> their ASCII forms, so a lyric pasted from a word processor uses the
# characters the model was trained on.
TYPOGRAPHY = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def normalise(text, **options):
    """Normalise lyrics the way training did. Each step is an option; the defaults are the seed's."""
    unknown = set(options) - set(NORMALISE_DEFAULTS)
    if unknown:
        raise CarolError(f"unknown normalisation option(s): {', '.join(sorted(unknown))}")
    steps = {**NORMALISE_DEFAULTS, **options}
    if steps["fold_typography"]:
        text = text.translate(TYPOGRAPHY)
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
