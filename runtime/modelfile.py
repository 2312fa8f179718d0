"""Read and verify a model file without TensorFlow: .tflite, .onnx or a .keras checkpoint.

FORMATS is the one table of file formats the runtime knows: how to recognise each from its bytes, how to
read its carolgen metadata, and which carolgen extra installs an interpreter for it. The bytes are checked
(runtime/flatbuffer.py, runtime/protobuf.py) before any interpreter sees them.
"""
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CarolError
from .flatbuffer import TfliteReader
from .inputs import MAX_MODEL_BYTES, MAX_TEXT_BYTES, read_regular_file
from .integrity import KEY, verify
from .metadata import METADATA_KEY, ModelInfo, parse_metadata
from .protobuf import OnnxReader

KERAS_METADATA_ENTRY = "carolgen.json"


def _tflite_contents(data, path):
    reader = TfliteReader(data, path)
    return reader.metadata().get(METADATA_KEY), reader.operators()


def _onnx_contents(data, path):
    return OnnxReader(data, path).metadata().get(METADATA_KEY), []


def _keras_contents(data, path):
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo(KERAS_METADATA_ENTRY).file_size > MAX_TEXT_BYTES:
                raise CarolError(f"{path}: its carolgen metadata entry claims more than {MAX_TEXT_BYTES:,} bytes")
            return archive.read(KERAS_METADATA_ENTRY), []
    except KeyError:
        raise CarolError(f"{path} is a Keras file without carolgen metadata: train it with carol-train") from None
    except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile, NotImplementedError):
        raise CarolError(f"{path} is a damaged .keras file (not a readable zip archive)") from None


@dataclass(frozen=True)
class FileFormat:
    """One row of the format table."""

    name: str
    suffix: str
    extra: str  # the carolgen extra that installs an interpreter for it
    matches: Callable  # bytes -> bool, from the file's first bytes
    contents: Callable  # (bytes, path) -> (metadata JSON bytes or None, [(op code, version, custom)])

    @property
    def install_hint(self):
        return f"pip install 'carolgen[{self.extra}]'"


FORMATS = {f.name: f for f in (
    FileFormat("tflite", ".tflite", "litert", lambda data: data[4:8] == b"TFL3", _tflite_contents),
    # An ONNX ModelProto starts with field 1 (ir_version), a varint: tag byte 0x08.
    FileFormat("onnx", ".onnx", "onnx", lambda data: data[:1] == b"\x08", _onnx_contents),
    FileFormat("keras", ".keras", "train", lambda data: data[:4] == b"PK\x03\x04", _keras_contents),
)}


@dataclass
class ModelFile:
    """A verified model file: its format, its metadata, (TFLite) its operators as (code, version, custom), and
    the bytes that were verified (the numpy backend computes from them, never from a second read)."""

    path: Path
    kind: str
    info: ModelInfo
    operators: list = field(default_factory=list)
    data: bytes = b""


def read_model_file(path, trust=False):
    """Verify `path` and read its carolgen metadata; CarolError with one clear line if anything is off.

    An exported file must carry the integrity digest carol-export seals it with (runtime/integrity.py),
    and match it; `trust` lets a file without one through (an older export, a hand-made graph). A .keras
    checkpoint is the training run's own output and carries none."""
    path = Path(path)
    data = read_regular_file(path, "model file", MAX_MODEL_BYTES)
    kind = sniff_kind(data, path)
    text, operators = FORMATS[kind].contents(data, path)
    if text is None:
        raise CarolError(f"{path} has no carolgen metadata: export it with carol-export, which embeds the "
                         "vocabulary the runtime needs")
    info = parse_metadata(text, path)
    digest = info.section("integrity").get(KEY)
    if kind != "keras" and (digest is not None or not trust):
        if digest is None:
            raise CarolError(f"{path} carries no integrity digest (exported by an older carolgen, or not by "
                             "carol-export): re-export it, or pass --trust-file to run it unchecked")
        verify(data, digest, path)
    return ModelFile(path, kind, info, operators, data)


def sniff_kind(data, path):
    """The format's name, from the bytes rather than the file name."""
    if len(data) < 16:
        raise CarolError(f"{path} is too short to be a model file ({len(data)} bytes)")
    for file_format in FORMATS.values():
        if file_format.matches(data):
            return file_format.name
    names = ", ".join(f.suffix for f in FORMATS.values())
    raise CarolError(f"{path} is not a model file carolgen knows ({names})")
