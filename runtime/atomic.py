"""Atomic file writes: write beside the target, then rename, so no half-written file has the final name.
Only a regular file is ever replaced: never a directory, a device node, a fifo or a symlink."""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import CarolError


def check_writable(target):
    """Refuse a target that exists and is not a regular file (a directory, device, fifo or symlink)."""
    target = Path(target)
    if os.path.lexists(target) and (target.is_symlink() or not target.is_file()):
        raise CarolError(f"refusing to write {target}: it exists and is not a regular file")


@contextmanager
def staged_path(target):
    """Yield a temporary path beside `target` for the caller to publish with os.replace; gone if it does not."""
    target = Path(target)
    check_writable(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise CarolError(f"cannot write to {target.parent}: {error.strerror}") from None
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; a published file gets the usual mode.
    try:
        yield Path(temporary)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextmanager
def atomic_path(target):
    """Yield a temporary path beside `target`; when the block succeeds it is renamed to `target`."""
    with staged_path(target) as temporary:
        yield temporary
        os.replace(temporary, target)


def write_bytes_atomic(target, data):
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def write_text_atomic(target, text):
    write_bytes_atomic(target, text.encode("utf-8"))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
