"""Weight initializers, each drawing from a seeded ``np.random.Generator``.

Shapes are (fan_in, fan_out): a layer computes x @ W. The modern ones follow PyTorch's
formulas (``torch.nn.init``; a torch Linear weight is (fan_out, fan_in), the same fans):

- ``he_uniform``: U(-b, b), b = sqrt(6 / fan_in); ``kaiming_uniform_(nonlinearity="relu")``.
- ``he_normal``: N(0, std), std = sqrt(2 / fan_in); ``kaiming_normal_(nonlinearity="relu")``.
- ``glorot_uniform``: U(-b, b), b = sqrt(6 / (fan_in + fan_out)); ``xavier_uniform_()``.
- ``glorot_normal``: N(0, std), std = sqrt(2 / (fan_in + fan_out)); ``xavier_normal_()``.
- ``lecun_uniform``: U(-b, b), b = sqrt(3 / fan_in); ``kaiming_uniform_`` with gain 1.
- ``lecun_normal``: N(0, std), std = 1 / sqrt(fan_in); ``kaiming_normal_`` with gain 1.

(PyTorch's fan-in mode throughout; "gain 1" is ``nonlinearity="linear"``.) With the seed's
``bias="input_column"`` the first layer's fan_in counts the bias row (785 for MNIST).
``lecun_normal`` draws exactly what ``fan_in_normal`` (the seed report's name) draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlpkit.core.errors import ConfigError

Initializer = Callable[[np.random.Generator, int, int], np.ndarray]


def uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-1, 1): the seed report's baseline."""
    return rng.uniform(-1.0, 1.0, size=(fan_in, fan_out))


def fan_in_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 1/sqrt(fan_in)) (std = 1/sqrt(fan_in)): LeCun's trick, the report's "improved" init."""
    return rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_in, fan_out))


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-l, l), l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, sqrt(2 / fan_in)) (He et al. 2015), for ReLU."""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-b, b), b = sqrt(6 / fan_in) = sqrt(3) * sqrt(2 / fan_in) (He et al. 2015), for ReLU."""
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def glorot_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, sqrt(2 / (fan_in + fan_out))) (Glorot & Bengio 2010)."""
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


def lecun_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-b, b), b = sqrt(3 / fan_in): variance 1 / fan_in (LeCun et al. 1998), for tanh-like units."""
    limit = np.sqrt(3.0 / fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def lecun_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 1/sqrt(fan_in)) (LeCun et al. 1998; untruncated, as kaiming_normal_ with gain 1); = ``fan_in_normal``."""
    return rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_in, fan_out))


INITIALIZERS: dict[str, Initializer] = {
    "uniform": uniform,
    "fan_in_normal": fan_in_normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
}


def get_initializer(name: str) -> Initializer:
    """Look an initializer up by name; an unknown name lists the valid ones."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        valid = ", ".join(sorted(INITIALIZERS))
        raise ConfigError(f"unknown initializer {name!r}; valid: {valid}") from None
