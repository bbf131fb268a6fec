"""A trained model as an ONNX graph, for runtimes that have never heard of mlpkit.

The graph takes what a user has: raw inputs (float32 ``(N, n_features)``, pixels 0..255 for
MNIST), not mlpkit's normalized, bias-column-extended arrays. Normalization and the bias column
are folded into the first layer's weights and bias (computed in float64, then rounded once),
so the graph is one ``Gemm`` per layer, the activation, ``Softmax`` and an ``ArgMax`` whose
index picks the class label out of a constant: a serving process needs no mlpkit and no
preprocessing beyond flattening. Built with the ``onnx`` package's own helpers, checked with
``onnx.checker.check_model(full_check=True)`` before anything is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlpkit.core.errors import ConfigError, InputError
from mlpkit.core.fileio import atomic_write_bytes
from mlpkit.core.version import __version__
from mlpkit.nn.activations import ELU_ALPHA, IMPROVED_SIGMOID_A, IMPROVED_SIGMOID_B, LEAKY_RELU_SLOPE
from mlpkit.runs.loaded_model import LoadedModel

__all__ = [
    "DEFAULT_OPSET",
    "INPUT",
    "LABEL",
    "MIN_OPSET",
    "PROBABILITIES",
    "OnnxExport",
    "TensorInfo",
    "export_onnx",
    "to_onnx",
]

MIN_OPSET = 17  # Softmax over one axis (13+), Gemm with an optional C (11+); 17 is the floor
DEFAULT_OPSET = 17  # the oldest that qualifies: the most runtimes read it
INPUT, PROBABILITIES, LABEL = "input", "probabilities", "label"
_BATCH = "N"  # the symbolic batch dimension
_MAX_PROTO_BYTES = 2**31 - 1  # protobuf's limit on one message; bigger needs ONNX external data
_ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
_INT64 = np.iinfo(np.int64)
_SINGLE_OP = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}  # activations that are one ONNX op


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output: its name, element type (``"float"``, ``"int64"``,
    ``"string"``) and shape (``"N"`` for the batch dimension)."""

    name: str
    elem_type: str
    shape: tuple[int | str, ...]

    def __str__(self) -> str:
        return f"{self.name} {self.elem_type}[{', '.join(map(str, self.shape))}]"


@dataclass(frozen=True)
class OnnxExport:
    """What `export_onnx` wrote.

    Parameters
    ----------
    path : Path
        The ``.onnx`` file.
    n_bytes : int
        Its size.
    opset : int
        The default-domain opset the graph declares.
    inputs, outputs : tuple of TensorInfo
        The graph's inputs and outputs, in order.
    """

    path: Path
    n_bytes: int
    opset: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def summary(self) -> str:
        """What was written, for people: the file, its size and opset, then one line per
        input and output (``  input   input float[N, 784]``)."""
        lines = [f"wrote {self.path} ({self.n_bytes:,} bytes, ONNX opset {self.opset})"]
        lines += [f"  input   {info}" for info in self.inputs] + [f"  output  {info}" for info in self.outputs]
        return "\n".join(lines)


