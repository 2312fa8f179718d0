"""Lyrics in, training windows out: load a folder of songs, split whole songs into train / held-out."""
import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carolgen.runtime.encoding import WINDOW, normalise
from carolgen.runtime.errors import CarolError
from carolgen.runtime.inputs import read_text_file


def builtin_lyrics_dir():
    """The folder of the built-in corpus, installed with the package."""
    import carolgen.lyrics
    return Path(carolgen.lyrics.__file__).parent


@dataclass
class Corpus:
    """Normalised songs by name, in file-name order."""

    songs: dict
    source: str

    @property
    def text(self):
        return " ".join(self.songs.values())

    def summary(self):
        chars = sum(len(s) for s in self.songs.values())
        return f"{len(self.songs)} songs, {chars:,} characters, {len(set(self.text))} distinct characters"


def load_lyrics(folder=None, **normalise_options):
    """Read every .txt file in `folder` (default: the built-in lyrics) as one song, normalised."""
    folder = Path(folder) if folder is not None else builtin_lyrics_dir()
    if not folder.is_dir():
        raise CarolError(f"lyrics folder not found: {folder}")
    paths = sorted(folder.glob("*.txt"))
    if not paths:
        raise CarolError(f"no .txt files in {folder}")
    songs = {}
    for path in paths:
        text = normalise(read_text_file(path, "lyrics file"), **normalise_options).strip()
        if text:
            songs[path.stem] = text
    if not songs:
        raise CarolError(f"every .txt file in {folder} is empty after normalisation")
    return Corpus(songs, str(folder))


MIN_HELD_OUT = 8  # songs, once a corpus has twice as many: a held-out loss not decided by the luck of a few


def split_songs(corpus, held_out_fraction=0.1, seed=0):
    """Choose whole songs to hold out (seeded); returns (train_names, held_out_names), both sorted.

    At least `held_out_fraction` of the songs, and at least MIN_HELD_OUT where the corpus has twice that."""
    names = sorted(corpus.songs)
    if len(names) < 2:
        raise CarolError("need at least two songs: one to train on and one to hold out")
    count = max(1, round(len(names) * held_out_fraction))
    if len(names) >= 2 * MIN_HELD_OUT:
        count = max(count, MIN_HELD_OUT)
    if count >= len(names):
        raise CarolError(f"holding out {held_out_fraction:g} of {len(names)} songs leaves none to train on")
    held = sorted(np.random.default_rng(seed).choice(names, size=count, replace=False).tolist())
    return [n for n in names if n not in held], held


def split_warnings(corpus, train_names, held_names, near_duplicate=0.5):
    """What a user should know about a split: characters only the held-out songs use, and held-out songs
    that nearly duplicate a training song (difflib ratio of their word sequences above `near_duplicate`)."""
    warnings = []
    train_chars = set("".join(corpus.songs[n] for n in train_names))
    held_only = sorted(set("".join(corpus.songs[n] for n in held_names)) - train_chars)
    if held_only:
        warnings.append(f"characters only in held-out songs (the model never sees them in training): "
                        f"{' '.join(repr(c) for c in held_only)}")
    words = {name: corpus.songs[name].split() for name in corpus.songs}
    for held in held_names:
        for trained in train_names:
            ratio = difflib.SequenceMatcher(None, words[held], words[trained], autojunk=False).ratio()
            if ratio > near_duplicate:
                warnings.append(f"held-out song {held} nearly duplicates training song {trained} "
                                f"(difflib ratio {ratio:.2f}): its held-out loss will flatter the model")
    return warnings


def song_windows(vocab, songs, encoding, window=WINDOW):
    """Every (window, next character) pair of the songs, each song left-padded with the pad character.

    Returns x: the model inputs (N, window, ...) in `encoding`, and y: int32 (N,). The padding teaches the
    model how songs begin, and is the same padding the runtime gives a short prime.
    """
    xs, ys = [], []
    for song in songs:
        indices = vocab.index(vocab.pad_char * window + song)
        starts = np.arange(len(song))
        positions = starts[:, None] + np.arange(window)[None, :]
        xs.append(encoding.values(indices[positions], vocab))
        ys.append(indices[starts + window])
    return encoding.inputs(np.concatenate(xs)), np.concatenate(ys).astype(np.int32)

