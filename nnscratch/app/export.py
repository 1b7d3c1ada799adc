"""ONNX export: a model as a graph that onnxruntime (server, phone, browser) runs
without nnscratch.

The graph takes "images", float32 (batch, *input_shape) scaled to [0, 1] (uint8 pixels
/ 255, as `predict` scales them), and gives "probs": what `predict` gives (softmax of
the logits for a classifier, sigmoid for binary cross-entropy, the raw outputs for
regression). Every layer in inference form: Dropout is left out, BatchNorm uses its
running statistics. The class names and the input scaling are in the metadata.
Needs the extra: `pip install 'nnscratch[onnx]'`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import NnscratchError
from ..files import atomic_open
from ..nn.activations import (
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    sigmoid,
    softmax,
)
from ..nn.batches import UINT8_SCALE
from ..nn.conv import Conv2D
from ..nn.dense import Dense
from ..nn.dropout import Dropout
from ..nn.losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from ..nn.network import Network
from ..nn.normalization import BatchNorm
from ..nn.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from ..nn.reshape import Flatten, Reshape

OPSET = 17  # run by onnxruntime 1.13+ and onnxruntime-web
IR_VERSION = 8  # the IR version of opset 17: older runtimes refuse newer ones
INPUT, OUTPUT = "images", "probs"


def _onnx():
    """The onnx package, imported here: it takes ~1.3 s, which every `import
    nnscratch` (and so every command) would otherwise pay."""
    try:
        import onnx
    except ImportError:
        raise NnscratchError(
            "ONNX export needs the onnx package: pip install 'nnscratch[onnx]'"
        ) from None
    return onnx


def export_onnx(model, path) -> Path:
    """Write `model` (a built Sequential) to `path` as an ONNX model, checked by
    `onnx.checker`; returns the path. Input "images" (batch, *input_shape) float32
    in [0, 1], output "probs" (batch, *output_shape) float32; the batch size is
    dynamic. NnscratchError names a layer that cannot be exported, or what was given
    instead of a Sequential (a scikit-learn estimator's is its `model_`)."""
    onnx = _onnx()
    _check_is_a_model(model)
    if not model.built and model.input_shape is not None:  # its layers changed
        model.build(model.input_shape)
    if not model.built:
        raise NnscratchError("export: the model is not built (it has no input shape)")
    graph = _Graph(onnx)
    name = INPUT
    for i, layer in enumerate(model.layers):
        name = graph.layer(i, layer, name)
    final, meaning = _final_step(model)
    if final is not None:  # Softmax: over the last axis (opset 13 on)
        name = graph.node(final, [name], "final")
    graph.nodes.append(onnx.helper.make_node("Identity", [name], [OUTPUT]))
    proto = _model_proto(onnx, model, graph, meaning)
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    with atomic_open(path, "wb") as f:
        f.write(proto.SerializeToString())
    return path


def _check_is_a_model(model) -> None:
    """NnscratchError saying what was given instead of a Sequential, and what to
    give: a scikit-learn estimator's network (`model_`), a model file loaded."""
    if isinstance(model, Network):
        return
    what, hint = type(model).__name__, ""
    if isinstance(getattr(model, "model_", None), Network):
        hint = "; export its fitted network: export_onnx(estimator.model_, path)"
    elif isinstance(model, (str, Path)):
        what = f"the path {str(model)!r}"
        hint = "; load it first (load_model), or run `nnscratch export MODEL OUT`"
    raise NnscratchError(f"export: expected a Sequential, got {what}{hint}")


def _final_step(model) -> tuple[str | None, str]:
    """The ONNX op that turns the last layer's outputs into what `predict` gives, and
    a description of the result. A model with no loss is taken to end in logits
    (as `nnscratch predict` takes it), unless its last layer is Softmax or Sigmoid."""
    last, loss = model.layers[-1], model.loss
    if type(last) is Softmax:  # a subclass was refused by _Graph.layer
        return None, "class probabilities (the model's own Softmax)"
    if type(last) is Sigmoid:
        return None, "probabilities (the model's own Sigmoid)"
    final = "Softmax" if loss is None else _loss_step(loss, model.output_shape)
    if final == "Softmax":
        return "Softmax", "class probabilities (softmax of the logits)"
    if final == "Sigmoid":
        return "Sigmoid", "probabilities of each yes/no output (sigmoid of the logits)"
    return None, f"the raw outputs (a {type(loss).__name__} regression)"


def _loss_step(loss, output_shape: tuple) -> str | None:
    """The op computing the loss's `predictions` (which `predict` applies):
    "Softmax", "Sigmoid" or None (the outputs as they are). A user's loss that
    defines its own is recognised by what it gives on sample outputs (Huber's
    identity, a softmax beside other training math); others cannot be exported."""
    built_in = {
        SoftmaxCrossEntropy.predictions: "Softmax",
        BinaryCrossEntropy.predictions: "Sigmoid",
        Loss.predictions: None,
    }
    if type(loss).predictions in built_in:  # inherited: exact
        return built_in[type(loss).predictions]
    outputs = np.random.default_rng(0).normal(0, 10, (8, *output_shape))
    got = np.asarray(loss.predictions(outputs.copy()))
    for op, f in (("Softmax", softmax), ("Sigmoid", sigmoid), (None, lambda o: o)):
        expected = f(outputs)
        if got.shape == expected.shape and np.allclose(got, expected, 1e-5, 1e-7):
            return op
    raise NnscratchError(
        f"export: the loss {type(loss).__name__} has its own predictions, which "
        "cannot be exported to ONNX (only the outputs, their softmax or their "
        "sigmoid can)"
    )


class _Graph:
    """Nodes and initializers (the weights, float32) of the graph being built."""

    def __init__(self, onnx):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers = [], []

    def constant(self, name: str, array) -> str:
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attributes) -> str:
        """Append one node; returns the name of its output."""
        self.nodes.append(
            self.helper.make_node(op, inputs, [name], name=name, **attributes)
        )
        return name

    def layer(self, i: int, layer, x: str) -> str:
        """The nodes of layer i, applied to tensor x; returns its output's name.

        Only the built-in classes themselves: a subclass may compute something else
        (its own forward, or transform), so it is refused, not exported as its base
        (exact types, as the network's fusion checks them)."""
        p, out = layer.params, f"{i}.{type(layer).__name__}"
        if getattr(layer, "own_activation", None) is not None:  # set after the build
            raise NnscratchError(
                f"export: layer {i} ({type(layer).__name__}) holds an activation; "
                "give it as a layer of its own (a Sequential built again does that)"
            )
        if type(layer) is Dense:  # y = x @ W + b, W (n_in, n_out)
            W, b = self.constant(f"{i}.W", p["W"]), self.constant(f"{i}.b", p["b"])
            return self.node("Gemm", [x, W, b], out)
        if type(layer) is Conv2D:
            W, b = self.constant(f"{i}.W", p["W"]), self.constant(f"{i}.b", p["b"])
            (ph, pw), stride = layer.padding, list(layer.stride)
            kernel = list(layer.kernel_size)
            pads = [ph, pw, ph, pw]  # begin and end of each axis
            return self.node(
                "Conv", [x, W, b], out, kernel_shape=kernel, strides=stride, pads=pads
            )
        if type(layer) in (MaxPool2D, AvgPool2D):  # floor mode, no padding
            op = "MaxPool" if type(layer) is MaxPool2D else "AveragePool"
            kernel, stride = list(layer.pool_size), list(layer.stride)
            return self.node(op, [x], out, kernel_shape=kernel, strides=stride)
        if type(layer) is GlobalAvgPool2D:  # (N, C, 1, 1), then (N, C)
            pooled = self.node("GlobalAveragePool", [x], f"{out}.pooled")
            return self.node("Flatten", [pooled], out, axis=1)
        if type(layer) is BatchNorm:  # inference form: the running statistics
            s = layer.state
            inputs = [
                x,
                self.constant(f"{i}.gamma", p["gamma"]),
                self.constant(f"{i}.beta", p["beta"]),
                self.constant(f"{i}.running_mean", s["running_mean"]),
                self.constant(f"{i}.running_var", s["running_var"]),
            ]
            return self.node("BatchNormalization", inputs, out, epsilon=layer.eps)
        if type(layer) is Flatten:
            return self.node("Flatten", [x], out, axis=1)
        if type(layer) is Reshape:  # 0: keep the batch size
            shape = self.constant(f"{i}.shape", np.array([0, *layer.shape], np.int64))
            return self.node("Reshape", [x, shape], out)
        if type(layer) is Dropout:  # nothing at inference
            return x
        if type(layer) is LeakyReLU:
            return self.node("LeakyRelu", [x], out, alpha=layer.alpha)
        simple = {ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh", Softmax: "Softmax"}
        if type(layer) in simple:
            return self.node(simple[type(layer)], [x], out)
        raise NnscratchError(
            f"export: layer {i} ({type(layer).__name__}) cannot be exported to ONNX "
            "(only the built-in layers can, not subclasses of them)"
        )


def _model_proto(onnx, model, graph: _Graph, meaning: str):
    """The ModelProto: the graph with its typed input and output, doc and metadata."""
    helper, FLOAT = onnx.helper, onnx.TensorProto.FLOAT
    input_dims = ["batch", *model.input_shape]
    output_dims = ["batch", *model.output_shape]
    doc = (
        f"Input '{INPUT}': float32 (batch, {', '.join(map(str, model.input_shape))}), "
        "images scaled to [0, 1] (uint8 pixels / 255). "
        f"Output '{OUTPUT}': float32 (batch, "
        f"{', '.join(map(str, model.output_shape))}), {meaning}; the metadata "
        "'class_names' names the outputs in order."
    )
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "nnscratch",
            [helper.make_tensor_value_info(INPUT, FLOAT, input_dims)],
            [helper.make_tensor_value_info(OUTPUT, FLOAT, output_dims)],
            initializer=graph.initializers,
            doc_string=doc,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="nnscratch",
        ir_version=IR_VERSION,
        doc_string=doc,
    )
    metadata = {
        "class_names": json.dumps(model.class_names),
        "input_scale": f"{UINT8_SCALE!r} (uint8 pixels -> [0, 1])",
        "output": meaning,
    }
    helper.set_model_props(proto, metadata)
    return proto
