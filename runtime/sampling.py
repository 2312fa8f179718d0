"""The sampler: pure functions of (probabilities, temperature, top-k, top-p, numpy Generator).

It never touches a backend, so two backends that give the same probabilities draw the same characters.
"""
import numpy as np

from .errors import CarolError

# carol-generate's and the Python API's defaults: the sampled settings with the best word rate that do not
# loop, measured on the bundled model (benchmarks/results/SAMPLING.md).
DEFAULT_SAMPLING = {"temperature": 0.7, "top_k": 0, "top_p": 0.8}
# Below 0.01 sampling is greedy in all but name (and 1e-320 overflows to nothing); above 100 it is noise.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0
# A float softmax row sums to 1 within rounding; an int8 softmax output (steps of 1/256, older exports and
# other tools) within ~0.06. Further off than this, the model is damaged.
ROW_SUM_TOLERANCE = 0.25


def check_sampling(temperature=1.0, top_k=0, top_p=1.0):
    """Reject nonsense sampling values with one clear message."""
    if not (temperature == 0 or MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE):
        raise CarolError(f"--temperature must be 0 (greedy) or between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}, "
                         f"not {temperature}")
    if int(top_k) != top_k or top_k < 0:
        raise CarolError(f"--top-k must be a whole number >= 0 (0 = off), not {top_k}")
    if not (0 < top_p <= 1):
        raise CarolError(f"--top-p must be in (0, 1], not {top_p}")


def shape_distribution(probs, temperature=1.0, top_k=0, top_p=1.0):
    """Temperature, then top-k, then top-p (nucleus), renormalised; float64 (B, V)."""
    p = np.asarray(probs, dtype=np.float64)
    if temperature != 1.0:
        logits = np.log(np.maximum(p, 1e-30)) / temperature
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
    if top_k and top_k < p.shape[1]:
        kth = -np.sort(-p, axis=1)[:, top_k - 1:top_k]
        p = np.where(p >= kth, p, 0.0)
    if top_p < 1.0:
        order = np.argsort(-p, axis=1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=1)
        cumulative = np.cumsum(sorted_p, axis=1) / sorted_p.sum(axis=1, keepdims=True)
        # Keep each token whose preceding mass is still below top_p (the first is always kept).
        keep_sorted = (cumulative - sorted_p / sorted_p.sum(axis=1, keepdims=True)) < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        p = np.where(keep, p, 0.0)
    return p / p.sum(axis=1, keepdims=True)


def check_probabilities(probs):
    """Refuse what no softmax gives: NaN or infinite values, negative values, rows far from summing to 1. A
    damaged model otherwise samples index 0 for ever (a page of spaces) and exits as if all were well."""
    sums = probs.sum(axis=1)
    if not (np.isfinite(sums).all() and (probs >= 0).all() and (np.abs(sums - 1) <= ROW_SUM_TOLERANCE).all()):
        raise CarolError("the model computed invalid probabilities (NaN, infinite, negative or far from summing "
                         "to 1): "
                         "the file is damaged; re-export it")


def sample(probs, temperature, top_k, top_p, rng):
    """Next-character indices (B,) for probabilities (B, V). Temperature 0 is argmax and uses no randomness."""
    check_probabilities(probs)
    if temperature == 0:
        return np.argmax(probs, axis=1)
    p = shape_distribution(probs, temperature, top_k, top_p)
    draws = rng.random(p.shape[0])[:, None]
    cumulative = np.cumsum(p, axis=1)
    picks = (cumulative < draws * cumulative[:, -1:]).sum(axis=1)
    return np.minimum(picks, p.shape[1] - 1)