def to_onnx(model: LoadedModel, *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """The ONNX graph of ``model``, checked, in memory.

    Parameters
    ----------
    model : LoadedModel
        A trained model (`mlpkit.load_model`, or `mlpkit.workflows.predict.load_predictor`
        for a model file or run folder).
    opset : int, default 17
        The default-domain opset to declare: 17 up to what the installed ``onnx`` knows.

    Returns
    -------
    onnx.ModelProto
        Input ``input`` float32 ``(N, n_features)`` of raw values; outputs ``probabilities``
        float32 ``(N, n_classes)`` and ``label`` ``(N,)``: int64 when every class is an
        integer, else string (each class as ``str()`` writes it, as NumPy does).
        ``metadata_props`` hold the mlpkit version, classes, input shape, data set, architecture.

    Raises
    ------
    InputError
        If ``model`` is not a LoadedModel, its activation has no ONNX form, an integer class
        does not fit int64, or the graph would exceed protobuf's 2 GiB.
    ConfigError
        If ``opset`` is outside 17 .. the installed onnx's newest.
    """
    if not isinstance(model, LoadedModel):
        raise InputError(f"export needs a trained mlpkit model (LoadedModel), got {type(model).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ConfigError(f"opset must be an integer from {MIN_OPSET} to {newest} (this onnx's newest), got {opset!r}")
    mlp = model.model
    elem = _ELEM[mlp.dtype]
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    x = INPUT
    if elem == TensorProto.DOUBLE:  # a float64 model computes in float64, as mlpkit does
        nodes.append(helper.make_node("Cast", [INPUT], ["input_float64"], name="cast_input", to=TensorProto.DOUBLE))
        x = "input_float64"
    for i, (weight, bias) in enumerate(_layers(model)):
        last = i == mlp.num_layers - 1
        z = "logits" if last else f"layer{i}_z"
        operands = [x, const(f"layer{i}.weight", weight)]
        if bias is not None:
            operands.append(const(f"layer{i}.bias", bias))
        nodes.append(helper.make_node("Gemm", operands, [z], name=f"layer{i}_gemm"))
        x = z if last else _activation(mlp.activation.name, z, f"layer{i}", mlp.dtype, nodes, const)
    proba = PROBABILITIES if elem == TensorProto.FLOAT else "probabilities_float64"
    nodes.append(helper.make_node("Softmax", ["logits"], [proba], name="softmax", axis=1))
    if proba != PROBABILITIES:
        nodes.append(
            helper.make_node("Cast", [proba], [PROBABILITIES], name="cast_probabilities", to=TensorProto.FLOAT)
        )
    # the label from the logits, as LoadedModel.predict takes it (first index on ties, like NumPy)
    nodes.append(helper.make_node("ArgMax", ["logits"], ["class_index"], name="argmax", axis=1, keepdims=0))
    classes, label_type = _class_tensor(model.classes)
    nodes.append(helper.make_node("Gather", [const("classes", classes), "class_index"], [LABEL], name="label", axis=0))

    graph = helper.make_graph(
        nodes,
        "mlpkit_mlp",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [_BATCH, mlp.n_features])],
        [
            helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [_BATCH, mlp.n_classes]),
            helper.make_tensor_value_info(LABEL, label_type, [_BATCH]),
        ],
        initializer=inits,
        doc_string="raw inputs (N, n_features) -> class probabilities (N, n_classes) and labels (N,)",
    )
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=helper.find_min_ir_version_for(opsets),  # the oldest IR that fits: older runtimes read it
        producer_name="mlpkit",
        producer_version=__version__,
        doc_string=f"mlpkit MLP trained on {model.dataset}; normalization and bias folded into the first layer",
    )
    helper.set_model_props(proto, _metadata(model))
    if proto.ByteSize() > _MAX_PROTO_BYTES:
        raise InputError(f"the model's ONNX graph is {proto.ByteSize()} bytes, over protobuf's 2 GiB limit")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: LoadedModel, path: str | Path, *, opset: int = DEFAULT_OPSET) -> OnnxExport:
    """Write ``model`` as an ONNX file, atomically (a failed write leaves any old file whole).

    Parameters
    ----------
    model : LoadedModel
        A trained model (see `to_onnx`).
    path : str or Path
        The file to write (``.onnx`` by convention); missing parent folders are created.
    opset : int, default 17
        The default-domain opset (see `to_onnx`).

    Returns
    -------
    OnnxExport
        The path, size, opset, inputs and outputs written.

    Raises
    ------
    InputError, ConfigError
        As `to_onnx`.
    RunIOError
        Naming ``path``, if it cannot be written (a folder there, no permission, a full disk).
    """
    proto = to_onnx(model, opset=opset)
    data = proto.SerializeToString()
    written = atomic_write_bytes(path, data)
    return OnnxExport(written, len(data), opset, _infos(proto.graph.input), _infos(proto.graph.output))


# ------------------------------------------------------------------------------ building


