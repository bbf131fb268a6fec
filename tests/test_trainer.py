import os
import signal
import threading

import numpy as np
import pytest

from mlpkit.core.errors import ConfigError
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import Callback, Checkpointer, EarlyStopping, History
from mlpkit.train.trainer import Trainer


def blobs(rng, n=400, d=6, k=3):
    centers = rng.normal(scale=3, size=(k, d))
    y = rng.integers(0, k, n)
    return rng.normal(size=(n, d)) + centers[y], y


def make(rng, *, epochs=3, batch_size=16, callbacks=(), shuffle=True, lr=0.1, drop_last=True, n=400):
    x, y = blobs(rng, n=n)
    model = MLP([8], n_features=6, n_classes=3, activation="improved_sigmoid").init_weights(rng, "fan_in_normal")
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=lr, momentum=0.9),
        rng=rng,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        callbacks=list(callbacks),
    )
    xp = model.prepare_inputs(x)
    return trainer, xp, y


def test_schedule_and_history(rng):
    history = History()
    trainer, x, y = make(rng, callbacks=[history])
    trainer.fit(x[:300], y[:300], x[300:], y[300:])
    assert trainer.steps_per_epoch == 300 // 16 == 18  # drop last incomplete batch
    assert trainer.validate_every == 18 // 5 == 3
    assert history.num_steps == 54 and len(history.train_loss) == 54
    assert history.validation["step"] == list(range(3, 55, 3))
    assert history.validation["val_accuracy"][-1] > 0.9  # separable blobs are learned
    assert np.all(np.isfinite(history.train_loss))


def test_keep_last_batch(rng):
    trainer, x, y = make(rng, drop_last=False, batch_size=16)
    trainer.fit(x[:300], y[:300], x[300:], y[300:])
    assert trainer.steps_per_epoch == 19


def test_no_shuffle_visits_in_order(rng):
    seen = []

    class Spy(Callback):
        def on_step_end(self, trainer, step, loss):
            seen.append(trainer.state.perm.copy())

    trainer, x, y = make(rng, epochs=1, shuffle=False, callbacks=[Spy()])
    trainer.fit(x[:64], y[:64], x[300:], y[300:])
    np.testing.assert_array_equal(seen[0], np.arange(64))


def test_shuffle_changes_order_each_epoch(rng):
    perms = []

    class Spy(Callback):
        def on_epoch_end(self, trainer, epoch):
            pass

        def on_step_end(self, trainer, step, loss):
            if trainer.state.step_in_epoch == 1:
                perms.append(trainer.state.perm.copy())

    trainer, x, y = make(rng, epochs=2, callbacks=[Spy()])
    trainer.fit(x[:64], y[:64], x[300:], y[300:])
    assert len(perms) == 2 and not np.array_equal(perms[0], perms[1])
    assert sorted(perms[0]) == list(range(64))


def test_early_stopping_counts_validation_checks(rng):
    stopper = EarlyStopping(patience=2)
    history = History()
    trainer, x, y = make(rng, epochs=50, lr=0.5, callbacks=[history, stopper])
    # validate on data with random labels: validation loss soon stops improving
    trainer.fit(x[:300], y[:300], x[300:], rng.permutation(y[300:]))
    assert stopper.stopped_step is not None
    vals = history.validation["val_loss"]
    best = int(np.argmin(vals))
    assert len(vals) - 1 - best == 2  # stopped exactly `patience` checks after the best
    assert history.validation["step"][-1] == stopper.stopped_step


def test_restore_best_weights(rng):
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    trainer, x, y = make(rng, epochs=50, lr=0.5, callbacks=[History(), stopper])
    y_val = rng.permutation(y[300:])
    trainer.fit(x[:300], y[:300], x[300:], y_val)
    loss, _ = trainer.model.evaluate(x[300:], y_val)
    assert loss == pytest.approx(stopper.best, rel=1e-5)


def test_ctrl_c_stops_cleanly_after_the_current_step(rng):
    """The first SIGINT is a request: training stops between two steps, keeps every step done
    and says so; the previous handler is back afterwards."""
    history = History()
    seen = []

    class CtrlC(Callback):
        def on_step_end(self, trainer, step, loss):
            seen.append(step)
            if step == 7:
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    trainer, x, y = make(rng, callbacks=[history, CtrlC()])
    state = trainer.fit(x[:300], y[:300], x[300:], y[300:])
    assert state.interrupted and not state.aborted and state.step == 7 and history.num_steps == 7
    assert seen == list(range(1, 8))
    assert signal.getsignal(signal.SIGINT) is before
    state = trainer.fit(x[:300], y[:300], x[300:], y[300:])  # fit again: it goes on to the end
    assert not state.interrupted and state.step == 3 * 18 and history.num_steps == 54


def test_a_second_ctrl_c_interrupts_at_once_and_nothing_is_saved(rng, tmp_path):
    class CtrlCTwice(Callback):
        def on_step_end(self, trainer, step, loss):
            if step == 4:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)

    ended = []

    class End(Callback):
        def on_train_end(self, trainer):
            ended.append(trainer.state.step)

    before = signal.getsignal(signal.SIGINT)
    trainer, x, y = make(rng, callbacks=[CtrlCTwice(), End(), Checkpointer(tmp_path, every=0)])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(x[:300], y[:300], x[300:], y[300:])
    assert trainer.state.aborted and trainer.state.interrupted and ended == [4]
    assert list(tmp_path.glob("step-*.npz")) == []  # a torn state is never saved
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_no_handler_is_installed(rng):
    before = signal.getsignal(signal.SIGINT)
    result = {}
    trainer, x, y = make(rng, epochs=1)

    def train():
        result["state"] = trainer.fit(x[:300], y[:300], x[300:], y[300:])

    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    assert result["state"].step == 18 and signal.getsignal(signal.SIGINT) is before


def test_batch_larger_than_training_set(rng):
    trainer, x, y = make(rng, batch_size=500)
    with pytest.raises(ConfigError, match="batch_size 500 is larger than the training set"):
        trainer.fit(x[:300], y[:300], x[300:], y[300:])


def test_history_grows_with_the_steps_taken_not_the_steps_asked_for():
    """A run that asks for a million epochs and stops after a few holds a few epochs of history."""
    from mlpkit.train.callbacks import History

    rng = np.random.default_rng(0)
    model = MLP([4], n_features=3, n_classes=2).init_weights(rng, "fan_in_normal")
    x = model.prepare_inputs(rng.normal(size=(40, 3)))
    y = rng.integers(0, 2, 40)
    history = History()

    class StopAt(Callback):
        def on_step_end(self, trainer, step, loss):
            if step == 9000:
                trainer.stop_training = True

    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.1),
        rng=rng,
        epochs=10**6,
        batch_size=4,
        validations_per_epoch=0,
        callbacks=[history, StopAt()],
    )
    trainer.fit(x, y)
    assert history.num_steps == 9000 and np.isfinite(history.train_loss).all()
    assert len(history.step_loss) <= 2 * 9000 < trainer.total_steps  # grown by doubling, never to 10**7
