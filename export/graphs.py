"""The graphs carol-export writes: one table, one row per graph kind (runtime/metadata.GRAPHS names them).

- window: the model itself; every character re-runs the LSTM over the last `window` characters. Exact.
- step: one LSTM step and the attention over a state of the last `window` hidden states
  (carolgen/model.build_step_model): O(1) work per character. An approximation of the windowed model (it
  keeps one continuous LSTM state where the windowed model restarts at each window), so its gate compares
  it twice: exactly against the Keras step model, and for drift against the windowed Keras model.
"""
from collections.abc import Callable
from dataclasses import dataclass

from carolgen.model import STEP_STATE_LAYERS
from carolgen.runtime.errors import CarolError

from .twin import make_step_twin, make_twin


@dataclass(frozen=True)
class Graph:
    """One row of the graph table."""

    name: str
    suffix: str  # added to the file name's stem: model-fp32-step.tflite
    twin: Callable  # (model, info, batch_size=None) -> the tf_keras model the converters read
    summary: str
    float_in_int8: tuple = ()  # layers whose ops int8 files keep float (their weights still stored as int8)


GRAPHS = {g.name: g for g in (
    Graph("window", "", make_twin, "the model: re-runs the window for every character (exact)"),
    # int8 activations on the carried state's path compound step after step, so int8 step files keep it
    # float, with the attention's products over the state (measured, bundled model, top-1 against the Keras
    # step model: 0.947 with all in int8, 0.964 with the LSTM cell float, 0.971 with this and the state's
    # concatenations float: export/tflite.FLOAT_IN_INT8).
    Graph("step", "-step", make_step_twin, "one step with a carried state: O(1) per character (approximate)",
          STEP_STATE_LAYERS + ("attention_score", "context_vector")),
)}


def graph(name):
    """The graph's row; CarolError naming the known graphs otherwise."""
    if name not in GRAPHS:
        raise CarolError(f"unknown graph {name!r}; graphs: {', '.join(GRAPHS)}, or both")
    return GRAPHS[name]
