"""The network: activations, losses, initializers, the MLP (whose layout is the single source),
dropout, the max-norm constraint, gradient checks."""

from mlpkit.nn.activations import ACTIVATIONS, Activation, get_activation
from mlpkit.nn.dropout import Dropout, DropoutMasks
from mlpkit.nn.gradcheck import GradCheckResult, check_gradients
from mlpkit.nn.initializers import INITIALIZERS, get_initializer
from mlpkit.nn.losses import (
    LossScratch,
    check_label_smoothing,
    cross_entropy,
    cross_entropy_sum_and_hits,
    softmax,
    softmax_cross_entropy,
)
from mlpkit.nn.max_norm import apply_max_norm
from mlpkit.nn.mlp import MLP, LayerLayout
from mlpkit.nn.workspace import Workspace

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "MLP",
    "Activation",
    "Dropout",
    "DropoutMasks",
    "GradCheckResult",
    "LayerLayout",
    "LossScratch",
    "Workspace",
    "apply_max_norm",
    "check_gradients",
    "check_label_smoothing",
    "cross_entropy",
    "cross_entropy_sum_and_hits",
    "get_activation",
    "get_initializer",
    "softmax",
    "softmax_cross_entropy",
]
