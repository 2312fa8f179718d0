"""The attention picture (matplotlib, imported only when a picture is asked for; files written atomically)."""
import numpy as np

from .atomic import atomic_path
from .errors import CarolError


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise CarolError("drawing needs matplotlib: pip install 'carolgen[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(figure, path):
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120, bbox_inches="tight")
    pyplot().close(figure)


def plot_attention(text, weights, path, window):
    """Heatmap: one row per generated character, one column per character of prime + output.

    Row k attended over the window that ended just before generated character k, so each row's weights
    sit at their absolute position in the text and the band slides right as generation goes on.
    """
    plt = pyplot()
    steps = len(weights)
    prefix = len(text) - steps
    grid = np.full((steps, len(text)), np.nan)
    for k, row in enumerate(weights):
        start = prefix + k - window
        visible = row[max(0, -start):]
        grid[k, max(start, 0):max(start, 0) + len(visible)] = visible
    figure, axes = plt.subplots(figsize=(max(8, len(text) * 0.12), max(3, steps * 0.3)))
    image = axes.imshow(grid, aspect="auto", cmap="magma", interpolation="nearest")
    axes.set_xticks(range(len(text)), [c if c != " " else "·" for c in text], fontsize=6, family="monospace")
    axes.set_yticks(range(steps), [c if c != " " else "·" for c in text[prefix:]], family="monospace")
    axes.set_xlabel("text so far (prime, then generated)")
    axes.set_ylabel("generated character")
    figure.colorbar(image, ax=axes, label="attention weight")
    save_figure(figure, path)


def plot_generation_attention(generator, prime, text, path):
    """The attention picture of the first sample of a run made with attention=True."""
    window = generator.vocab.decode(generator.vocab.window_indices(generator.prepare_prime(prime), generator.window))
    plot_attention(window + text, [weights[0] for weights in generator.attention], path, generator.window)
