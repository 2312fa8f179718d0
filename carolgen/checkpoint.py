"""The checkpoint: one .keras file that carries its own vocabulary and config (a carolgen.json entry).

The vocabulary lives inside the same zip archive as the weights, so the two can never be separated.
"""
import hashlib
import zipfile

from carolgen.keras_setup import import_keras
from carolgen.runtime.atomic import atomic_path
from carolgen.runtime.errors import CarolError
from carolgen.runtime.metadata import dump_metadata
from carolgen.runtime.modelfile import KERAS_METADATA_ENTRY, read_model_file


def save_checkpoint(model, metadata, path):
    """Write the model and its metadata document as one .keras file, atomically."""
    with atomic_path(path) as temporary:
        keras_path = temporary.with_suffix(".keras")
        try:
            model.save(keras_path)
            with zipfile.ZipFile(keras_path, "a") as archive:
                archive.writestr(KERAS_METADATA_ENTRY, dump_metadata(metadata))
            keras_path.replace(temporary)
        finally:
            keras_path.unlink(missing_ok=True)


def load_checkpoint(path):
    """(Keras model, ModelInfo) from a checkpoint, loaded with safe_mode=True."""
    model_file = read_model_file(path)
    if model_file.kind != "keras":
        raise CarolError(f"{path} is a {model_file.kind} file, not a Keras checkpoint (.keras)")
    keras = import_keras()
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a damaged archive.
        raise CarolError(f"{path} could not be loaded as a Keras model: {str(error).splitlines()[0]}") from None
    return model, model_file.info


def file_sha256(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
