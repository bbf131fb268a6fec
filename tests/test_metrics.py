import numpy as np
import pytest

from mlpkit.core.metrics import accuracy, confusion_matrix, most_confused_pairs, per_class_accuracy


def test_confusion_and_derived():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 0])
    c = confusion_matrix(y_true, y_pred, n_classes=3)
    np.testing.assert_array_equal(c, [[1, 1, 0], [0, 2, 0], [2, 0, 1]])
    assert c.sum() == len(y_true)
    np.testing.assert_allclose(per_class_accuracy(c), [0.5, 1.0, 1 / 3])
    assert most_confused_pairs(c, k=2) == [(2, 0, 2), (0, 1, 1)]
    assert accuracy(y_true, y_pred) == pytest.approx(4 / 7)


def test_accuracy_rejects_mismatch():
    with pytest.raises(ValueError, match="equal"):
        accuracy(np.zeros(3), np.zeros(4))
