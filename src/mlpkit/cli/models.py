"""Model commands: predict, evaluate and export a trained model (a model file or a run folder)."""

from __future__ import annotations

from pathlib import Path

import click

from mlpkit.cli.app import main
from mlpkit.core.errors import InputError


# -------------------------------------------------------------------- predict
@main.command()
@click.argument("model_or_run", type=click.Path(path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True, help="Labels per input, best first.")
@click.option("--json", "as_json", is_flag=True, default=False, help="One JSON document (a list) instead of lines.")
def predict(model_or_run: Path, files: tuple[Path, ...], top: int, as_json: bool) -> None:
    """Label FILES (images: PNG, JPEG, BMP, GIF; batches of rows: .npy, .npz with x, .csv, IDX) with
    a model file or a run folder's model."""
    from mlpkit.workflows.predict import format_json, format_text, load_predictor, predict_files

    results = predict_files(load_predictor(model_or_run), files, top=top)
    click.echo(format_json(results) if as_json else format_text(results))


# ------------------------------------------------------------------- evaluate
@main.command()
@click.argument("model_or_run", type=click.Path(path_type=Path))
@click.option(
    "--dataset",
    default=None,
    metavar="NAME|PATH",
    help="A registered data set or your own file (default: the model's own data set, its held-out test part).",
)
@click.option(
    "--split",
    type=click.Choice(["test", "train", "all"]),
    default=None,
    help="test (default), train (all but the test part) or all; another file with --dataset: all its rows.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with an IDX data set's files (mnist, fashion-mnist, kmnist).",
)
@click.option("--label-column", default=None, help="A CSV file's label column (default: the model's, else label).")
@click.option("--json", "as_json", is_flag=True, default=False, help="One JSON document instead of text.")
@click.option(
    "--html",
    "html",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write an HTML page there.",
)
def evaluate(
    model_or_run: Path,
    dataset: str | None,
    split: str | None,
    data_dir: Path | None,
    label_column: str | None,
    as_json: bool,
    html: Path | None,
) -> None:
    """Loss, accuracy, per-class figures and the confusion matrix of a model file or run folder's
    model on a data set's test part (by default the model's own, rows training never saw)."""
    from mlpkit.workflows.evaluate import evaluate_model
    from mlpkit.workflows.evaluation import format_json, format_text, write_html

    if html is not None and html.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--html {html}: the page's name must end in .html")
    result = evaluate_model(model_or_run, dataset=dataset, split=split, data_dir=data_dir, label_column=label_column)
    if html is not None:
        write_html(result, html)
    click.echo(format_json(result) if as_json else format_text(result))
    if html is not None and not as_json:
        click.echo(f"page: {html}")


# --------------------------------------------------------------------- export
@main.command()
@click.argument("model_or_run", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), required=True, help="The .onnx file to write.")
@click.option("--opset", type=click.IntRange(min=17), default=17, show_default=True, help="The ONNX opset to declare.")
def export(model_or_run: Path, out: Path, opset: int) -> None:
    """Write the model of a model file or run folder as ONNX (raw inputs in; probabilities, labels out)."""
    from mlpkit.adapters.onnx_export import export_onnx
    from mlpkit.workflows.predict import load_predictor

    click.echo(export_onnx(load_predictor(model_or_run), out, opset=opset).summary())
