"""``mlpkit data``: the IDX data sets' statistics and verified downloads."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from mlpkit.cli.app import data_dir_option, dataset_option, main


# ---------------------------------------------------------------------- data
@main.group()
def data() -> None:
    """The IDX data sets (MNIST, Fashion-MNIST, KMNIST): statistics and download."""


@data.command("stats")
@dataset_option
@data_dir_option
@click.option(
    "--split",
    default="seed",
    show_default=True,
    help="seed (first 20,000 train / 10,000 test) or full (55,000 / 5,000 of the training set).",
)
def data_stats(dataset: str, data_dir: Path | None, split: str) -> None:
    """Split sizes and the training set's pixel mean and std."""
    from mlpkit.data import IDX_DATASETS, Normalizer, load_idx_arrays, make_split, resolve_idx_dir

    arrays = load_idx_arrays(dataset, data_dir)
    sp = make_split(arrays, split)
    norm = Normalizer.fit(sp.x_train)
    click.echo(f"data folder:     {resolve_idx_dir(dataset, data_dir) or '(downloaded to cache)'}")
    click.echo(f"split:           {split}")
    click.echo(f"training:        {len(sp.x_train)} images")
    click.echo(f"validation:      {len(sp.x_val)} images")
    if sp.x_test is not None:
        click.echo(f"test:            {len(sp.x_test)} images")
    click.echo(f"training mean:   {norm.mean!r}")
    click.echo(f"training std:    {norm.std!r}")
    classes = IDX_DATASETS[dataset].classes
    labels, counts = np.unique(np.asarray(sp.y_train), return_counts=True)
    per_class = dict(zip(labels.tolist(), counts.tolist()))
    click.echo("training labels: " + " ".join(str(per_class.get(c, 0)) for c in classes))


@data.command("download")
@dataset_option
@data_dir_option
def data_download(dataset: str, data_dir: Path | None) -> None:
    """Fetch an IDX data set (if not present) and verify every file's SHA-256."""
    from mlpkit.data import IDX_DATASETS, load_idx_arrays, resolve_idx_dir

    arrays = load_idx_arrays(dataset, data_dir, download=True, verify=True)
    click.echo(
        f"{IDX_DATASETS[dataset].title} verified: {len(arrays.train_images)} training and"
        f" {len(arrays.test_images)} test images in {resolve_idx_dir(dataset, data_dir)}"
    )
