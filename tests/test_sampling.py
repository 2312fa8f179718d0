import numpy as np
import pytest

from carolgen.runtime.errors import CarolError
from carolgen.runtime.sampling import check_sampling, sample, shape_distribution

PROBS = np.array([[0.1, 0.6, 0.2, 0.1], [0.4, 0.1, 0.1, 0.4]], dtype=np.float32)


def test_temperature_zero_is_argmax():
    assert sample(PROBS, 0, 0, 1.0, np.random.default_rng(0)) == [1, 0]


def test_top_k_one_is_greedy_at_any_temperature():
    for seed in range(20):
        assert sample(PROBS[:1], 1.5, 1, 1.0, np.random.default_rng(seed)) == [1]


def test_top_p_keeps_the_smallest_nucleus():
    shaped = shape_distribution(PROBS[:1], 1.0, 0, 0.7)
    assert np.flatnonzero(shaped[0]).tolist() == [1, 2]
    assert shaped.sum() == pytest.approx(1.0)


def test_same_probabilities_and_seed_draw_the_same():
    a = [sample(PROBS, 0.9, 3, 0.95, rng) for rng in [np.random.default_rng(42)] * 50]
    b = [sample(PROBS.astype(np.float64), 0.9, 3, 0.95, rng) for rng in [np.random.default_rng(42)] * 50]
    assert a == b


def test_sampling_follows_the_distribution():
    rng = np.random.default_rng(1)
    draws = np.concatenate([sample(np.repeat(PROBS[:1], 1000, 0), 1.0, 0, 1.0, rng) for _ in range(10)])
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    assert np.allclose(frequencies, PROBS[0], atol=0.02)


@pytest.mark.parametrize("values", [(-0.1, 0, 1.0), (1.0, -1, 1.0), (1.0, 0, 0.0), (1.0, 0, 1.5),
                                    (float("nan"), 0, 1.0), (1.0, 1.5, 1.0)])
def test_nonsense_values_are_refused(values):
    with pytest.raises(CarolError):
        check_sampling(*values)


@pytest.mark.parametrize("row", [[float("nan"), 0.5, 0.5], [-0.2, 0.6, 0.6], [0.2, 0.2, 0.2], [float("inf"), 0, 0]])
def test_invalid_probabilities_are_refused_at_any_setting(row):
    for settings in ((0, 0, 1.0), (0.7, 0, 0.9)):
        with pytest.raises(CarolError, match="invalid probabilities"):
            sample(np.array([row]), *settings, np.random.default_rng(0))


def test_a_character_outside_the_nucleus_is_never_drawn():
    rng = np.random.default_rng(3)
    draws = {sample(PROBS[:1], 1.0, 0, 0.7, rng)[0] for _ in range(500)}
    assert draws == {1, 2}


def test_rows_of_a_batch_are_sampled_as_alone():
    batch = sample(PROBS, 0.8, 0, 0.9, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    assert batch == [sample(PROBS[i:i + 1], 0.8, 0, 0.9, rng)[0] for i in range(2)]
