"""Workflows: one experiment end to end (config -> data -> model -> training -> run folder),
configs by preset name or path, reproducing the seed report, and predicting with and evaluating a
trained model.

Names are imported on first use (PEP 562): an experiment pulls in the compiled engine and
matplotlib, which ``import mlpkit.workflows`` alone should not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpkit.core.lazy import lazy_exports

if TYPE_CHECKING:
    from mlpkit.workflows.configs import preset_names, resolve_config
    from mlpkit.workflows.evaluate import evaluate_model
    from mlpkit.workflows.evaluation import Evaluation
    from mlpkit.workflows.experiment import (
        RunResult,
        build_model,
        check_experiment,
        resume_experiment,
        run_experiment,
    )
    from mlpkit.workflows.experiment_data import data_key, experiment_data
    from mlpkit.workflows.predict import load_predictor, predict_files
    from mlpkit.workflows.reproduce import reproduce_all

_HOMES = {
    "preset_names": "configs",
    "resolve_config": "configs",
    "Evaluation": "evaluation",
    "RunResult": "experiment",
    "build_model": "experiment",
    "check_experiment": "experiment",
    "data_key": "experiment_data",
    "evaluate_model": "evaluate",
    "experiment_data": "experiment_data",
    "resume_experiment": "experiment",
    "run_experiment": "experiment",
    "load_predictor": "predict",
    "predict_files": "predict",
    "reproduce_all": "reproduce",
}
__all__ = [
    "Evaluation",
    "RunResult",
    "build_model",
    "check_experiment",
    "data_key",
    "evaluate_model",
    "experiment_data",
    "load_predictor",
    "predict_files",
    "preset_names",
    "reproduce_all",
    "resolve_config",
    "resume_experiment",
    "run_experiment",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
