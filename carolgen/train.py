"""carol-train: fit the carol model on a folder of lyrics and write a run folder.

RUN_DIR/model.keras (vocabulary inside), history.csv, loss.png, attention.png.
"""
import contextlib
import csv
import io
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import carolgen
from carolgen.corpus import load_lyrics, song_windows, split_songs, split_warnings
from carolgen.keras_backend import KerasBackend
from carolgen.model import ARCHITECTURES, ModelConfig, architecture, build_model
from carolgen.quality import WORD_RATE_SETTINGS, lyric_words, word_rate
from carolgen.runtime.cli_common import ArgumentParser, run_command
from carolgen.runtime.encoding import WINDOW, Vocab
from carolgen.runtime.errors import CarolError, CheckFailed
from carolgen.runtime.generate import Generator
from carolgen.runtime.metadata import dump_metadata, make_metadata, parse_metadata


@dataclass
class TrainConfig:
    """Defaults give the bundled model (the embedding architecture) within minutes on 2 cores.

    Model sizes left as None take the architecture's defaults (carolgen/model.py, ARCHITECTURES)."""

    lyrics: str = None
    architecture: str = "embedding"
    embedding_dim: int = None
    lstm_units: int = None
    attention_units: int = None
    dropout: float = None
    epochs: int = 16
    batch_size: int = 128
    learning_rate: float = None
    seed: int = 1
    held_out_fraction: float = 0.1
    patience: int = 3
    window: int = WINDOW

    def check(self):
        architecture(self.architecture)
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.seed < 0:
            raise CarolError("--epochs, --batch-size and --patience must be at least 1, --seed at least 0")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise CarolError(f"--learning-rate must be positive, not {self.learning_rate}")
        if not 0 < self.held_out_fraction < 1:
            raise CarolError(f"--held-out must be between 0 and 1, not {self.held_out_fraction}")
        sizes = (self.embedding_dim, self.lstm_units, self.attention_units)
        if any(size is not None and size < 1 for size in sizes):
            raise CarolError("--embedding-dim, --lstm-units and --attention-units must be at least 1")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise CarolError(f"--dropout must be in [0, 1), not {self.dropout}")

    def resolved(self):
        """This config with the architecture's defaults filled in, as the checkpoint records it."""
        chosen = architecture(self.architecture)
        sizes = {k: v for k, v in chosen.defaults.items() if getattr(self, k) is None}
        rate = chosen.learning_rate if self.learning_rate is None else self.learning_rate
        return replace(self, **sizes, learning_rate=rate)

    def model_config(self, vocab_size):
        return ModelConfig.for_architecture(self.architecture, vocab_size, self.window, lstm_units=self.lstm_units,
                                            attention_units=self.attention_units, embedding_dim=self.embedding_dim,
                                            dropout=self.dropout)


def unigram_baseline(train_targets, held_targets, vocab_size):
    """Held-out cross-entropy (nats/char) of a model that knows only character frequencies (add-one)."""
    counts = np.bincount(train_targets, minlength=vocab_size) + 1.0
    return float(-np.log(counts / counts.sum())[held_targets].mean())


def train(config, out_dir, log=print):
    """Train, keep the best held-out weights, write the run folder; returns the metadata's training section."""
    config.check()
    config = config.resolved()
    corpus = load_lyrics(config.lyrics)
    train_names, held_names = split_songs(corpus, config.held_out_fraction, config.seed)
    vocab = Vocab.from_text(corpus.text)
    log(f"lyrics: {corpus.source}: {corpus.summary()}; holding out {len(held_names)} song(s)")
    for warning in split_warnings(corpus, train_names, held_names):
        log(f"warning: {warning}")
    model_config = config.model_config(vocab.size)
    x, y = song_windows(vocab, [corpus.songs[n] for n in train_names], model_config.encoding, config.window)
    vx, vy = song_windows(vocab, [corpus.songs[n] for n in held_names], model_config.encoding, config.window)

    from carolgen.keras_setup import import_keras, make_deterministic
    keras = import_keras()
    make_deterministic(config.seed)
    model = build_model(model_config)
    log(f"model: {model_config.architecture} architecture, {model.count_params():,} parameters")
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy")
    stop = keras.callbacks.EarlyStopping("val_loss", patience=config.patience, restore_best_weights=True)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        fit = model.fit(x, y, validation_data=(vx, vy), epochs=config.epochs, batch_size=config.batch_size,
                        shuffle=True, callbacks=[stop, keras.callbacks.TerminateOnNaN()],
                        verbose=1 if sys.stderr.isatty() else 2)
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    baseline = unigram_baseline(y, vy, vocab.size)
    check_converged(model, history, baseline)
    best = int(np.argmin(history["val_loss"]))
    draft = make_metadata(vocab, config.window, model_config.encoding, model_config.to_dict())
    info = parse_metadata(dump_metadata(draft), "the new model")
    training = {
        "config": asdict(config), "lyrics": Path(corpus.source).name, "train_songs": train_names,
        "held_out_songs": held_names, "train_windows": int(len(y)), "held_out_windows": int(len(vy)),
        "epochs_run": len(history["loss"]), "best_epoch": best + 1, "held_out_loss": history["val_loss"][best],
        "unigram_baseline": baseline, "seconds": round(time.perf_counter() - started, 1),
        "word_rate": word_rate(Generator(KerasBackend(model, info)),
                               lyric_words(corpus.songs[n] for n in train_names)),
        "word_rate_settings": WORD_RATE_SETTINGS,
    }
    write_run(model, vocab, model_config, training, history, Path(out_dir), held_text=corpus.songs[held_names[0]])
    return training


