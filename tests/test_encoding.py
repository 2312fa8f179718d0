import numpy as np
import pytest

from carolgen.runtime.encoding import ENCODINGS, Vocab, encode_windows, normalise
from carolgen.runtime.errors import CarolError

VOCAB = Vocab(" abcdehlrst")


def test_seed_encoding_is_index_over_vocab_size():
    values = ENCODINGS["index/vocab_size"].values(VOCAB.index("abc"), VOCAB)
    assert values.dtype == np.float32
    assert np.array_equal(values, np.float32([1, 2, 3]) / np.float32(VOCAB.size))


def test_embedding_encoding_is_the_index():
    values = ENCODINGS["index"].values(VOCAB.index("abc"), VOCAB)
    assert values.dtype == np.int32 and values.tolist() == [1, 2, 3]


def test_short_prime_is_left_padded_with_space():
    indices = VOCAB.window_indices("abc", window=6)
    assert VOCAB.decode(indices) == "   abc"
    assert VOCAB.pad_char == " "


def test_long_prime_keeps_its_last_window():
    assert VOCAB.decode(VOCAB.window_indices("abcdeabcde", window=4)) == "bcde"


def test_empty_prime_is_all_padding():
    assert VOCAB.decode(VOCAB.window_indices("", window=5)) == "     "


def test_pad_falls_back_to_first_char_without_space():
    assert Vocab("abc").pad_char == "a"


def test_unknown_characters_policies():
    with pytest.raises(CarolError, match="'x' 'z'"):
        VOCAB.clean("axbz")
    assert VOCAB.clean("axbz", "drop") == "ab"
    assert VOCAB.clean("axbz", "replace") == "a b "
    with pytest.raises(CarolError):
        VOCAB.clean("a", "ignore")


def test_encode_windows_shape():
    x = encode_windows(VOCAB, ["ab", "abc"], ENCODINGS["index/vocab_size"], window=5)
    assert x.shape == (2, 5, 1) and x.dtype == np.float32
    x = encode_windows(VOCAB, ["ab", "abc"], ENCODINGS["index"], window=5)
    assert x.shape == (2, 5) and x.dtype == np.int32


def test_normalise_folds_typographic_quotes_and_dashes():
    assert normalise("Mary\u2019s \u201cbells\u201d \u2013 ring\u2014out") == 'mary\'s "bells" - ring-out'
    assert "\u2019" in normalise("Mary\u2019s", fold_typography=False)


def test_normalise_defaults_and_options():
    raw = "Snow <i>Falls</i>,\nSoft   now"
    assert normalise(raw) == "snow falls  soft now".replace("  ", " ")
    assert normalise(raw, lowercase=False, strip_tags=False).startswith("Snow <i>Falls</i>")
    with pytest.raises(CarolError):
        normalise(raw, shout=True)


def test_vocab_must_be_sorted_and_distinct():
    with pytest.raises(CarolError):
        Vocab("ba")
    with pytest.raises(CarolError):
        Vocab("aa")
