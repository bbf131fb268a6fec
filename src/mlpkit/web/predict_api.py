"""``POST /api/predict`` and ``GET /api/models``: one drawing or one row of pixels in, the
model's answer out.

Request: a JSON object with exactly one of ``"pixels"`` (784 numbers 0..255: the model's raw
input, MNIST's convention) or ``"image"`` (a ``data:image/png;base64,...`` URL: a picture of any
size up to 2048x2048, preprocessed as ``mlpkit predict`` preprocesses an image file), and
optionally ``"model"`` (a loaded model's name). Answer: ``{"model", "label", "probabilities",
"classes", "input28", "activations"}``; ``input28`` is the input as the model sees it (rows of
0..255 before normalization). Errors: unparsable JSON or an undecodable image 400, a body that
does not follow the schema 422, an unknown model 404 (each ``{"error": "..."}``). The time spent
in the handler is sent in a ``Server-Timing`` header (``predict;dur=<ms>, total;dur=<ms>, cpu;dur=<ms>``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse

from mlpkit.core.errors import MlpkitError
from mlpkit.web.models import ModelSet, UnknownModelError, predict_one

__all__ = [
    "MAX_IMAGE_SIDE",
    "BadImageError",
    "SchemaError",
    "answer",
    "make_models_endpoint",
    "make_predict_endpoint",
    "parse_request",
]

MAX_IMAGE_SIDE = 2048
#: Predictions computed at once (worker threads); more requests wait their turn. NumPy and
#: Pillow release the GIL only in parts, so more threads would mostly take turns holding it.
PREDICT_THREADS = 4
_IMAGE_PREFIXES = ("data:image/png;base64,", "data:image/jpeg;base64,")


class SchemaError(ValueError):
    """The body is JSON but not a prediction request (422)."""


class BadImageError(ValueError):
    """The image could not be decoded (400)."""


def parse_request(doc: Any) -> tuple[str | None, str, Any]:
    """``(model name or None, "pixels" or "image", value)`` of a request's JSON.

    Raises
    ------
    SchemaError
        Naming what is wrong: not an object, unknown keys, neither or both inputs, a model
        name that is not a string, pixels that are not 784 numbers in 0..255, an image that is
        not a PNG or JPEG data URL.
    """
    if not isinstance(doc, dict):
        raise SchemaError("the body must be a JSON object")
    if extra := sorted(set(doc) - {"pixels", "image", "model"}):
        raise SchemaError(f"unknown key(s): {', '.join(map(str, extra))[:200]}; expected pixels or image, and model")
    model = doc.get("model")
    if model is not None and not isinstance(model, str):
        raise SchemaError("model must be a string (a loaded model's name)")
    if ("pixels" in doc) == ("image" in doc):
        raise SchemaError("give exactly one of pixels (784 numbers 0..255) or image (a PNG data URL)")
    if "pixels" in doc:
        pixels = doc["pixels"]
        if not isinstance(pixels, list) or len(pixels) != 784:
            raise SchemaError("pixels must be a list of 784 numbers (28x28, row by row)")
        if not all(type(p) in (int, float) and math.isfinite(p) and 0 <= p <= 255 for p in pixels):
            raise SchemaError("pixels must be numbers from 0 to 255")
        return model, "pixels", pixels
    image = doc["image"]
    if not isinstance(image, str) or not image.startswith(_IMAGE_PREFIXES):
        raise SchemaError("image must be a data URL: data:image/png;base64,...")
    return model, "image", image


def decode_data_url(url: str) -> np.ndarray:
    """The grayscale pixels of a ``data:image/...;base64,`` URL, checked by Pillow's limits and
    at most `MAX_IMAGE_SIDE` either way.

    Raises
    ------
    BadImageError
        If the base64 or the image inside is malformed, or the image is too large.
    """
    from mlpkit.data.images import decode_image

    try:
        data = base64.b64decode(url.partition(",")[2], validate=True)
    except (binascii.Error, ValueError):
        raise BadImageError("image: malformed base64") from None
    try:
        return decode_image(data, name="image", max_side=MAX_IMAGE_SIDE)
    except MlpkitError as exc:
        raise BadImageError(str(exc)) from None


def answer(models: ModelSet, doc: Any) -> dict[str, Any]:
    """The answer to a parsed request body (see the module docstring).

    Raises
    ------
    SchemaError, BadImageError, UnknownModelError, MlpkitError
        As the module docstring maps them to statuses.
    """
    model_name, kind, value = parse_request(doc)
    name, model = models.get(model_name)
    if kind == "pixels":
        if model.model.n_features != 784:
            raise SchemaError(f"model {name} takes {model.model.n_features} values, not 784 pixels")
        raw = np.asarray(value, dtype=np.float64).reshape(model.input_shape)
    else:
        from mlpkit.workflows.predict import image_input

        raw = image_input(model, decode_data_url(value), name="image")
    result = predict_one(model, raw)
    result["model"] = name
    seen = np.clip(raw, 0, 255).reshape(model.input_shape)
    result["input28"] = np.rint(seen).astype(np.int64).tolist() if seen.ndim == 2 else None
    return result


def make_predict_endpoint(models: ModelSet) -> Any:
    """``POST /api/predict`` answering with ``models``."""

    limiter = anyio.CapacityLimiter(PREDICT_THREADS)

    def timed(doc: Any) -> tuple[dict[str, Any], float, float]:
        start, cpu = time.perf_counter(), time.thread_time()
        result = answer(models, doc)
        return result, start, time.thread_time() - cpu

    async def predict(request: Request) -> JSONResponse:
        start = time.perf_counter()
        try:
            doc = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _error(400, "the body is not valid JSON", start)
        try:
            result, began, cpu = await anyio.to_thread.run_sync(timed, doc, limiter=limiter)
        except SchemaError as exc:
            return _error(422, str(exc), start)
        except UnknownModelError as exc:
            return _error(404, str(exc), start)
        except (BadImageError, MlpkitError) as exc:
            return _error(400, str(exc), start)
        return JSONResponse(result, headers=_timing(start, began, cpu))

    return predict


def make_models_endpoint(models: ModelSet) -> Any:
    """``GET /api/models``: `ModelSet.describe`."""

    async def list_models(request: Request) -> JSONResponse:
        return JSONResponse({"models": models.describe()})

    return list_models


def _timing(start: float, began: float | None = None, cpu: float | None = None) -> dict[str, str]:
    """``predict``: the work on the request (wall time from when a worker thread took it);
    ``cpu``: that thread's CPU time (what the work costs, whatever else the machine runs);
    ``total``: the handler, waiting for a thread included."""
    now = time.perf_counter()
    work = (now - (start if began is None else began)) * 1000
    timing = f"predict;dur={work:.3f}, total;dur={(now - start) * 1000:.3f}"
    if cpu is not None:
        timing += f", cpu;dur={cpu * 1000:.3f}"
    return {"server-timing": timing}


def _error(status: int, message: str, start: float) -> JSONResponse:
    return JSONResponse({"error": message[:500]}, status_code=status, headers=_timing(start))
