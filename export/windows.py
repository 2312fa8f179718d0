"""Real lyrics windows for calibration (training songs) and for the parity gate (held-out songs)."""
import numpy as np

from carolgen.corpus import load_lyrics, song_windows
from carolgen.runtime.errors import CarolError

PRIME_COUNT = 5


def _corpus(info, lyrics_dir):
    """The folder the user named, else the built-in lyrics. Never a folder named inside the checkpoint:
    a file's metadata must not choose what the exporter reads."""
    return load_lyrics(lyrics_dir, **info.normalisation)


def _songs(info, corpus, role):
    """Songs of the role ('train_songs' or 'held_out_songs') recorded in training, else all of them."""
    training = info.document.get("training", {})
    recorded = training.get(role, [])
    names = [n for n in recorded if n in corpus.songs]
    if recorded and not names:
        raise CarolError(f"none of the checkpoint's {role.replace('_', ' ')} are in {corpus.source}: it was trained "
                         f"on a lyrics folder named {training.get('lyrics')!r}; pass it with --calibration-lyrics")
    chosen = names or sorted(corpus.songs)
    return [info.vocab.clean(corpus.songs[n], "drop") for n in chosen]


def _pick(count, seed, *arrays):
    """The same seeded subsample (in order) of at most `count` rows of each array."""
    total = len(arrays[0])
    if total <= count:
        return arrays
    keep = np.sort(np.random.default_rng(seed).choice(total, count, replace=False))
    return tuple(a[keep] for a in arrays)


def calibration_windows(info, lyrics_dir=None, count=500, seed=0):
    """(windows float32 (N, window, 1), description for the metadata) from the training songs."""
    corpus = _corpus(info, lyrics_dir)
    windows, _ = song_windows(info.vocab, _songs(info, corpus, "train_songs"), info.encoding, info.window)
    picked, = _pick(count, seed, windows)
    return picked, {"source": corpus.source, "windows": int(len(picked)), "seed": seed, "songs": "training"}


def held_out_set(info, lyrics_dir=None, count=500, seed=1):
    """(windows, next-character targets, five greedy primes) from the held-out songs.

    The primes are the start of a song, then 40-character snippets of held-out songs."""
    corpus = _corpus(info, lyrics_dir)
    songs = _songs(info, corpus, "held_out_songs")
    windows, targets = song_windows(info.vocab, songs, info.encoding, info.window)
    windows, targets = _pick(count, seed, windows, targets)
    starts = [(song, int(len(song) * fraction)) for fraction in (0, 0.5, 0.25, 0.75) for song in songs]
    openings = [song[start:start + 40] for song, start in starts]
    return windows, targets, ([""] + openings)[:PRIME_COUNT]