DIVERGED_FACTOR = 2  # a best held-out loss this many times the unigram baseline's has learned nothing


def check_converged(model, history, baseline):
    """A run whose loss or weights went non-finite, or whose best held-out loss is far worse than knowing only
    the letter frequencies, has diverged: fail (exit 1) before writing anything."""
    losses = [v for values in history.values() for v in values]
    finite = all(np.isfinite(w).all() for w in model.get_weights()) and all(math.isfinite(v) for v in losses)
    if not finite:
        raise CheckFailed("training diverged (a loss or a weight is NaN or infinite); no checkpoint was written: "
                          "try a lower --learning-rate")
    best = min(history["val_loss"])
    if not best <= DIVERGED_FACTOR * baseline:
        raise CheckFailed(f"training diverged (best held-out loss {best:.3g} nats/char, more than {DIVERGED_FACTOR}x "
                          f"the unigram baseline {baseline:.3f}); no checkpoint was written: "
                          "try a lower --learning-rate")


def write_run(model, vocab, model_config, training, history, out_dir, held_text):
    """model.keras with its metadata, history.csv, loss.png and attention.png."""
    import keras
    import tensorflow as tf

    from carolgen.checkpoint import save_checkpoint
    from carolgen.plots import plot_loss
    metadata = make_metadata(vocab, model_config.window, model_config.encoding,
                             {**model_config.to_dict(), "parameters": int(model.count_params())}, training=training,
                             tools={"carolgen": carolgen.__version__, "tensorflow": tf.__version__,
                                    "keras": keras.__version__},
                             created=datetime.now(UTC).isoformat(timespec="seconds"))
    save_checkpoint(model, metadata, out_dir / "model.keras")
    write_history(history, out_dir / "history.csv")
    plot_loss(history, out_dir / "loss.png", baseline=training["unigram_baseline"])
    draw_attention(model, parse_metadata(dump_metadata(metadata), "the new checkpoint"), held_text[:60],
                   out_dir / "attention.png")


def write_history(history, path):
    from carolgen.runtime.atomic import write_text_atomic
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["epoch", *history])
    for epoch, row in enumerate(zip(*history.values(), strict=True), start=1):
        writer.writerow([epoch, *(f"{v:.6f}" for v in row)])
    write_text_atomic(path, buffer.getvalue())


def draw_attention(model, info, prime, path, length=24):
    """Generate greedily from `prime` with the trained model and draw where each character looked."""
    from carolgen.runtime.plots import plot_generation_attention
    generator = Generator(KerasBackend(model, info))
    text = generator.generate(prime, length, temperature=0, attention=True)
    plot_generation_attention(generator, prime, text, path)


def parse_args(argv):
    parser = ArgumentParser(
        prog="carol-train", description="Train the carol model on a folder of lyrics (.txt, one song a file).",
        epilog="examples:\n  carol-train --out runs/default\n"
               "  carol-train --architecture seed --out runs/seed        # the seed project's model, exactly\n"
               "  carol-train --lyrics my-songs/ --epochs 20 --seed 7 --out runs/mine")
    defaults = TrainConfig()
    sizes = "; ".join(f"{name}: " + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in a.defaults.items() if v)
                      for name, a in ARCHITECTURES.items())
    parser.add_argument("--lyrics", help="folder of .txt lyrics (default: the built-in carols)")
    parser.add_argument("--architecture", choices=list(ARCHITECTURES), default=defaults.architecture,
                        help="seed: one float per character into LSTM(32), the seed's model; embedding: a learned "
                             "character embedding into a larger LSTM")
    parser.add_argument("--embedding-dim", type=int, help=f"characters' embedding width (default: the "
                                                          f"architecture's; {sizes})")
    parser.add_argument("--lstm-units", type=int, help="LSTM width (default: the architecture's)")
    parser.add_argument("--attention-units", type=int, help="attention block width (default: the architecture's)")
    parser.add_argument("--dropout", type=float, help="dropout rate in training (default: the architecture's)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="most epochs (early stopping ends sooner)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="windows per training step")
    rates = ", ".join(f"{name}: {a.learning_rate:g}" for name, a in ARCHITECTURES.items())
    parser.add_argument("--learning-rate", type=float,
                        help=f"Adam's learning rate (default: the architecture's; {rates})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds the split, the weights and the shuffle")
    parser.add_argument("--held-out", type=float, default=defaults.held_out_fraction, dest="held_out_fraction",
                        help="fraction of whole songs kept out of training (at least 8 songs from 16 up)")
    parser.add_argument("--patience", type=int, default=defaults.patience, help="early-stopping patience, epochs")
    parser.add_argument("--out", required=True, help="run folder to write")
    return parser.parse_args(argv)


def main(argv=None):
    def run():
        args = vars(parse_args(argv))
        out = args.pop("out")
        training = train(TrainConfig(**args), out, log=lambda m: print(m, file=sys.stderr))
        print(f"wrote {out}/model.keras: held-out loss {training['held_out_loss']:.3f} nats/char "
              f"(unigram baseline {training['unigram_baseline']:.3f}), word rate {training['word_rate']:.2f}, "
              f"after {training['epochs_run']} epochs, {training['seconds']:.0f} s")
    return run_command(run)
