"""The one exception for "the user gave something unusable".

Every command turns it into a single line on stderr and exit code 2. Anything else that escapes is a bug.
"""


class CarolError(Exception):
    """Bad input: a missing file, a corrupt model, a nonsense option. The message is one line for the user."""


EXIT_BAD_INPUT = 2
EXIT_CHECK_FAILED = 1