def _layers(model: LoadedModel) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight (fan_in, fan_out), bias or None) per layer, in the model's dtype, with the first
    layer taking raw inputs: x_norm = (x - mean) / std and the bias row of the input column give

        [x_norm, 1] @ W = x @ (W[:F] / std[:, None]) + (W[F] - mean @ (W[:F] / std[:, None])).
    """
    mlp, norm = model.model, model.normalization
    n_features, dtype = mlp.n_features, mlp.dtype
    first = mlp.weights[0].astype(np.float64)
    if mlp.bias == "input_column":
        weight, bias = first[:n_features], first[n_features].copy()
    else:
        assert mlp.biases is not None  # per_layer models have a bias per layer
        weight, bias = first, mlp.biases[0].astype(np.float64)
    if norm.mean is not None and norm.std is not None:  # kind "none" has neither
        std = np.broadcast_to(np.asarray(norm.std, dtype=np.float64), (n_features,))
        mean = np.broadcast_to(np.asarray(norm.mean, dtype=np.float64), (n_features,))
        weight = weight / std[:, None]
        bias = bias - mean @ weight
    layers: list[tuple[np.ndarray, np.ndarray | None]] = [(weight.astype(dtype), bias.astype(dtype))]
    for i in range(1, mlp.num_layers):
        layers.append((mlp.weights[i].copy(), None if mlp.biases is None else mlp.biases[i].copy()))
    return layers


def _activation(name: str, z: str, prefix: str, dtype: np.dtype, nodes: list[onnx.NodeProto], const: Any) -> str:
    """Append the nodes of hidden activation ``name`` applied to ``z``; the output's name."""
    out = f"{prefix}_a"
    if name in _SINGLE_OP:
        nodes.append(helper.make_node(_SINGLE_OP[name], [z], [out], name=f"{prefix}_{name}"))
    elif name == "improved_sigmoid":  # A tanh(B z), A and B from mlpkit.nn.activations
        scale_in = const(f"{prefix}.improved_sigmoid_b", np.asarray(IMPROVED_SIGMOID_B, dtype=dtype))
        scale_out = const(f"{prefix}.improved_sigmoid_a", np.asarray(IMPROVED_SIGMOID_A, dtype=dtype))
        nodes.append(helper.make_node("Mul", [z, scale_in], [f"{prefix}_bz"], name=f"{prefix}_scale_in"))
        nodes.append(helper.make_node("Tanh", [f"{prefix}_bz"], [f"{prefix}_tanh"], name=f"{prefix}_tanh"))
        nodes.append(helper.make_node("Mul", [f"{prefix}_tanh", scale_out], [out], name=f"{prefix}_scale_out"))
    elif name == "leaky_relu":
        nodes.append(helper.make_node("LeakyRelu", [z], [out], name=f"{prefix}_{name}", alpha=LEAKY_RELU_SLOPE))
    elif name == "elu":  # relu(z) + alpha (exp(min(z, 0)) - 1): onnxruntime has no float64 Elu
        zero = const(f"{prefix}.elu_zero", np.asarray(0.0, dtype=dtype))
        one = const(f"{prefix}.elu_one", np.asarray(1.0, dtype=dtype))
        alpha = const(f"{prefix}.elu_alpha", np.asarray(ELU_ALPHA, dtype=dtype))
        nodes += [
            helper.make_node("Min", [z, zero], [f"{prefix}_neg"], name=f"{prefix}_elu_min"),
            helper.make_node("Exp", [f"{prefix}_neg"], [f"{prefix}_exp"], name=f"{prefix}_elu_exp"),
            helper.make_node("Sub", [f"{prefix}_exp", one], [f"{prefix}_em1"], name=f"{prefix}_elu_sub"),
            helper.make_node("Mul", [f"{prefix}_em1", alpha], [f"{prefix}_aem1"], name=f"{prefix}_elu_alpha"),
            helper.make_node("Relu", [z], [f"{prefix}_pos"], name=f"{prefix}_elu_relu"),
            helper.make_node("Add", [f"{prefix}_pos", f"{prefix}_aem1"], [out], name=f"{prefix}_elu_add"),
        ]
    elif name == "silu":  # z sigmoid(z)
        nodes.append(helper.make_node("Sigmoid", [z], [f"{prefix}_sig"], name=f"{prefix}_sigmoid"))
        nodes.append(helper.make_node("Mul", [z, f"{prefix}_sig"], [out], name=f"{prefix}_silu"))
    elif name == "gelu":  # exact: z (1 + erf(z / sqrt 2)) / 2 (opset 17 has Erf, not Gelu)
        inv_sqrt2 = const(f"{prefix}.gelu_inv_sqrt2", np.asarray(1 / np.sqrt(2.0), dtype=dtype))
        one = const(f"{prefix}.gelu_one", np.asarray(1.0, dtype=dtype))
        half = const(f"{prefix}.gelu_half", np.asarray(0.5, dtype=dtype))
        nodes += [
            helper.make_node("Mul", [z, inv_sqrt2], [f"{prefix}_zs"], name=f"{prefix}_gelu_scale"),
            *_erf(f"{prefix}_zs", f"{prefix}_erf", prefix, dtype),
            helper.make_node("Add", [f"{prefix}_erf", one], [f"{prefix}_erf1"], name=f"{prefix}_gelu_add"),
            helper.make_node("Mul", [z, f"{prefix}_erf1"], [f"{prefix}_zerf"], name=f"{prefix}_gelu_mul"),
            helper.make_node("Mul", [f"{prefix}_zerf", half], [out], name=f"{prefix}_gelu_half"),
        ]
    else:
        valid = ", ".join([*_SINGLE_OP, "improved_sigmoid", "leaky_relu", "elu", "silu", "gelu"])
        raise InputError(f"activation {name!r} has no ONNX form in mlpkit's exporter (it exports {valid})")
    return out


