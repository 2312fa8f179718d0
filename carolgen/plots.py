"""The loss curves of a training run (the attention picture lives in the runtime: runtime/plots.py)."""
import numpy as np

from carolgen.runtime.plots import pyplot, save_figure


def plot_loss(history, path, baseline=None):
    """Training and held-out loss per epoch, with the unigram baseline for scale and the epoch whose weights
    the checkpoint keeps (early stopping restores the best held-out loss)."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    axes.plot(epochs, history["loss"], label="training loss")
    axes.plot(epochs, history["val_loss"], label="held-out loss")
    if baseline is not None:
        axes.axhline(baseline, color="grey", linestyle="--", label=f"unigram baseline ({baseline:.2f})")
    held_out = np.asarray(history["val_loss"], dtype=float)
    if np.isfinite(held_out).any():
        best = int(np.nanargmin(held_out))
        axes.axvline(epochs[best], color="green", linestyle=":",
                     label=f"best held-out loss {held_out[best]:.3f}, epoch {epochs[best]}: weights kept")
    axes.set_xlabel("epoch")
    axes.set_ylabel("cross-entropy (nats / character)")
    axes.legend()
    axes.grid(alpha=0.3)
    save_figure(figure, path)
