"""What every carolgen command does with errors: bad input -> one line on stderr, exit 2."""
import argparse
import os
import sys
import time

from .errors import EXIT_BAD_INPUT, CarolError

# Packages that only an extra installs, and that extra: a runtime-only install that reaches for training,
# export or drawing gets one line naming what to install, not a traceback.
EXTRA_FOR_MODULE = {"tensorflow": "train", "tf_keras": "train", "keras": "train", "tf2onnx": "train",
                    "onnx": "train", "flatbuffers": "train", "matplotlib": "plots"}


def run_command(body):
    """Run a command's body; CarolError becomes 'prog: error: message' and its exit code (2 for bad input,
    1 for a failed check), Ctrl-C exit 130."""
    try:
        return body() or 0
    except CarolError as error:
        print(f"{_prog()}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{_prog()}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        extra = EXTRA_FOR_MODULE.get((error.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"{_prog()}: error: this needs {error.name}, which this install lacks: pip install 'carolgen[{extra}]'",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return 0
    except OSError as error:  # a full disk, a closed or full stdout, an input that vanished: one line, no traceback
        print(f"{_prog()}: error: {error.strerror or error}{f': {error.filename}' if error.filename else ''}",
              file=sys.stderr)
        return EXIT_BAD_INPUT


def _prog():
    return os.path.basename(sys.argv[0]) or "carolgen"


def seed_number(text):
    """argparse type for a seed: a whole number >= 0 (numpy refuses negative seeds)."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


seed_number.__name__ = "seed"  # argparse names the type in its message: "invalid seed value: '-1'"


class Progress:
    """One line per finished step on stderr, with the count, the time so far and an estimate of the time
    left (from the mean step so far): readable on a terminal and in a log file alike."""

    def __init__(self, total, prog):
        self.total, self.prog, self.done, self.started = total, prog, 0, time.perf_counter()

    def step(self, message):
        self.done += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done)
        print(f"{self.prog}: [{self.done}/{self.total}] {message} ({_duration(elapsed)} so far, about "
              f"{_duration(left)} left)", file=sys.stderr, flush=True)


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; each option's default shown, unless its help already says it or it has none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with examples kept as written, defaults shown, and a usage error as one line (exit 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")
