"""The sequential MLP: dense layers, forward and backward by hand, parameters and state.

Layer i computes z_i = a_i @ W_i (+ b_i) with W_i of shape (fan_in, fan_out); hidden layers
apply the activation, the last layer returns logits (softmax lives in the loss).

Bias conventions:
- ``"input_column"`` (the seed's bias trick): a constant 1 is appended to every input, so
  the first weight matrix has ``n_features + 1`` rows and later layers have no bias
  (785*64 + 64*10 = 50,880 parameters for [64, 10]).
- ``"per_layer"``: every layer has its own bias vector (the usual framework convention).

The hot path (``loss_and_gradients``/``evaluate``) writes into a :class:`Workspace` allocated
once, so a training step allocates no arrays. All parameters are views into one flat buffer
(and so are the gradients of ``new_gradients``), which lets the optimizer update every
layer with a handful of whole-buffer operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.core.arrays import aligned_zeros
from mlpkit.core.errors import CheckpointError, ConfigError
from mlpkit.nn import inputs
from mlpkit.nn.activations import get_activation
from mlpkit.nn.initializers import get_initializer
from mlpkit.nn.losses import cross_entropy_sum_and_hits, softmax_cross_entropy
from mlpkit.nn.workspace import Workspace

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.nn.dropout import DropoutMasks

BIAS_MODES = ("input_column", "per_layer")
DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype: str | type | np.dtype) -> np.dtype:
    """float32 or float64, by name or dtype; anything else is a ConfigError."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
        return np.dtype(DTYPES[dtype])
    resolved = np.dtype(dtype)
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ConfigError(f"unsupported dtype {resolved}; valid: float32, float64")
    return resolved


@dataclass(frozen=True)
class LayerLayout:
    """Where one layer lives in the flat parameter buffer (element offsets).

    The model's ``layout`` is the single description of that buffer: the parameter views,
    the gradients and the compiled kernels all take it from there.
    """

    weight_offset: int  # W (fan_in, fan_out), C-ordered, starts here
    fan_in: int
    fan_out: int
    bias_offset: int | None  # b (fan_out,) starts here; None: the layer has no bias


