"""Training: the one loop, its callbacks, checkpoints and Ctrl-C handling."""

from mlpkit.train.callbacks import Callback, Checkpointer, EarlyStopping, History, ProgressBar, TrainerView
from mlpkit.train.checkpoint import load_checkpoint, save_checkpoint
from mlpkit.train.interrupt import InterruptRequest, deferred_interrupts
from mlpkit.train.state import TrainState
from mlpkit.train.trainer import Trainer

__all__ = [
    "Callback",
    "Checkpointer",
    "EarlyStopping",
    "History",
    "InterruptRequest",
    "ProgressBar",
    "TrainState",
    "Trainer",
    "TrainerView",
    "deferred_interrupts",
    "load_checkpoint",
    "save_checkpoint",
]
