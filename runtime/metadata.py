"""The metadata document every carolgen file carries: checkpoint (.keras), .tflite and .onnx alike.

One JSON object with a format version. The runtime needs only vocab, window, encoding and pad_char; the
rest (model config, normalisation, quantisation, calibration, source hash, tool versions, date) is there
so a file on a device explains itself.
"""
import json
from dataclasses import dataclass

from .encoding import ENCODINGS, NORMALISE_DEFAULTS, Vocab
from .errors import CarolError

METADATA_KEY = "carolgen"
FORMAT_VERSION = 1
MAX_WINDOW = 4096  # characters of context; a larger claim is damage, and would size buffers from it
MAX_VOCAB = 4096
# The graphs an exported file can hold (its export section's "graph"; a file without one is windowed):
# "window" maps a window of characters to the next character's probabilities, re-run for every character;
# "step" maps (one character, state) to (probabilities, next state), O(1) per character (carolgen/model.py).
GRAPHS = ("window", "step")


def make_metadata(vocab, window, encoding, model_config, **sections):
    """A new metadata document; `sections` (training, export, normalisation, ...) are added as given."""
    return {"format": "carolgen", "format_version": FORMAT_VERSION, "vocab": vocab.chars, "window": window,
            "encoding": encoding.name, "pad_char": vocab.pad_char, "model": dict(model_config),
            "normalisation": dict(NORMALISE_DEFAULTS), **sections}


@dataclass(frozen=True)
class ModelInfo:
    """What a runtime needs from the metadata, checked; `document` keeps everything else."""

    vocab: Vocab
    window: int
    normalisation: dict
    document: dict
    encoding: object  # the model's InputEncoding (runtime/encoding.py)

    def section(self, name):
        """A section of the document (training, export, parity) as a dict; {} when absent or not an object,
        so a tampered document cannot make a reader crash."""
        value = self.document.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def verdict(self):
        """The parity gate's verdict an exported file carries ('accepted', 'rejected'), None if it has none."""
        value = self.section("parity").get("verdict")
        return value if isinstance(value, str) else None

    def verdict_warning(self, name):
        """One line to warn with when an exported file lacks an accepted verdict; None when there is nothing
        to say (an accepted file, or a checkpoint, which is the reference itself)."""
        if not self.section("export") or self.verdict == "accepted":
            return None
        if self.verdict is None:
            return (f"warning: {name} carries no parity verdict (exported by an older carolgen, or altered); "
                    "re-export it to have it checked against its checkpoint")
        reasons = self.section("parity").get("reasons") or ["no reason recorded"]
        return (f"warning: {name} was {self.verdict} by carol-export's parity gate ({reasons[0]}); "
                "its text may not be what the trained model writes")

    @property
    def graph(self):
        return self.section("export").get("graph", "window")

    @property
    def quantisation(self):
        value = self.section("export").get("quantization")
        return value if isinstance(value, str) else None


def parse_metadata(text, source):
    """Check a metadata document (JSON text) and return its ModelInfo."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CarolError(f"{source}: its carolgen metadata is not valid JSON (the file is damaged)") from None
    if not isinstance(doc, dict) or doc.get("format") != "carolgen":
        raise CarolError(f"{source}: the metadata is not carolgen's")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CarolError(f"{source}: metadata format version {doc.get('format_version')} is not supported "
                         f"(this carolgen reads version {FORMAT_VERSION}); upgrade carolgen or re-export")
    if not isinstance(doc.get("encoding"), str) or doc["encoding"] not in ENCODINGS:
        raise CarolError(f"{source}: unknown input encoding {doc.get('encoding')!r} "
                         f"(this carolgen knows {', '.join(ENCODINGS)})")
    try:
        vocab, window = Vocab(doc["vocab"]), int(doc["window"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CarolError(f"{source}: the metadata lacks a usable vocab or window") from None
    if not 1 <= window <= MAX_WINDOW or not 2 <= vocab.size <= MAX_VOCAB or window != doc["window"]:
        raise CarolError(f"{source}: the metadata's window ({doc['window']!r}) or vocabulary size ({vocab.size}) is "
                         f"out of range (window 1-{MAX_WINDOW}, vocabulary 2-{MAX_VOCAB})")
    if not isinstance(doc.get("normalisation", {}), dict) or not isinstance(doc.get("model", {}), dict):
        raise CarolError(f"{source}: the metadata's normalisation or model section is not an object")
    if not isinstance(doc.get("export", {}), dict) or doc.get("export", {}).get("graph", "window") not in GRAPHS:
        raise CarolError(f"{source}: the metadata names a graph kind this carolgen does not know "
                         f"(it knows {', '.join(GRAPHS)}); upgrade carolgen or re-export")
    if vocab.pad_char != doc.get("pad_char"):
        raise CarolError(f"{source}: the metadata's pad character does not match its vocabulary")
    return ModelInfo(vocab, window, {**NORMALISE_DEFAULTS, **doc.get("normalisation", {})}, doc,
                     ENCODINGS[doc["encoding"]])


def dump_metadata(doc):
    return json.dumps(doc, sort_keys=True, ensure_ascii=False)
