"""Keep native libraries' start-up notes off stderr, where carolgen's one-line messages go."""
import os
import sys
from contextlib import contextmanager


@contextmanager
def quiet_native_stderr():
    """Silence what native code writes to fd 2 inside the block (TensorFlow's CUDA probes, LiteRT's
    "Created TensorFlow Lite XNNPACK delegate" note). They print whatever TF_CPP_MIN_LOG_LEVEL says;
    failures still reach the user as Python exceptions with their messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
