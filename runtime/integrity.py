"""A digest of a model file's own bytes, recorded inside its metadata, checked before an interpreter sees it.

The exporter writes the metadata with a placeholder digest (64 zeros), hashes the whole file, then writes
the real digest over the placeholder: the same length, so no other byte moves. To check, the reader puts
the placeholder back and hashes again. Any changed byte (a damaged copy, a flipped bit, a tampered operator
option or quantisation scale) then fails here, before an interpreter, which is no sandbox, parses the graph.
The scheme needs nothing from the file format: the metadata's JSON text sits verbatim in a TFLite buffer
and in an ONNX string field alike.
"""
import hashlib
import re

from .errors import CarolError

KEY = "file_sha256"
PLACEHOLDER = "0" * 64
SECTION = {"algorithm": "sha256 of the file with this digest replaced by 64 zeros", KEY: PLACEHOLDER}


def _marker(digest):
    """The digest as it appears in the metadata's JSON text (runtime.metadata.dump_metadata's separators)."""
    return f'"{KEY}": "{digest}"'.encode()


def seal(data):
    """The file's bytes with the placeholder digest in its metadata replaced by the real one."""
    if data.count(_marker(PLACEHOLDER)) != 1:
        raise CarolError("cannot seal the file: its metadata does not hold exactly one placeholder digest")
    return data.replace(_marker(PLACEHOLDER), _marker(hashlib.sha256(data).hexdigest()))


def verify(data, digest, path):
    """CarolError unless `data` is exactly the file its recorded `digest` was computed for."""
    if not isinstance(digest, str) or not re.fullmatch("[0-9a-f]{64}", digest) or data.count(_marker(digest)) != 1:
        raise CarolError(f"{path}: its integrity digest is missing or malformed: the file is damaged")
    if hashlib.sha256(data.replace(_marker(digest), _marker(PLACEHOLDER))).hexdigest() != digest:
        raise CarolError(f"{path} is damaged or was altered: its bytes do not match the digest carol-export "
                         "recorded in it (re-export it, or copy it again)")
