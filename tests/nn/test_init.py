"""nn.init: torch's formulas (gains, fans, bounds, stds), in place, float32 draws, and one seed -> one result."""

import math

import numpy as np
import pytest

import numpy2gpt.nn as nn
from numpy2gpt.autograd import Tensor, default_generator, manual_seed
from numpy2gpt.nn import init


@pytest.fixture(autouse=True)
def _seed():
    manual_seed(0)  # statistics below are checked at ~5 standard errors; the seed keeps them reproducible


def param(*shape, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1.0 and init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_gain_and_fans_match_torch():
    torch = pytest.importorskip("torch")
    for name, p in [("linear", None), ("relu", None), ("tanh", None), ("leaky_relu", None), ("leaky_relu", 0.2)]:
        assert init.calculate_gain(name, p) == pytest.approx(torch.nn.init.calculate_gain(name, p))
    for shape in [(5, 3), (64, 32, 3, 3), (7, 2, 4)]:
        expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert init._calculate_fan_in_and_fan_out(np.zeros(shape, dtype=np.float32)) == expected


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(param(5))


@pytest.mark.parametrize(
    ("fn", "kwargs", "shape", "bound"),
    [
        (init.kaiming_uniform_, {}, (200, 300), math.sqrt(2) * math.sqrt(3 / 300)),  # a=0: leaky_relu gain sqrt(2)
        (init.kaiming_uniform_, {"a": math.sqrt(5)}, (200, 300), 1 / math.sqrt(300)),
        (
            init.kaiming_uniform_,
            {"mode": "fan_out", "nonlinearity": "relu"},
            (200, 300),
            math.sqrt(2) * math.sqrt(3 / 200),
        ),
        (init.xavier_uniform_, {}, (200, 300), math.sqrt(6 / 500)),
        (init.xavier_uniform_, {"gain": 2.0}, (20, 30, 3), 2 * math.sqrt(6 / (90 + 60))),
    ],
)
def test_uniform_family_bounds(fn, kwargs, shape, bound):
    p = param(*shape)
    data = p.data
    assert fn(p, **kwargs) is p and p.data is data and p.dtype == np.float32
    assert np.abs(data).max() <= bound
    assert np.abs(data).max() > 0.99 * bound  # the whole interval is used
    std = bound / math.sqrt(3)
    assert data.std() == pytest.approx(std, rel=5 / math.sqrt(2 * data.size))  # 5 standard errors
    assert abs(float(data.mean())) < 5 * std / math.sqrt(data.size)


@pytest.mark.parametrize(
    ("fn", "kwargs", "shape", "std"),
    [
        (init.kaiming_normal_, {}, (200, 300), math.sqrt(2) / math.sqrt(300)),
        (init.kaiming_normal_, {"a": 0.2}, (200, 300), math.sqrt(2 / (1 + 0.04)) / math.sqrt(300)),
        (init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "tanh"}, (200, 300), (5 / 3) / math.sqrt(200)),
        (init.xavier_normal_, {}, (200, 300), math.sqrt(2 / 500)),
        (init.normal_, {"mean": 0.0, "std": 0.02}, (200, 300), 0.02),
    ],
)
def test_normal_family_std(fn, kwargs, shape, std):
    p = param(*shape)
    fn(p, **kwargs)
    assert p.dtype == np.float32
    assert p.data.std() == pytest.approx(std, rel=5 / math.sqrt(2 * p.data.size))  # 5 standard errors
    assert abs(float(p.data.mean())) < 5 * std / math.sqrt(p.data.size)


def test_normal_mean_uniform_range_constants():
    p = param(100, 100)
    init.normal_(p, mean=3.0, std=0.5)
    assert p.data.mean() == pytest.approx(3.0, abs=0.02)
    init.uniform_(p, -2.0, 5.0)
    assert p.data.min() >= -2.0 and p.data.max() <= 5.0 and p.data.mean() == pytest.approx(1.5, abs=0.1)
    init.zeros_(p)
    assert not p.data.any()
    init.ones_(p)
    assert (p.data == 1).all()
    init.constant_(p, 0.25)
    assert (p.data == 0.25).all() and p.dtype == np.float32
    init.trunc_normal_(p, std=1.0, a=-0.5, b=0.5)
    assert p.data.min() >= -0.5 and p.data.max() <= 0.5 and p.data.std() > 0.2


def test_draws_are_float32_and_seeded():
    """normal_ on a float32 parameter is exactly rng.standard_normal(dtype=float32) * std + mean: no float64
    draw rounded down, and manual_seed fixes it."""
    manual_seed(123)
    p = param(4, 5)
    init.normal_(p, mean=1.0, std=0.02)
    expected = np.random.default_rng(123).standard_normal((4, 5), dtype=np.float32)
    expected *= np.float32(0.02)
    expected += np.float32(1.0)
    np.testing.assert_array_equal(p.data, expected)

    manual_seed(7)
    a = init.kaiming_uniform_(param(8, 3), a=math.sqrt(5)).data.copy()
    manual_seed(7)
    b = init.kaiming_uniform_(param(8, 3), a=math.sqrt(5)).data.copy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, init.kaiming_uniform_(param(8, 3), a=math.sqrt(5)).data)


def test_explicit_generator_leaves_the_default_alone():
    manual_seed(0)
    state = default_generator().bit_generator.state
    x = init.normal_(param(3, 3), generator=np.random.default_rng(5)).data
    assert default_generator().bit_generator.state == state
    np.testing.assert_array_equal(x, np.random.default_rng(5).standard_normal((3, 3), dtype=np.float32))


def test_float64_and_float16_targets_keep_their_dtype():
    p64 = param(50, 50, dtype=np.float64)
    init.xavier_normal_(p64)
    assert p64.dtype == np.float64 and p64.data.std() > 0
    p16 = param(50, 50, dtype=np.float16)
    init.uniform_(p16, -1, 1)
    assert p16.dtype == np.float16 and np.abs(p16.data).max() <= 1


def test_plain_tensors_and_arrays_accepted_integers_refused():
    t = Tensor(np.zeros((3, 3), dtype=np.float32))
    init.ones_(t)
    assert (t.data == 1).all()
    a = np.zeros((2, 2), dtype=np.float32)
    init.constant_(a, 2.0)
    assert (a == 2).all()
    with pytest.raises(TypeError, match="floating"):
        init.normal_(Tensor(np.zeros(3, dtype=np.int64)))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(param(2, 2), mode="fan_avg")


def test_zero_element_weights_are_left_alone():
    assert init.kaiming_uniform_(param(3, 0)).shape == (3, 0)
    assert init.kaiming_normal_(param(0, 3)).shape == (0, 3)
    assert nn.Linear(0, 4).weight.shape == (4, 0)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="Tensor or an ndarray in place, got list"):
        init.normal_([0.0, 0.0])
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(param(3), a=1.0, b=-1.0)
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", "0.2")
