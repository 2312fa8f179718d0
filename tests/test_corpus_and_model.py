import numpy as np
import pytest
from conftest import run_cli

from carolgen.corpus import builtin_lyrics_dir, load_lyrics, song_windows, split_songs
from carolgen.runtime.encoding import ENCODINGS, Vocab
from carolgen.runtime.errors import CarolError


def test_builtin_corpus_is_big_enough():
    corpus = load_lyrics()
    assert len(corpus.songs) >= 100
    assert sum(len(s) for s in corpus.songs.values()) >= 100_000
    assert Vocab.from_text(corpus.text).size == 33


def test_no_two_songs_share_more_than_a_tenth_of_their_lines():
    """So held-out songs are really unseen: refrains repeat within a song, never across songs."""
    import itertools
    import re
    lines = {}
    for path in sorted(builtin_lyrics_dir().glob("*.txt")):
        raw = {re.sub(r"[^a-z ]", "", line.lower()).strip() for line in path.read_text().splitlines()}
        lines[path.stem] = raw - {""}
    for a, b in itertools.combinations(lines, 2):
        shared = len(lines[a] & lines[b]) / min(len(lines[a]), len(lines[b]))
        assert shared <= 0.10, (a, b, sorted(lines[a] & lines[b]))


def test_split_holds_out_at_least_eight_songs_of_sixteen_or_more():
    from carolgen.corpus import Corpus
    many = Corpus({f"song{i:02d}": "la la" for i in range(20)}, "mem")
    assert len(split_songs(many, 0.1)[1]) == 8
    assert len(split_songs(load_lyrics(), 0.1)[1]) >= max(8, round(0.1 * len(load_lyrics().songs)))
    with pytest.raises(CarolError, match="leaves none"):
        split_songs(Corpus({"a": "x", "b": "y"}, "mem"), 0.99)


def test_split_warnings_name_held_out_only_characters_and_near_duplicates():
    from carolgen.corpus import Corpus, split_warnings
    corpus = Corpus({"one": "the snow falls on the hill and the bells ring out", "two": "zebra quiz",
                     "three": "the snow falls on the hill and the bells ring loud"}, "mem")
    warnings = split_warnings(corpus, ["one"], ["two", "three"])
    assert any("only in held-out" in w and "'z'" in w for w in warnings)
    assert any("three nearly duplicates training song one" in w for w in warnings)
    assert not any("two nearly" in w for w in warnings)


def test_word_rate_counts_known_words_and_drops_the_cut_last_word():
    from carolgen.quality import lyric_words, word_rate_of, words
    known = lyric_words(["the snow falls; ma'am!"])
    assert words("The snow, falls! ma'am") == ["the", "snow", "falls", "ma'am"]
    assert word_rate_of(["the snow wiar sn"], known) == pytest.approx(2 / 3)
    assert word_rate_of([""], known) == 0.0


def test_diverged_training_exits_1_and_keeps_no_checkpoint(tmp_path, tiny_lyrics):
    result = run_cli("carol-train", "--lyrics", tiny_lyrics, "--epochs", "1", "--learning-rate", "1e30",
                     "--held-out", "0.25", "--out", tmp_path / "run")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "diverged" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run" / "model.keras").exists()


def test_split_is_seeded_whole_songs():
    corpus = load_lyrics()
    train, held = split_songs(corpus, 0.1, seed=5)
    assert split_songs(corpus, 0.1, seed=5) == (train, held)
    assert not set(train) & set(held) and len(train) + len(held) == len(corpus.songs)


def test_windows_pad_each_song_start():
    vocab = Vocab(" abc")
    x, y = song_windows(vocab, ["abc"], ENCODINGS["index/vocab_size"], window=3)
    assert x.shape == (3, 3, 1) and vocab.decode(y) == "abc"
    assert vocab.decode(np.rint(x[0, :, 0] * vocab.size).astype(int)) == "   "
    x, _ = song_windows(vocab, ["abc"], ENCODINGS["index"], window=3)
    assert x.shape == (3, 3) and x.dtype == np.int32 and vocab.decode(x[2]) == " ab"


