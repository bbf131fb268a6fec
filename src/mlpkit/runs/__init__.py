"""Run configs and run folders on disk: the file schema, writing and reading them back.

Names are imported on first use (PEP 562), so ``import mlpkit.runs`` stays cheap and importing
one module (say ``mlpkit.runs.folder`` for a report) does not pull in the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpkit.core.lazy import lazy_exports

if TYPE_CHECKING:
    from mlpkit.runs.checkpoints import checkpoint_files, latest_checkpoint
    from mlpkit.runs.completion import IncompleteRunError
    from mlpkit.runs.config import (
        Config,
        DataConfig,
        ModelConfig,
        TrainConfig,
        from_dict,
        load_config,
        parse_config,
        parse_override,
        to_toml,
        with_overrides,
    )
    from mlpkit.runs.environment import environment_info
    from mlpkit.runs.folder import Run, load_run, new_run_dir
    from mlpkit.runs.footprint import Footprint, available_memory, check_footprint, estimate_footprint
    from mlpkit.runs.loaded_model import LoadedModel, Normalization, Provenance, config_digest
    from mlpkit.runs.lock import RunFolderBusyError, RunLock
    from mlpkit.runs.model_file import load_model, model_from_run, save_model
    from mlpkit.runs.weights import load_weights, save_weights

_HOMES = {
    "checkpoint_files": "checkpoints",
    "latest_checkpoint": "checkpoints",
    "IncompleteRunError": "completion",
    "Config": "config",
    "DataConfig": "config",
    "ModelConfig": "config",
    "TrainConfig": "config",
    "from_dict": "config",
    "load_config": "config",
    "parse_config": "config",
    "parse_override": "config",
    "to_toml": "config",
    "with_overrides": "config",
    "environment_info": "environment",
    "Footprint": "footprint",
    "available_memory": "footprint",
    "check_footprint": "footprint",
    "estimate_footprint": "footprint",
    "Run": "folder",
    "load_run": "folder",
    "new_run_dir": "folder",
    "LoadedModel": "loaded_model",
    "Normalization": "loaded_model",
    "Provenance": "loaded_model",
    "config_digest": "loaded_model",
    "load_model": "model_file",
    "model_from_run": "model_file",
    "save_model": "model_file",
    "RunFolderBusyError": "lock",
    "RunLock": "lock",
    "load_weights": "weights",
    "save_weights": "weights",
}
__all__ = [
    "Config",
    "DataConfig",
    "Footprint",
    "IncompleteRunError",
    "LoadedModel",
    "ModelConfig",
    "Normalization",
    "Provenance",
    "Run",
    "RunFolderBusyError",
    "RunLock",
    "TrainConfig",
    "available_memory",
    "check_footprint",
    "checkpoint_files",
    "config_digest",
    "environment_info",
    "estimate_footprint",
    "from_dict",
    "latest_checkpoint",
    "load_config",
    "load_model",
    "load_run",
    "load_weights",
    "model_from_run",
    "new_run_dir",
    "parse_config",
    "parse_override",
    "save_model",
    "save_weights",
    "to_toml",
    "with_overrides",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
