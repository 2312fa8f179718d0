"""Reading a user's input file: only a regular file, only up to a size limit, every failure one clear line.

A fifo would block a reader forever, a device or a sparse multi-gigabyte file would be read whole, and a
directory, a symlink loop or an unreadable file would end in a traceback; each is refused before reading.
"""
import os
import stat
from pathlib import Path

from .errors import CarolError

MAX_MODEL_BYTES = 64 * 2**20  # carolgen's files are under 1 MB; this leaves room for much larger models
MAX_TEXT_BYTES = 2**20  # one song or one --continue file


def read_regular_file(path, what, max_bytes):
    """The bytes of `path`, a regular file (a symlink to one is fine) of at most `max_bytes`."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CarolError(f"{what} not found: {path}") from None
    except OSError as error:
        raise CarolError(f"cannot read {what} {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CarolError(f"{what} {path} is not a regular file")
    if info.st_size > max_bytes:
        raise CarolError(f"{what} {path} is {info.st_size:,} bytes, more than the {max_bytes:,} carolgen reads")
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise CarolError(f"cannot read {what} {path}: {error.strerror}") from None
    if len(data) > max_bytes:
        raise CarolError(f"{what} {path} grew past {max_bytes:,} bytes while being read")
    return data


def read_text_file(path, what, max_bytes=MAX_TEXT_BYTES):
    """The UTF-8 text of a regular file of at most `max_bytes`."""
    data = read_regular_file(path, what, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CarolError(f"{path} is not UTF-8 text (byte {error.start}): save it as UTF-8") from None
