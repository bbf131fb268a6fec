"""Training: the one loop, its callbacks, checkpoints, Ctrl-C handling and the augmentation feed."""

from mlpkit.train.augment_feed import AugmentFeed, augmented_inputs
from mlpkit.train.callbacks import Callback, Checkpointer, EarlyStopping, History, ProgressBar, TrainerView
from mlpkit.train.checkpoint import load_checkpoint, save_checkpoint
from mlpkit.train.interrupt import InterruptRequest, deferred_interrupts
from mlpkit.train.progress_file import ProgressFile
from mlpkit.train.state import TrainState
from mlpkit.train.trainer import Trainer

__all__ = [
    "AugmentFeed",
    "Callback",
    "Checkpointer",
    "EarlyStopping",
    "History",
    "InterruptRequest",
    "ProgressBar",
    "ProgressFile",
    "TrainState",
    "Trainer",
    "TrainerView",
    "augmented_inputs",
    "deferred_interrupts",
    "load_checkpoint",
    "save_checkpoint",
]
