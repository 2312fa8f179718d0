"""Shared fixtures: a tiny real training run and real exports of it (no mocks anywhere)."""
import os
import shutil
import subprocess

import pytest

from carolgen.corpus import builtin_lyrics_dir

# TensorFlow 2.21's oneDNN CPU matmul can corrupt the heap (tensorflow/tensorflow#123109: SIGABRT with
# "corrupted size vs. prev_size"); carol-train aborted that way in 3 of about 15 runs here, at random. Tests
# train several models per run, so they turn oneDNN off (it is set before TensorFlow is imported, and
# subprocesses inherit it). The bundled model was trained with it on; README says how users avoid the crash.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

TINY_SONGS = ["snow-falls-soft", "north-wind", "sing-we-now", "little-robin-red"]


@pytest.fixture(scope="session")
def tiny_lyrics(tmp_path_factory):
    """Four built-in songs in a folder of their own."""
    folder = tmp_path_factory.mktemp("lyrics")
    for name in TINY_SONGS:
        shutil.copy(builtin_lyrics_dir() / f"{name}.txt", folder)
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_lyrics):
    """A real two-epoch training run on the tiny lyrics: the run folder."""
    from carolgen.train import TrainConfig, train
    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(lyrics=str(tiny_lyrics), epochs=2, batch_size=64, seed=3, held_out_fraction=0.25), out,
          log=lambda message: None)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run):
    return tiny_run / "model.keras"


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory, tiny_checkpoint):
    """fp32 TFLite and ONNX files of the tiny model, exported through the real converters: (folder, rows)."""
    from carolgen.export import export
    out = tmp_path_factory.mktemp("exports")
    rows = export(tiny_checkpoint, formats=["tflite", "onnx"], modes=["fp32"], out=out)
    return out, rows


@pytest.fixture(scope="session")
def every_mode(tmp_path_factory, tiny_checkpoint, tiny_lyrics):
    """Every format x mode of the tiny model, through the real converters and the gate: (folder, rows)."""
    from carolgen.export import MODES, export
    out = tmp_path_factory.mktemp("every-mode")
    return out, export(tiny_checkpoint, ["tflite", "onnx"], MODES, out=out, calibration_lyrics=str(tiny_lyrics))


STEP_MODES = ["fp32", "fp16", "dynamic", "int8"]


@pytest.fixture(scope="session")
def step_exports(tmp_path_factory, tiny_checkpoint, tiny_lyrics):
    """Every mode of the tiny model as step files in both formats: (folder, {file name: row})."""
    from carolgen.export import export
    out = tmp_path_factory.mktemp("step")
    rows = export(tiny_checkpoint, ["tflite", "onnx"], STEP_MODES, out=out, graphs=["step"],
                  calibration_lyrics=str(tiny_lyrics))
    return out, {row.file.removesuffix(".rejected"): row for row in rows}


def run_cli(command, *args, timeout=600):
    """Run an installed console command as a user would; returns the CompletedProcess (text)."""
    path = shutil.which(command)
    assert path, f"{command} is not installed: pip install -e '.[dev]'"
    return subprocess.run([path, *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_seed_checkpoint(tmp_path_factory, tiny_lyrics):
    """A real one-epoch run of the seed architecture on the tiny lyrics: its checkpoint."""
    from carolgen.train import TrainConfig, train
    out = tmp_path_factory.mktemp("seed-run")
    train(TrainConfig(lyrics=str(tiny_lyrics), architecture="seed", epochs=1, batch_size=64, seed=3,
                      held_out_fraction=0.25), out, log=lambda message: None)
    return out / "model.keras"
