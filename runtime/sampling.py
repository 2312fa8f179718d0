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


def sample(probs, temperature, top_k, top_p, rng):
    """Next-character indices, a list of B, for probabilities (B, V). Temperature 0 is argmax and uses no
    randomness; otherwise one uniform draw per row.

    Each row is sampled in plain Python on a list: for one row of a few dozen characters that is several
    times faster than numpy's per-call overhead, and this runs once per generated character."""
    return [_pick(row, temperature, top_k, top_p, rng) for row in np.asarray(probs).tolist()]


def _pick(row, temperature, top_k, top_p, rng):
    total, largest = sum(row), max(row)
    if not (abs(total - 1) <= ROW_SUM_TOLERANCE and min(row) >= 0):  # check_row, inline: once per character
        check_row(row)
    if temperature == 0:
        return row.index(largest)
    draw = rng.random()  # one draw per row, whichever way the row is decided
    if top_p < 1.0 and _likeliest_alone(total, largest, len(row), 1.0 / temperature, top_p):
        return row.index(largest)
    indices, weights = candidates(row, temperature, top_k, top_p)
    draw *= sum(weights)
    cumulative = 0.0
    for index, weight in zip(indices, weights, strict=True):
        cumulative += weight
        if cumulative > draw:
            return index
    return indices[-1]  # rounding: the draw landed on the total


def _likeliest_alone(total, largest, size, power, top_p):
    """True when the likeliest character alone is the nucleus, decided without tempering every probability
    (a trained model is mostly sure, so this is the usual case). The others' tempered mass is at most
    max(1, (size - 1)^(1 - power)) (total - largest)^power (power means); the likeliest alone is the nucleus
    when even that leaves it top_p of the whole: largest^power (1 - top_p) >= top_p x the others'."""
    others = max(1.0, (size - 1) ** (1.0 - power)) * max(total - largest, 0.0) ** power
    return top_p * others <= (1.0 - top_p) * largest ** power


def candidates(row, temperature=1.0, top_k=0, top_p=1.0):
    """(indices, weights): the characters a draw can pick, in the order the draw walks them, with their
    unnormalised weights. Temperature raises each probability to 1/temperature (scaled by the row's largest,
    so nothing underflows to an empty row); top-k keeps the k likeliest; top-p keeps, from the likeliest
    down, each character whose preceding mass is still below top_p of the whole (the first always)."""
    if temperature != 1.0:
        largest, power = max(row), 1.0 / temperature
        row = [(p / largest) ** power for p in row]
    if top_k and top_k < len(row):
        kth = sorted(row, reverse=True)[top_k - 1]
        row = [p if p >= kth else 0.0 for p in row]
    if top_p >= 1.0:
        return range(len(row)), row
    limit, largest = top_p * sum(row), max(row)
    if largest >= limit:  # the likeliest character alone (often so: a trained model is mostly sure), unsorted
        return [row.index(largest)], [largest]
    mass, indices = 0.0, []
    for index in sorted(range(len(row)), key=row.__getitem__, reverse=True):
        if mass >= limit:
            break
        indices.append(index)
        mass += row[index]
    return indices, [row[i] for i in indices]


def shape_distribution(probs, temperature=1.0, top_k=0, top_p=1.0):
    """The distribution `sample` draws from, as (B, V) float64 rows summing to 1 (for reports and tests)."""
    shaped = np.zeros(np.shape(probs), dtype=np.float64)
    for out, row in zip(shaped, np.asarray(probs).tolist(), strict=True):
        indices, weights = candidates(row, temperature, top_k, top_p)
        out[list(indices)] = weights
    return shaped / shaped.sum(axis=1, keepdims=True)


def check_row(row):
    """Refuse what no softmax gives: NaN or infinite values, negative values, a row far from summing to 1. A
    damaged model otherwise samples index 0 for ever (a page of spaces) and exits as if all were well. A NaN
    makes the sum NaN, which fails the comparison."""
    if not (abs(sum(row) - 1) <= ROW_SUM_TOLERANCE and min(row) >= 0):
        raise CarolError("the model computed invalid probabilities (NaN, infinite, negative or far from summing "
                         "to 1): the file is damaged; re-export it")
