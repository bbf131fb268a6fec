"""Model commands: predict, evaluate and export a trained model (a model file or a run folder)."""

from __future__ import annotations

from pathlib import Path

import click

from mlpkit.cli.app import main


# -------------------------------------------------------------------- predict
@main.command()
@click.argument("model_or_run", type=click.Path(path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True, help="Labels per input, best first.")
@click.option("--json", "as_json", is_flag=True, default=False, help="One JSON document (a list) instead of lines.")
def predict(model_or_run: Path, files: tuple[Path, ...], top: int, as_json: bool) -> None:
    """Label FILES (images: PNG, JPEG, BMP, GIF; batches of rows: .npy, .npz with x, .csv) with a
    model file or a run folder's model."""
    from mlpkit.workflows.predict import format_json, format_text, load_predictor, predict_files

    results = predict_files(load_predictor(model_or_run), files, top=top)
    click.echo(format_json(results) if as_json else format_text(results))


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
