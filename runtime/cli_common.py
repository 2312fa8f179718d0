"""What every carolgen command does with errors: bad input -> one line on stderr, exit 2."""
import argparse
import os
import sys

from .errors import EXIT_BAD_INPUT, CarolError


def run_command(body):
    """Run a command's body; CarolError becomes 'prog: error: message' and exit 2, Ctrl-C exit 130."""
    try:
        return body() or 0
    except CarolError as error:
        print(f"{_prog()}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{_prog()}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _prog():
    return os.path.basename(sys.argv[0]) or "carolgen"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with examples kept as written, and a usage error as one line (exit 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")