def _erf(x: str, out: str, prefix: str, dtype: np.dtype) -> list[onnx.NodeProto]:
    """Erf of ``x``; onnxruntime has no float64 Erf, so a float64 model takes it in float32 (the
    only float32 step of such a graph: its probabilities agree to ~1e-7, not to float64)."""
    if dtype == np.float32:
        return [helper.make_node("Erf", [x], [out], name=f"{prefix}_gelu_erf")]
    return [
        helper.make_node("Cast", [x], [f"{x}_f32"], name=f"{prefix}_gelu_to_f32", to=onnx.TensorProto.FLOAT),
        helper.make_node("Erf", [f"{x}_f32"], [f"{out}_f32"], name=f"{prefix}_gelu_erf"),
        helper.make_node("Cast", [f"{out}_f32"], [out], name=f"{prefix}_gelu_to_f64", to=onnx.TensorProto.DOUBLE),
    ]


def _class_tensor(classes: list[Any]) -> tuple[np.ndarray, int]:
    """The labels as a constant: int64 if all are integers, else strings (``str`` of each, as
    ``np.asarray(classes)`` gives for a mix); and its ONNX element type."""
    if all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes):
        bad = [c for c in classes if not _INT64.min <= int(c) <= _INT64.max]
        if bad:
            raise InputError(f"class labels {bad[:3]} do not fit int64, the ONNX label type")
        return np.asarray([int(c) for c in classes], dtype=np.int64), TensorProto.INT64
    return np.asarray([str(c) for c in classes], dtype=object), TensorProto.STRING


def _metadata(model: LoadedModel) -> dict[str, str]:
    """``metadata_props``: what a serving process needs to know, JSON where not a plain string."""
    mlp, prov = model.model, model.provenance
    architecture = {"hidden": mlp.hidden, "activation": mlp.activation.name, "bias": mlp.bias,
                    "dtype": mlp.dtype.name, "n_features": mlp.n_features, "n_classes": mlp.n_classes}  # fmt: skip
    classes = [c.item() if isinstance(c, np.generic) else c for c in model.classes]
    return {
        "mlpkit_version": __version__,
        "trained_with_mlpkit": prov.mlpkit_version,
        "config_digest": prov.config_digest or "",
        "created": prov.created,
        "dataset": model.dataset,
        "classes": json.dumps(classes, ensure_ascii=False),
        "input_shape": json.dumps(list(model.input_shape)),
        "input": "raw values, flattened to (N, n_features); normalization is folded into the graph",
        "normalization": model.normalization.kind,
        "architecture": json.dumps(architecture),
    }


def _infos(values: Any) -> tuple[TensorInfo, ...]:
    """TensorInfo of each ValueInfoProto."""
    infos = []
    for value in values:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_param or d.dim_value for d in tensor.shape.dim)
        infos.append(TensorInfo(value.name, TensorProto.DataType.Name(tensor.elem_type).lower(), dims))
    return tuple(infos)
