import numpy as np
import pytest

from mlpkit.core.errors import CheckpointError, ConfigError
from mlpkit.optim.sgd import SGD


def test_momentum_convention_exact_steps():
    """v = g + gamma v; w -= lr v, velocity starting at zero (pinned to exact numbers)."""
    w = np.array([1.0, -2.0])
    opt = SGD([w], lr=0.5, momentum=0.9)
    opt.step([np.array([1.0, 2.0])])  # v = [1, 2]; w = [0.5, -3]
    np.testing.assert_array_equal(w, [0.5, -3.0])
    opt.step([np.array([1.0, 0.0])])  # v = [1 + 0.9, 1.8]; w = [0.5 - 0.95, -3 - 0.9]
    np.testing.assert_allclose(w, [0.5 - 0.95, -3.9], rtol=0, atol=1e-15)
    np.testing.assert_allclose(opt.velocity[0], [1.9, 1.8], rtol=0, atol=1e-15)


def test_plain_sgd_without_momentum():
    w = np.array([3.0])
    opt = SGD([w], lr=0.1)
    for _ in range(3):
        opt.step([np.array([1.0])])
    np.testing.assert_allclose(w, [2.7])
    assert not opt.velocity[0].any()


def test_state_round_trip():
    w = np.zeros(3)
    opt = SGD([w], lr=0.1, momentum=0.5)
    opt.step([np.ones(3)])
    other = SGD([w.copy()], lr=0.1, momentum=0.5)
    other.load_state_dict(opt.state_dict())
    np.testing.assert_array_equal(other.velocity[0], opt.velocity[0])
    with pytest.raises(CheckpointError, match="velocity.0"):
        other.load_state_dict({"velocity.0": np.zeros(4)})


@pytest.mark.parametrize(
    ("lr", "momentum", "match"),
    [
        (0.0, 0.0, "learning_rate must be > 0"),
        (-1.0, 0.0, "learning_rate must be > 0"),
        (float("nan"), 0.0, "learning_rate"),
        (0.1, 1.0, r"momentum must lie in \[0, 1\)"),
        (0.1, -0.5, "momentum"),
    ],
)
def test_bad_hyperparameters(lr, momentum, match):
    with pytest.raises(ConfigError, match=match):
        SGD([np.zeros(1)], lr=lr, momentum=momentum)
