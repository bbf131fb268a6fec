import numpy as np

from mlpkit.nn.losses import cross_entropy, log_softmax, softmax, softmax_cross_entropy


def naive(logits, labels):
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    onehot = np.eye(logits.shape[1])[labels]
    return -np.mean(np.log(p[np.arange(len(labels)), labels])), (p - onehot) / len(labels)


def test_matches_naive_formula(rng):
    logits, labels = rng.normal(size=(7, 10)), rng.integers(0, 10, 7)
    loss, grad = softmax_cross_entropy(logits.copy(), labels)
    ref_loss, ref_grad = naive(logits, labels)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(cross_entropy(logits, labels), ref_loss, rtol=1e-12)


def test_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 3.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        loss, grad = softmax_cross_entropy(logits.copy(), np.array([0, 0]))
    assert np.isfinite(loss) and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, (0 + 2e4) / 2, rtol=1e-6)
    np.testing.assert_allclose(log_softmax(logits.astype(np.float64))[0, 0], 0.0, atol=1e-12)


def test_gradient_rows_sum_to_zero_and_in_place(rng):
    logits = rng.normal(size=(5, 10)).astype(np.float32)
    loss, grad = softmax_cross_entropy(logits, rng.integers(0, 10, 5), out=logits)
    assert grad is logits
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-7)


def test_softmax_rows_sum_to_one(rng):
    p = softmax(rng.normal(size=(4, 10)) * 50)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-12)
