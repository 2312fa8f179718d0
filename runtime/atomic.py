"""Atomic file writes: write beside the target, then rename, so no half-written file has the final name."""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import CarolError


@contextmanager
def atomic_path(target):
    """Yield a temporary path in the target's folder; on success it is renamed to `target`, else removed."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise CarolError(f"cannot write to {target.parent}: {error.strerror}") from None
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_bytes_atomic(target, data):
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def write_text_atomic(target, text):
    write_bytes_atomic(target, text.encode("utf-8"))
