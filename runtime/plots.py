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


MARGIN = 8  # columns of padding kept before the first character that matters


def attention_grid(text, weights, window):
    """(grid, first column): one row per generated character, one column per character of the text; row k
    attended over the window that ended just before generated character k, so its weights sit at their
    absolute positions and the band slides right as generation goes on. Weights are shown relative to
    uniform attention (1 / window). Columns before the first real character or the first weight above
    uniform (less a small margin) are cropped: an empty prime is otherwise mostly padding."""
    steps = len(weights)
    prefix = len(text) - steps
    grid = np.full((steps, len(text)), np.nan)
    for k, row in enumerate(weights):
        start = prefix + k - window
        visible = np.asarray(row[max(0, -start):]) * window
        grid[k, max(start, 0):max(start, 0) + len(visible)] = visible
    first_text = len(text) - len(text.lstrip(" "))
    above_uniform = np.flatnonzero(np.nanmax(np.nan_to_num(grid, nan=0.0), axis=0) > 1.0)
    first = min(first_text, above_uniform[0] if len(above_uniform) else first_text)
    return grid, max(0, min(first, prefix) - MARGIN)


def plot_attention(text, weights, path, window):
    """Heatmap of where each generated character looked (see attention_grid), on a log colour scale
    centred on uniform attention, so that looking 3x more or 3x less than uniform both show."""
    plt = pyplot()
    from matplotlib.colors import LogNorm
    grid, first = attention_grid(text, weights, window)
    grid, shown = grid[:, first:], text[first:]
    steps = len(weights)
    figure, axes = plt.subplots(figsize=(max(8, len(shown) * 0.16), max(3, steps * 0.32)))
    peak = max(float(np.nanmax(grid)), 2.0)
    image = axes.imshow(np.clip(grid, 1 / peak, None), aspect="auto", cmap="RdBu_r", interpolation="nearest",
                        norm=LogNorm(vmin=1 / peak, vmax=peak))
    axes.set_xticks(range(len(shown)), [c if c != " " else "·" for c in shown], fontsize=8, family="monospace")
    axes.set_yticks(range(steps), [c if c != " " else "·" for c in text[len(text) - steps:]], fontsize=8,
                    family="monospace")
    axes.set_xlabel("text so far (prime, then generated; · is a space)")
    axes.set_ylabel("generated character")
    axes.set_title("Where each generated character looked (red: more than uniform attention, blue: less)")
    figure.colorbar(image, ax=axes, label="attention weight / uniform (1 / window)")
    save_figure(figure, path)


def plot_generation_attention(generator, prime, text, path):
    """The attention picture of the first sample of a run made with attention=True."""
    window = generator.vocab.decode(generator.vocab.window_indices(generator.prepare_prime(prime), generator.window))
    plot_attention(window + text, [weights[0] for weights in generator.attention], path, generator.window)
