"""carol-train: fit the carol model on a folder of lyrics and write a run folder.

RUN_DIR/model.keras (vocabulary inside), history.csv, loss.png, attention.png.
"""
import contextlib
import csv
import io
import math
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import carolgen
from carolgen.corpus import load_lyrics, song_windows, split_songs
from carolgen.runtime.cli_common import ArgumentParser, run_command
from carolgen.runtime.encoding import WINDOW, Vocab
from carolgen.runtime.errors import CarolError
from carolgen.runtime.metadata import dump_metadata, make_metadata, parse_metadata


@dataclass
class TrainConfig:
    """Defaults give the bundled model: a few minutes on 2 cores, well below the unigram baseline."""

    lyrics: str = None
    epochs: int = 80
    batch_size: int = 128
    learning_rate: float = 5e-3
    seed: int = 1
    held_out_fraction: float = 0.1
    patience: int = 10
    window: int = WINDOW

    def check(self):
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise CarolError("--epochs, --batch-size and --patience must be at least 1")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise CarolError(f"--learning-rate must be positive, not {self.learning_rate}")
        if not 0 < self.held_out_fraction < 1:
            raise CarolError(f"--held-out must be between 0 and 1, not {self.held_out_fraction}")


def unigram_baseline(train_targets, held_targets, vocab_size):
    """Held-out cross-entropy (nats/char) of a model that knows only character frequencies (add-one)."""
    counts = np.bincount(train_targets, minlength=vocab_size) + 1.0
    return float(-np.log(counts / counts.sum())[held_targets].mean())


def train(config, out_dir, log=print):
    """Train, keep the best held-out weights, write the run folder; returns the metadata's training section."""
    config.check()
    corpus = load_lyrics(config.lyrics)
    train_names, held_names = split_songs(corpus, config.held_out_fraction, config.seed)
    vocab = Vocab.from_text(corpus.text)
    log(f"lyrics: {corpus.source}: {corpus.summary()}; holding out {len(held_names)} song(s)")
    x, y = song_windows(vocab, [corpus.songs[n] for n in train_names], config.window)
    vx, vy = song_windows(vocab, [corpus.songs[n] for n in held_names], config.window)

    from carolgen.keras_setup import import_keras, make_deterministic
    from carolgen.model import ModelConfig, build_model
    keras = import_keras()
    make_deterministic(config.seed)
    model_config = ModelConfig(vocab.size, config.window)
    model = build_model(model_config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy")
    stop = keras.callbacks.EarlyStopping("val_loss", patience=config.patience, restore_best_weights=True)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        fit = model.fit(x, y, validation_data=(vx, vy), epochs=config.epochs, batch_size=config.batch_size,
                        shuffle=True, callbacks=[stop], verbose=1 if sys.stderr.isatty() else 2)
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    best = int(np.argmin(history["val_loss"]))
    training = {
        "config": asdict(config), "lyrics": corpus.source, "train_songs": train_names, "held_out_songs": held_names,
        "train_windows": int(len(y)), "held_out_windows": int(len(vy)), "epochs_run": len(history["loss"]),
        "best_epoch": best + 1, "held_out_loss": history["val_loss"][best],
        "unigram_baseline": unigram_baseline(y, vy, vocab.size), "seconds": round(time.perf_counter() - started, 1),
    }
    write_run(model, vocab, model_config, training, history, Path(out_dir), held_text=corpus.songs[held_names[0]])
    return training


def write_run(model, vocab, model_config, training, history, out_dir, held_text):
    """model.keras with its metadata, history.csv, loss.png and attention.png."""
    import keras
    import tensorflow as tf

    from carolgen.checkpoint import save_checkpoint
    from carolgen.plots import plot_loss
    metadata = make_metadata(vocab, model_config.window, {**model_config.to_dict(),
                             "parameters": int(model.count_params())}, training=training,
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
    from carolgen.keras_backend import KerasBackend
    from carolgen.runtime.generate import Generator
    from carolgen.runtime.plots import plot_generation_attention
    generator = Generator(KerasBackend(model, info))
    text = generator.generate(prime, length, temperature=0, attention=True)
    plot_generation_attention(generator, prime, text, path)


def parse_args(argv):
    parser = ArgumentParser(
        prog="carol-train", description="Train the carol model on a folder of lyrics (.txt, one song a file).",
        epilog="examples:\n  carol-train --out runs/default\n"
               "  carol-train --lyrics my-songs/ --epochs 20 --seed 7 --out runs/mine")
    defaults = TrainConfig()
    parser.add_argument("--lyrics", help="folder of .txt lyrics (default: the built-in carols)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="most epochs (early stopping ends sooner)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds the split, the weights and the shuffle")
    parser.add_argument("--held-out", type=float, default=defaults.held_out_fraction, dest="held_out_fraction",
                        help="fraction of whole songs kept out of training")
    parser.add_argument("--patience", type=int, default=defaults.patience, help="early-stopping patience, epochs")
    parser.add_argument("--out", required=True, help="run folder to write")
    return parser.parse_args(argv)


def main(argv=None):
    def run():
        args = vars(parse_args(argv))
        out = args.pop("out")
        training = train(TrainConfig(**args), out, log=lambda m: print(m, file=sys.stderr))
        print(f"wrote {out}/model.keras: held-out loss {training['held_out_loss']:.3f} nats/char "
              f"(unigram baseline {training['unigram_baseline']:.3f}) after {training['epochs_run']} epochs, "
              f"{training['seconds']:.0f} s")
    return run_command(run)
