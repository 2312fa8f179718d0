"""Real lyrics windows for calibration (training songs) and for the parity gate (held-out and training songs)."""
import numpy as np

from carolgen.corpus import load_lyrics, song_windows
from carolgen.runtime.errors import CarolError

PRIME_COUNT = 5
PARITY_WINDOWS = 2000


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
    starts = [(song, int(len(song) * fraction)) for fraction in (0, 0.5, 0.25, 0.75) for song in held_out]
    openings = [song[start:start + 40] for song, start in starts]
    return (np.concatenate([w for w, _ in parts]), np.concatenate([t for _, t in parts]), mask,
            ([""] + openings)[:PRIME_COUNT])