def test_bad_lyrics_folders(tmp_path):
    with pytest.raises(CarolError, match="not found"):
        load_lyrics(tmp_path / "missing")
    with pytest.raises(CarolError, match="no .txt"):
        load_lyrics(tmp_path)
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 au lait")
    with pytest.raises(CarolError, match="not UTF-8"):
        load_lyrics(tmp_path)


@pytest.mark.parametrize("case", ["missing", "empty", "latin1"])
def test_carol_train_bad_input_is_one_line_exit_2(tmp_path, case):
    folder = tmp_path / "songs"
    if case != "missing":
        folder.mkdir()
    if case == "latin1":
        (folder / "song.txt").write_bytes(b"no\xebl no\xebl")
    result = run_cli("carol-train", "--lyrics", folder, "--out", tmp_path / "run")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "error:" in result.stderr
    assert not (tmp_path / "run" / "model.keras").exists()


def test_model_has_the_seed_parameter_count():
    from carolgen.model import ModelConfig, build_model
    seed = build_model(ModelConfig.for_architecture("seed", 33))
    assert seed.count_params() == 17_825
    assert [layer.name for layer in seed.layers][:2] == ["window", "lstm"] and seed.inputs[0].shape[1:] == (100, 1)


def test_embedding_architecture_takes_indices_within_the_edge_budget():
    from carolgen.model import ModelConfig, build_model
    model = build_model(ModelConfig.for_architecture("embedding", 33))
    assert model.inputs[0].dtype == "int32" and model.inputs[0].shape[1:] == (100,)
    assert "embedding" in [layer.name for layer in model.layers]
    assert model.count_params() <= 150_000


def test_checkpoint_loads_in_safe_mode_with_its_vocab(tiny_run):
    import keras

    from carolgen.checkpoint import load_checkpoint
    model, info = load_checkpoint(tiny_run / "model.keras")
    again = keras.saving.load_model(tiny_run / "model.keras", safe_mode=True)
    x = info.encoding.inputs(np.random.default_rng(0).integers(0, info.vocab.size, (2, info.window)).astype(np.int32))
    assert np.array_equal(model(x).numpy(), again(x).numpy())
    assert info.document["training"]["held_out_songs"] and info.vocab.size == model.output.shape[-1]


def test_run_folder_has_every_artifact(tiny_run):
    for name in ["model.keras", "history.csv", "loss.png", "attention.png"]:
        assert (tiny_run / name).stat().st_size > 0
    lines = (tiny_run / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss" and len(lines) == 3


def test_attention_weights_are_a_distribution(tiny_checkpoint):
    from carolgen.checkpoint import load_checkpoint
    from carolgen.model import attention_model
    model, info = load_checkpoint(tiny_checkpoint)
    window = info.encoding.inputs(np.zeros((1, info.window), info.encoding.dtype))
    probs, weights = attention_model(model)(window)
    assert weights.shape == (1, info.window) and np.sum(weights) == pytest.approx(1.0, abs=1e-5)


def test_training_is_reproducible(tmp_path, tiny_lyrics):
    from carolgen.checkpoint import load_checkpoint
    from carolgen.train import TrainConfig, train
    weights = []
    for name in ["a", "b"]:
        train(TrainConfig(lyrics=str(tiny_lyrics), epochs=1, batch_size=64, seed=11, held_out_fraction=0.25),
              tmp_path / name, log=lambda m: None)
        weights.append(load_checkpoint(tmp_path / name / "model.keras")[0].get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))



def test_a_nan_loss_is_a_diverged_run():
    from carolgen.model import ModelConfig, build_model
    from carolgen.runtime.errors import CheckFailed
    from carolgen.train import check_converged
    model = build_model(ModelConfig.for_architecture("seed", 5, window=8))
    with pytest.raises(CheckFailed, match="NaN or infinite"):
        check_converged(model, {"loss": [2.0], "val_loss": [float("nan")]}, baseline=1.6)
    check_converged(model, {"loss": [2.0], "val_loss": [1.5]}, baseline=1.6)
