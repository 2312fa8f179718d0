"""Text quality, measured: the word rate of generated text.

Word rate: the share of the words a model writes (temperature 0.7, top-p 0.9, five samples of 2,000
characters from a fixed seed, starting a song) that occur anywhere in its training lyrics. A model that
babbles ("the sint so the wiar") scores low; one that writes words scores near 1. It says nothing about
sense or metre, only whether the words are real; carol-train and carol-bench report it for every model.
"""
import re

WORD_RATE_SETTINGS = {"temperature": 0.7, "top_p": 0.9, "num_samples": 5, "length": 2000, "seed": 2026}
PUNCTUATION = re.compile(r"^[^a-z0-9]+|[^a-z0-9]+$")


def words(text):
    """The words of a text, lower-cased, with punctuation stripped from their ends."""
    return [w for w in (PUNCTUATION.sub("", token) for token in text.lower().split()) if w]


def lyric_words(songs):
    """The set of words in some songs (normalised lyrics)."""
    return {w for song in songs for w in words(song)}


def quality_samples(generator, settings=WORD_RATE_SETTINGS):
    """The texts the word rate is measured on (a list, one per sample)."""
    options = dict(settings)
    return generator.generate_batch("", options.pop("length"), **options)


def word_rate_of(texts, known):
    """The share of the words of `texts` that are in `known`; the last word of each text may be cut, so
    it is not counted."""
    generated = [w for text in texts for w in words(text)[:-1]]
    return sum(w in known for w in generated) / len(generated) if generated else 0.0


def word_rate(generator, known, settings=WORD_RATE_SETTINGS):
    """The share of generated words that are in `known` (the training lyrics' words)."""
    return word_rate_of(quality_samples(generator, settings), known)


def training_words(info, lyrics_dir=None):
    """The words of the songs a model was trained on, from `lyrics_dir` or the built-in lyrics: the songs its
    checkpoint lists, or (an exported file) every song but the held-out ones its export recorded."""
    from carolgen.corpus import load_lyrics
    corpus = load_lyrics(lyrics_dir, **info.normalisation)
    trained = info.section("training").get("train_songs")
    held_out = set(info.section("export").get("held_out_songs", []))
    names = [n for n in trained if n in corpus.songs] if trained else [n for n in corpus.songs if n not in held_out]
    return lyric_words(corpus.songs[n] for n in names)
