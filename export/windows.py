"""Real lyrics windows for calibration (training songs) and for the parity gate (held-out and training songs)."""
import numpy as np

from carolgen.corpus import load_lyrics, song_windows
from carolgen.runtime.errors import CarolError

PRIME_COUNT = 5
PARITY_WINDOWS = 2000
STREAM_LENGTH = 250  # characters a step file is run for after its prime: a generated verse


def _corpus(info, lyrics_dir):
    """The folder the user named, else the built-in lyrics. Never a folder named inside the checkpoint:
    a file's metadata must not choose what the exporter reads."""
    return load_lyrics(lyrics_dir, **info.normalisation)


def _songs(info, corpus, role):
    """Songs of the role ('train_songs' or 'held_out_songs') recorded in training, else all of them."""
    training = info.section("training")
    recorded = training.get(role, [])
    names = [n for n in recorded if n in corpus.songs]
    if recorded and not names:
        raise CarolError(f"none of the checkpoint's {role.replace('_', ' ')} are in {corpus.source}: it was trained "
                         f"on a lyrics folder named {training.get('lyrics')!r}; pass it with --calibration-lyrics")
    chosen = names or sorted(corpus.songs)
    return [info.vocab.clean(corpus.songs[n], "drop") for n in chosen]


def _windows_of_every_song(info, songs, count, seed):
    """(windows, targets) of at most `count` positions, seeded, spread over every song: each song gives an
    equal share (or all it has), so no song is left out and no long song dominates."""
    rng = np.random.default_rng(seed)
    share = -(-count // max(len(songs), 1))
    picked = []
    for song in songs:
        windows, targets = song_windows(info.vocab, [song], info.encoding, info.window)
        keep = np.sort(rng.choice(len(windows), min(share, len(windows)), replace=False))
        picked.append((windows[keep], targets[keep]))
    windows = np.concatenate([w for w, _ in picked])
    targets = np.concatenate([t for _, t in picked])
    if len(windows) > count:
        keep = np.sort(rng.choice(len(windows), count, replace=False))
        windows, targets = windows[keep], targets[keep]
    return windows, targets


def calibration_windows(info, lyrics_dir=None, count=500, seed=0):
    """(windows (N, window, ...) in the model's encoding, description for the metadata) from every training song."""
    corpus = _corpus(info, lyrics_dir)
    windows, _ = _windows_of_every_song(info, _songs(info, corpus, "train_songs"), count, seed)
    return windows, {"source": corpus.source, "windows": int(len(windows)), "seed": seed, "songs": "training"}


def step_calibration(keras_step_backend, windows):
    """A step graph's calibration inputs from calibration windows: (last character of each window, the state
    the Keras step model reaches through the characters before it, from a zero state)."""
    state = np.zeros((len(windows), *keras_step_backend.state_shape), dtype=np.float32)
    for column in range(windows.shape[1] - 1):
        _, state = keras_step_backend.step(np.ascontiguousarray(windows[:, column]), state)
    return np.ascontiguousarray(windows[:, -1]), state


def parity_set(info, lyrics_dir=None, count=PARITY_WINDOWS, seed=1):
    """(windows, next-character targets, held-out mask, five greedy primes): half the windows from held-out
    songs (perplexity is measured on these), half from training songs, seeded, spread over every song.

    The primes are the start of a song, then 40-character snippets of held-out songs."""
    corpus = _corpus(info, lyrics_dir)
    held_out = _songs(info, corpus, "held_out_songs")  # every song when training recorded no split
    split = bool(info.section("training").get("held_out_songs"))
    parts = [_windows_of_every_song(info, held_out, count // 2 if split else count, seed)]
    if split:
        parts.append(_windows_of_every_song(info, _songs(info, corpus, "train_songs"), count - count // 2, seed))
    mask = np.concatenate([np.full(len(t), i == 0) for i, (_, t) in enumerate(parts)])
    return (np.concatenate([w for w, _ in parts]), np.concatenate([t for _, t in parts]), mask,
            _primes(held_out))


def _primes(held_out):
    starts = [(song, int(len(song) * fraction)) for fraction in (0, 0.5, 0.25, 0.75) for song in held_out]
    openings = [song[start:start + 40] for song, start in starts]
    return ([""] + openings)[:PRIME_COUNT]


def parity_streams(info, lyrics_dir=None, count=PARITY_WINDOWS, length=STREAM_LENGTH, seed=1):
    """(streams (S, window + length, ...) in the model's encoding, next-character targets (S, length), held-out
    mask (S,), five greedy primes) for step files: count // length stretches of songs, half of them from
    held-out songs, seeded, each song's own text left-padded as training pads it. A stream's first `window`
    characters are its prime; the `length` after it are predicted one by one, as generation goes."""
    corpus = _corpus(info, lyrics_dir)
    held_out = _songs(info, corpus, "held_out_songs")
    split = bool(info.section("training").get("held_out_songs"))
    groups = [held_out] + ([_songs(info, corpus, "train_songs")] if split else [])
    length = min(length, max(len(song) for group in groups for song in group))
    rng = np.random.default_rng(seed)
    total = max(1, count // length)
    streams, held = [], []
    for number in range(total):
        group = groups[number % len(groups)]
        long_enough = [song for song in group if len(song) >= length] or [max(group, key=len)]
        song = long_enough[rng.integers(len(long_enough))]
        padded = info.vocab.index(info.vocab.pad_char * info.window + song)
        start = rng.integers(len(padded) - info.window - length + 1)
        streams.append(padded[start:start + info.window + length])
        held.append(group is held_out)
    streams = np.stack(streams)
    values = info.encoding.inputs(info.encoding.values(streams, info.vocab))
    return values, streams[:, info.window:].astype(np.int32), np.array(held), _primes(held_out)
