"""Sweep files: parsing, one error line per mistake, trial expansion and names (no Dask here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpkit.core.errors import ConfigError
from mlpkit.workflows.sweep.driver import check_sweep_folder, plan_sweep
from mlpkit.workflows.sweep.spec import parse_spec
from mlpkit.workflows.sweep.trials import expand, random_samples, trial_name

SPEC = """
preset = "task3c"
seeds = [0, 1]
[set]
epochs = 2
"data.dataset" = "digits"
[grid]
"model.hidden" = [[32], [64, 64]]
learning_rate = [0.01, 0.02]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_grid_times_seeds_with_readable_unique_names(tmp_path: Path) -> None:
    spec, trials = plan_sweep(write(tmp_path, SPEC))
    assert spec.swept == ["model.hidden", "train.learning_rate"]  # the alias is expanded
    assert len(trials) == 8
    names = [t.name for t in trials]
    assert len(set(names)) == 8
    assert names[0] == "hidden=32_lr=0.01_seed=0"
    assert "hidden=64x64_lr=0.02_seed=1" in names
    t = next(t for t in trials if t.name == "hidden=64x64_lr=0.02_seed=1")
    assert t.config.model.hidden == (64, 64) or list(t.config.model.hidden) == [64, 64]
    assert t.config.train.learning_rate == 0.02 and t.config.seed == 1
    assert t.config.train.epochs == 2 and t.config.data.dataset == "digits"


def test_random_samples_are_seeded_and_crossed_with_the_grid(tmp_path: Path) -> None:
    text = (
        SPEC
        + '[random]\ntrials = 3\n"train.momentum" = { uniform = [0.5, 0.95] }\n'
        + ('batch_size = { choice = [16, 32] }\n"train.weight_decay" = { loguniform = [1e-5, 1e-3] }\n')
    )
    spec, trials = plan_sweep(write(tmp_path, text))
    assert len(trials) == 4 * 3 * 2
    again = plan_sweep(write(tmp_path, text))[1]
    assert [t.name for t in trials] == [t.name for t in again]
    assert [t.params for t in trials] == [t.params for t in again]
    samples = random_samples(spec)
    assert all(0.5 <= s["train.momentum"] <= 0.95 and s["train.batch_size"] in (16, 32) for s in samples)
    assert all(1e-5 <= s["train.weight_decay"] <= 1e-3 for s in samples)
    assert trials[0].name.startswith("r0_hidden=32_lr=0.01_momentum=")
    other = parse_spec({**spec.to_dict(), "seed": 7, "set": spec.fixed})
    assert random_samples(other) != samples  # another sampling seed, other samples


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('preset = "task3c"\nbogus = 1\n', "unknown key(s) bogus"),
        ('preset = "task3c"\n[grid]\nlearning_rate = []\n', "[grid] learning_rate: expected a non-empty list"),
        ('preset = "task3c"\n[random]\ntrials = 2\nmomentum = { normal = [0, 1] }\n', "[random] momentum: expected"),
        ('preset = "task3c"\n[random]\ntrials = 2\nmomentum = { uniform = [0.9, 0.1] }\n', "low < high"),
        ('preset = "task3c"\n[random]\nmomentum = { uniform = [0.1, 0.9] }\n', "trials must be an integer"),
        ('preset = "task3c"\nseeds = []\n', "'seeds' must be a non-empty list"),
        ("seeds = [0]\n", "'preset' is required"),
        ('preset = "task3c"\n[set]\nepochs = 2\n[grid]\nepochs = [1, 2]\n', "both fixed in [set] and swept"),
    ],
)
def test_each_mistake_is_one_line_naming_it(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        plan_sweep(write(tmp_path, text))
    assert expected in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "spec.toml"))


def test_several_mistakes_give_one_line_each(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        plan_sweep(write(tmp_path, 'preset = "task3c"\nbogus = 1\n[grid]\nlr = []\n'))
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and "bogus" in lines[0] and "[grid] lr" in lines[1]


def test_keys_and_values_are_checked_by_the_config_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key 'model.hiden'"):
        plan_sweep(write(tmp_path, 'preset = "task3c"\n[grid]\n"model.hiden" = [[32]]\n'))
    with pytest.raises(ConfigError, match=r"trial lr=-1_seed=0: .*learning_rate"):
        plan_sweep(write(tmp_path, 'preset = "task3c"\n[grid]\nlr = [0.1, -1.0]\n'))
    with pytest.raises(ConfigError, match="unknown preset 'task99'"):
        plan_sweep(write(tmp_path, 'preset = "task99"\n'))
    with pytest.raises(ConfigError, match=r"\[set\]: unknown config key 'train.epoch'"):
        plan_sweep(write(tmp_path, 'preset = "task3c"\n[set]\n"train.epoch" = 3\n'))


def test_names_are_sanitized_and_bounded() -> None:
    name = trial_name({"data.dataset": "a/b c", "model.hidden": [64] * 60}, 3, ["data.dataset", "model.hidden"])
    assert "/" not in name and " " not in name and len(name) <= 120
    other = trial_name({"data.dataset": "a/b c", "model.hidden": [64] * 61}, 3, ["data.dataset", "model.hidden"])
    assert other != name  # cut names keep a digest of the whole


def test_duplicate_display_names_are_made_unique(tmp_path: Path) -> None:
    spec, trials = plan_sweep(write(tmp_path, 'preset = "task3c"\n[grid]\nlr = [0.123451, 0.123452]\n'))
    assert [t.name for t in trials] == ["lr=0.1235_seed=0", "lr=0.1235_seed=0-2"]
    assert expand(spec)[1].config.train.learning_rate == 0.123452


def test_a_folder_of_another_spec_is_refused(tmp_path: Path) -> None:
    from mlpkit.core.fileio import atomic_write_json
    from mlpkit.workflows.sweep.driver import _record

    spec, trials = plan_sweep(write(tmp_path, SPEC))
    out = tmp_path / "out"
    out.mkdir()
    atomic_write_json(out / "sweep.json", _record(spec, trials))
    check_sweep_folder(out, _record(spec, trials))  # the same spec: fine
    spec2, trials2 = plan_sweep(write(tmp_path, SPEC.replace("epochs = 2", "epochs = 3")))
    with pytest.raises(ConfigError, match="holds a sweep of another spec .*set"):
        check_sweep_folder(out, _record(spec2, trials2))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a sweep folder"):
        check_sweep_folder(tmp_path / "other", _record(spec, trials))


def test_importing_the_cli_does_not_import_dask() -> None:
    import subprocess
    import sys

    code = (
        "import mlpkit.cli, mlpkit.workflows.sweep, sys;"
        " print([m for m in sys.modules if m.startswith(('dask', 'distributed'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_config_file_preset_is_found_beside_the_spec(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text('name = "base"\n[train]\nepochs = 3\n', encoding="utf-8")
    spec, trials = plan_sweep(write(tmp_path, 'preset = "base.toml"\n[grid]\nlr = [0.1]\n'))
    assert spec.preset == str((tmp_path / "base.toml").resolve())
    assert trials[0].config.name == "base" and trials[0].config.train.epochs == 3
