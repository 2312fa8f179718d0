import numpy as np
import pytest
from conftest import run_cli

from carolgen.corpus import load_lyrics, song_windows, split_songs
from carolgen.runtime.encoding import Vocab
from carolgen.runtime.errors import CarolError


def test_builtin_corpus_is_big_enough():
    corpus = load_lyrics()
    assert len(corpus.songs) >= 30
    assert sum(len(s) for s in corpus.songs.values()) >= 25_000
    assert Vocab.from_text(corpus.text).size == 33


def test_split_is_seeded_whole_songs():
    corpus = load_lyrics()
    train, held = split_songs(corpus, 0.1, seed=5)
    assert split_songs(corpus, 0.1, seed=5) == (train, held)
    assert not set(train) & set(held) and len(train) + len(held) == len(corpus.songs)


def test_windows_pad_each_song_start():
    vocab = Vocab(" abc")
    x, y = song_windows(vocab, ["abc"], window=3)
    assert x.shape == (3, 3, 1) and vocab.decode(y) == "abc"
    assert vocab.decode(np.rint(x[0, :, 0] * vocab.size).astype(int)) == "   "


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
    assert build_model(ModelConfig(vocab_size=33)).count_params() == 17_825


def test_checkpoint_loads_in_safe_mode_with_its_vocab(tiny_run):
    import keras

    from carolgen.checkpoint import load_checkpoint
    model, info = load_checkpoint(tiny_run / "model.keras")
    again = keras.saving.load_model(tiny_run / "model.keras", safe_mode=True)
    x = np.random.default_rng(0).random((2, info.window, 1), dtype=np.float32)
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
    probs, weights = attention_model(model)(np.zeros((1, info.window, 1), np.float32))
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

