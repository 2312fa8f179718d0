"""The one exception for "the user gave something unusable".

Every command turns it into a single line on stderr and exit code 2. Anything else that escapes is a bug.
"""


EXIT_BAD_INPUT = 2
EXIT_CHECK_FAILED = 1


class CarolError(Exception):
    """Bad input: a missing file, a corrupt model, a nonsense option. The message is one line for the user."""

    exit_code = EXIT_BAD_INPUT


class CheckFailed(CarolError):
    """The input was fine but a check on the result failed (a diverged training run): exit 1."""

    exit_code = EXIT_CHECK_FAILED
