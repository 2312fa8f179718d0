"""carolgen: write Christmas-carol lyrics with a small char-level LSTM + attention model, from Keras to a Pi.

Importing carolgen is light (no TensorFlow): training, export and the Keras backend import it when used.
"""
from pathlib import Path

__version__ = "0.1.0"

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_CHECKPOINT = MODELS_DIR / "model.keras"
# The seed project's architecture, trained on the same corpus and split: the baseline every report keeps.
SEED_CHECKPOINT = MODELS_DIR / "seed.keras"


def load(path=None, backend=None, threads=1, trust=False):
    """A Generator for a model file (default: the bundled model), e.g. `carolgen.load().generate("the star ")`;
    see carolgen.generate.load."""
    from .generate import load as load_model
    return load_model(path, backend=backend, threads=threads, trust=trust)