class MLP:
    """A multilayer perceptron classifier with hand-written backpropagation.

    Parameters
    ----------
    hidden : sequence of int
        Sizes of the hidden layers, first to last (``[64]``; at least one).
    n_features : int, default 784
        Features of a raw input (before the bias column).
    n_classes : int, default 10
        Output classes; the last layer returns their logits.
    activation : str, default "sigmoid"
        Hidden-layer activation, by name (see :data:`mlpkit.nn.activations.ACTIVATIONS`).
    bias : {"per_layer", "input_column"}, default "per_layer"
        A bias vector per layer (the modern default) or the seed's bias trick (a constant 1
        appended to every input).
    dtype : {"float32", "float64"}, default "float32"
        Parameters, activations and prepared inputs use it.

    Raises
    ------
    ConfigError
        A size, name or dtype that is not one of the valid ones.

    Notes
    -----
    The weights start at zero: call :meth:`init_weights` before training.
    """

    def __init__(
        self,
        hidden: Sequence[int],
        *,
        n_features: int = 784,
        n_classes: int = 10,
        activation: str = "sigmoid",
        bias: str = "per_layer",
        dtype: str | np.dtype = "float32",
    ) -> None:
        hidden = list(hidden)
        if not hidden:
            raise ConfigError("hidden must list at least one hidden layer size, e.g. [64]")
        for size in [*hidden, n_features, n_classes]:
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
                raise ConfigError(f"layer sizes must be positive integers, got {size!r}")
        if bias not in BIAS_MODES:
            raise ConfigError(f"unknown bias mode {bias!r}; valid: {', '.join(BIAS_MODES)}")
        self.hidden = [int(h) for h in hidden]
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)
        self.activation = get_activation(activation)
        self.bias = bias
        self.dtype = resolve_dtype(dtype)
        self.input_width = self.n_features + (1 if bias == "input_column" else 0)
        sizes = [self.input_width, *self.hidden, self.n_classes]
        self.shapes = list(zip(sizes[:-1], sizes[1:]))
        self.layout = self._make_layout()
        last = self.layout[-1]
        size = (
            (last.bias_offset + last.fan_out)
            if last.bias_offset is not None
            else last.weight_offset + last.fan_in * last.fan_out
        )
        self._flat = aligned_zeros(size, self.dtype)
        views = self._views_of(self._flat)
        per = 2 if bias == "per_layer" else 1
        self.weights = views[::per]
        self.biases: list[np.ndarray] | None = views[1::2] if bias == "per_layer" else None

    # ----------------------------------------------------------------- parameters
    @property
    def num_layers(self) -> int:
        return len(self.shapes)

    def _make_layout(self) -> tuple[LayerLayout, ...]:
        """Layer after layer: W_i, then b_i when every layer has a bias, nothing between."""
        layers, offset = [], 0
        for fan_in, fan_out in self.shapes:
            weight_offset = offset
            offset += fan_in * fan_out
            bias_offset = None
            if self.bias == "per_layer":
                bias_offset = offset
                offset += fan_out
            layers.append(LayerLayout(weight_offset, fan_in, fan_out, bias_offset))
        return tuple(layers)

    @property
    def flat_parameters(self) -> np.ndarray:
        """Every parameter in one 1-D buffer (``ALIGNMENT``-aligned), laid out as ``layout`` says;
        ``parameters()`` are views of it, so writing either changes both."""
        return self._flat

    def _views_of(self, flat: np.ndarray) -> list[np.ndarray]:
        """Views of ``flat`` shaped like the parameters, in ``parameters()`` order, where ``layout`` puts them."""
        views = []
        for layer in self.layout:
            w = layer.weight_offset
            views.append(flat[w : w + layer.fan_in * layer.fan_out].reshape(layer.fan_in, layer.fan_out))
            if layer.bias_offset is not None:
                views.append(flat[layer.bias_offset : layer.bias_offset + layer.fan_out])
        return views

    def init_weights(self, rng: np.random.Generator, initializer: str = "uniform") -> MLP:
        """Draw every weight matrix (first layer first) from ``initializer``; biases start at 0."""
        init = get_initializer(initializer)
        for w, (fan_in, fan_out) in zip(self.weights, self.shapes):
            w[...] = init(rng, fan_in, fan_out)
        if self.biases is not None:
            for b in self.biases:
                b[...] = 0
        return self

    def parameters(self) -> list[np.ndarray]:
        """All parameter arrays in a fixed order: W_0, (b_0), W_1, (b_1), ..."""
        params: list[np.ndarray] = []
        for i, w in enumerate(self.weights):
            params.append(w)
            if self.biases is not None:
                params.append(self.biases[i])
        return params

    def parameter_names(self) -> list[str]:
        names: list[str] = []
        for i in range(self.num_layers):
            names.append(f"layers.{i}.weight")
            if self.biases is not None:
                names.append(f"layers.{i}.bias")
        return names

    @property
    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {n: p.copy() for n, p in zip(self.parameter_names(), self.parameters())}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters; names and shapes must match exactly."""
        expected = self.parameter_names()
        missing = [n for n in expected if n not in state]
        extra = [n for n in state if n not in expected]
        if missing or extra:
            raise CheckpointError(f"weights do not fit this model: missing {missing}, unexpected {extra}")
        for name, param in zip(expected, self.parameters()):
            value = np.asarray(state[name])
            if value.shape != param.shape:
                raise CheckpointError(
                    f"weights do not fit this model: {name} has shape {value.shape}, expected {param.shape}"
                )
            param[...] = value

    def describe(self) -> str:
        """A human-readable table of layers and parameter counts."""
        lines = [f"MLP ({self.activation.name} hidden, softmax output, {self.dtype.name}, bias={self.bias})"]
        digits = len(str(self.num_layers - 1))  # layer numbers right-aligned: the columns line up
        for i, (fan_in, fan_out) in enumerate(self.shapes):
            kind = "hidden" if i < self.num_layers - 1 else "output"
            n_bias = fan_out if self.biases is not None else 0
            note = " (incl. bias column)" if i == 0 and self.bias == "input_column" else ""
            act = self.activation.name if kind == "hidden" else "softmax"
            lines.append(
                f"  layer {i:>{digits}}: {fan_in:>5} -> {fan_out:<5} {kind:<6} {act:<16}"
                f" {fan_in * fan_out + n_bias:>9,} params{note}"
            )
        lines.append(f"  total parameters: {self.num_parameters} ({self.num_parameters:,})")
        return "\n".join(lines)

    # --------------------------------------------------------------------- inputs
    def prepare_inputs(self, x: np.ndarray) -> np.ndarray:
        """Validate raw features (N, n_features), cast to the model dtype, add the bias column."""
        return inputs.prepare_inputs(x, self.n_features, self.dtype, bias_column=self.bias == "input_column")

    def check_prepared(self, x: np.ndarray, what: str = "inputs") -> None:
        """Raise a clear InputError unless ``x`` looks like ``prepare_inputs``'s output: a 2-D
        array of ``input_width`` columns, not empty, of finite floats (``what`` names it)."""
        inputs.check_prepared(x, self.input_width, what)

    def check_labels(self, y: np.ndarray, n: int) -> np.ndarray:
        """Integer labels (N,) in [0, n_classes), as intp for fast indexing."""
        return inputs.check_labels(y, n, self.n_classes)

    # ---------------------------------------------------------------- workspace
    def workspace(self, capacity: int, *, with_batch: bool = False) -> Workspace:
        """Buffers for batches of up to ``capacity`` rows (and, ``with_batch``, a gathered batch)."""
        return Workspace(
            capacity,
            [fan_out for _, fan_out in self.shapes],
            self.dtype,
            input_width=self.input_width if with_batch else None,
            preactivations=self.activation.from_input,
        )

    def new_gradients(self) -> list[np.ndarray]:
        """Zeroed arrays shaped like ``parameters()``: views into one flat buffer."""
        return self._views_of(np.zeros_like(self._flat))

    # ------------------------------------------------------------ forward/backward
    def forward(self, x: np.ndarray, ws: Workspace, dropout: DropoutMasks | None = None) -> np.ndarray:
        """Logits (n, K) for prepared inputs ``x`` (n <= ws.capacity rows); activations kept in ws.

        z_i = a_i W_i (+ b_i), a_{i+1} = f(z_i) (a_i * mask_i with ``dropout``); the last layer
        is computed transposed, z_L^T = W_L^T a_L^T, into a (K, n) buffer whose transpose is returned.
        """
        rows = ws.rows(x.shape[0])
        biases, forward = self.biases, self.activation.forward
        a = x if dropout is None else dropout.apply(0, x)
        for i, (z, out) in enumerate(zip(rows.zs, rows.outputs[:-1])):  # z is out unless f needs z later
            np.matmul(a, self.weights[i], out=z)
            if biases is not None:
                z += biases[i]
            forward(z, out=out)
            a = out if dropout is None else dropout.apply(i + 1, out)
        np.matmul(self.weights[-1].T, a.T, out=rows.logits_t)
        if biases is not None:
            rows.logits_t += biases[-1][:, None]
        return rows.outputs[-1]

    def backward(
        self,
        x: np.ndarray,
        ws: Workspace,
        dlogits: np.ndarray,
        grads: list[np.ndarray],
        dropout: DropoutMasks | None = None,
    ) -> None:
        """Write dL/dparam into ``grads`` given dL/dlogits, after ``forward(x, ws, dropout)``.

        delta_L = dL/dz_L;  dW_i = a_i^T delta_{i+1};  db_i = sum_n delta_{i+1};
        delta_i = (delta_{i+1} W_i^T) * mask_i * f'(z_i)  (f' from a_i or, ``from_input``, z_i).
        """
        rows = ws.rows(x.shape[0])
        biased = self.biases is not None
        per = 2 if biased else 1
        backprop = self.activation.backprop
        assert backprop is not None  # Activation.__post_init__ always sets it
        delta = dlogits
        for i in range(self.num_layers - 1, -1, -1):
            a_in = x if i == 0 else rows.outputs[i - 1]
            if dropout is not None:
                a_in = dropout.layer_input(i, a_in)
            np.matmul(a_in.T, delta, out=grads[per * i])
            if biased:
                np.sum(delta, axis=0, out=grads[per * i + 1])
            if i > 0:
                prev = rows.deltas[i - 1]
                np.matmul(delta, self.weights[i].T, out=prev)
                if dropout is not None:
                    dropout.backprop(i, prev)
                delta = backprop(prev, rows.zs[i - 1], rows.scratch[i - 1])  # a_i, or z_i (from_input)

    def loss_and_gradients(
        self,
        x: np.ndarray,
        y: np.ndarray,
        ws: Workspace,
        grads: list[np.ndarray],
        *,
        dropout: DropoutMasks | None = None,
        label_smoothing: float = 0.0,
    ) -> float:
        """Mean cross-entropy of a prepared batch; gradients written into ``grads``. A training
        step passes its drawn ``dropout`` masks and the loss's ``label_smoothing`` (see
        :func:`~mlpkit.nn.losses.softmax_cross_entropy`); both default to off."""
        logits = self.forward(x, ws, dropout)
        loss, dlogits = softmax_cross_entropy(logits, y, out=logits, scratch=ws.loss, label_smoothing=label_smoothing)
        self.backward(x, ws, dlogits, grads, dropout)
        return loss

    def evaluate(self, x: np.ndarray, y: np.ndarray, ws: Workspace | None = None) -> tuple[float, float]:
        """Mean cross-entropy and accuracy over prepared inputs, in chunks of ws.capacity rows.

        Each chunk is one matrix product per layer plus a few vectorized passes over its
        (chunk, K) logits; nothing is allocated when ``ws`` is given.
        """
        ws = ws or self.workspace(min(len(x), 8192))
        total_loss = 0.0
        correct = 0
        for start in range(0, len(x), ws.capacity):
            xb, yb = x[start : start + ws.capacity], y[start : start + ws.capacity]
            loss_sum, hits = cross_entropy_sum_and_hits(self.forward(xb, ws), yb, scratch=ws.loss)
            total_loss += loss_sum
            correct += hits
        return total_loss / len(x), correct / len(x)

    def predict_logits(self, x: np.ndarray, *, prepared: bool = False) -> np.ndarray:
        """Logits (N, n_classes) of raw inputs, or of prepared ones (``prepared=True``, checked
        to be finite: a NaN would come back as a NaN probability and class 0)."""
        if prepared:
            self.check_prepared(x)
        else:
            x = self.prepare_inputs(x)
        ws = self.workspace(min(len(x), 8192))
        out = np.empty((len(x), self.n_classes), dtype=self.dtype)
        for start in range(0, len(x), ws.capacity):
            out[start : start + ws.capacity] = self.forward(x[start : start + ws.capacity], ws)
        return out

    def predict_proba(self, x: np.ndarray, *, prepared: bool = False) -> np.ndarray:
        """Class probabilities (N, n_classes)."""
        from mlpkit.nn.losses import softmax

        logits = self.predict_logits(x, prepared=prepared)
        return softmax(logits, out=logits)

    def predict(self, x: np.ndarray, *, prepared: bool = False) -> np.ndarray:
        """Predicted class labels (N,)."""
        return self.predict_logits(x, prepared=prepared).argmax(axis=1)
