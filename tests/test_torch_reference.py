"""One SGD step against PyTorch in float64: loss, every gradient and the momentum update.

PyTorch is a test dependency only, the reference framework; mlpkit computes everything by hand.
"""

import numpy as np
import pytest

from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD

torch = pytest.importorskip("torch")

TORCH_ACT = {
    "sigmoid": torch.sigmoid,
    "improved_sigmoid": lambda z: 1.7159 * torch.tanh(2 * z / 3),
    "tanh": torch.tanh,
    "relu": torch.relu,
}


@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("hidden", [[16], [12, 9], [8, 7, 6]])
@pytest.mark.parametrize("activation", sorted(TORCH_ACT))
def test_one_step_equals_pytorch(activation, hidden, bias):
    rng = np.random.default_rng(7)
    model = MLP(hidden, n_features=20, n_classes=10, activation=activation, bias=bias, dtype="float64")
    model.init_weights(rng, "fan_in_normal")
    if model.biases is not None:
        for b in model.biases:
            b[...] = rng.normal(size=b.shape)
    x_raw, y = rng.normal(size=(11, 20)), rng.integers(0, 10, 11)
    x = model.prepare_inputs(x_raw)

    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in model.parameters()]
    # Give the optimizer a non-zero velocity first, so the momentum rule itself is tested.
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(tparams, lr=0.05, momentum=0.9)
    for _ in range(2):
        ws, grads = model.workspace(len(x)), model.new_gradients()
        loss = model.loss_and_gradients(x, y, ws, grads)

        topt.zero_grad()
        a = torch.tensor(x)
        per = 2 if bias == "per_layer" else 1
        for i in range(model.num_layers):
            a = a @ tparams[per * i] + (tparams[per * i + 1] if bias == "per_layer" else 0)
            if i < model.num_layers - 1:
                a = TORCH_ACT[activation](a)
        tloss = torch.nn.functional.cross_entropy(a, torch.tensor(y))
        tloss.backward()

        assert abs(loss - tloss.item()) <= 1e-10
        for g, tp in zip(grads, tparams):
            np.testing.assert_allclose(g, tp.grad.numpy(), rtol=0, atol=1e-10)
        opt.step(grads)
        topt.step()
        for p, tp in zip(model.parameters(), tparams):
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=0, atol=1e-10)
