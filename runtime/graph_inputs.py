"""What a file's graph must take and give, checked against its metadata before anything is generated.

A windowed graph takes (batch, window, ...) in the file's input encoding. A step graph
(carolgen/model.build_step_model) takes one character per sample and a state of (window + 1) rows, and gives
probabilities, the next state and attention weights, by the names below. A file whose graph says otherwise
than its metadata would be fed the wrong tensor, so it is refused.
"""
import numpy as np

from .errors import CarolError

# The tensor names of a step graph: inputs, then outputs.
STEP_INPUTS = ("char", "state")
STEP_OUTPUTS = ("output", "next_state", "attention_weight")
# The widest LSTM state a step file may claim: the state is allocated from the claim.
MAX_STATE_UNITS = 4096


def check_input(model_file, shape, dtype):
    """The graph's real input must be what the metadata claims (window, input encoding): a file that says
    otherwise would feed the interpreter the wrong tensor, so it is refused before anything is generated."""
    info = model_file.info
    expected = [info.window, *info.encoding.per_position]
    if list(shape[1:]) != expected or np.dtype(dtype) != np.dtype(info.encoding.dtype):
        raise CarolError(f"{model_file.path}: its input is {np.dtype(dtype).name} {list(shape[1:])} per window, but "
                         f"its metadata says {info.encoding.name} input ({np.dtype(info.encoding.dtype).name} "
                         f"{expected}): the file is damaged or mislabelled")


def check_step_input(model_file, char_shape, char_dtype, state_shape):
    """A step graph's inputs must be what the metadata claims: one character in the file's input encoding,
    and a state of (window + 1) rows (carolgen/model.build_step_model). Returns the state's shape per sample."""
    info = model_file.info
    state = [int(d) if isinstance(d, (int, np.integer)) else d for d in state_shape[1:]]
    if (list(char_shape[1:]) != list(info.encoding.per_position) or np.dtype(char_dtype) != np.dtype(
            info.encoding.dtype) or len(state) != 2 or state[0] != info.window + 1
            or not isinstance(state[1], int) or not 1 <= state[1] <= MAX_STATE_UNITS):
        raise CarolError(f"{model_file.path}: its step inputs (character {list(char_shape[1:])} "
                         f"{np.dtype(char_dtype).name}, state {state}) are not what its metadata says "
                         f"({info.encoding.name} input, a state of {info.window + 1} rows): the file is damaged "
                         "or mislabelled")
    return tuple(state)
