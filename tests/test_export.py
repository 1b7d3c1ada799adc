"""ONNX export: onnxruntime gives what `predict` gives, for every preset and layer."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from custom_parts import Huber, SmoothedCrossEntropy
from sklearn.datasets import load_digits

import nnscratch as nn
from nnscratch import cli
from nnscratch.data.catalog import CLASS_NAMES
from nnscratch.runs.presets import PRESETS, build_model, preset_settings
from nnscratch.sklearn import NeuralNetClassifier


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probs"], {"images": x.astype(np.float32)})[0]


def randomise_statistics(model, rng) -> None:
    """Batch-norm running statistics away from their initial 0 and 1."""
    for layer in model.layers:
        if isinstance(layer, nn.BatchNorm):
            layer.state["running_mean"][...] = rng.normal(0, 0.2, layer.num_features)
            layer.state["running_var"][...] = rng.uniform(0.5, 2, layer.num_features)


@pytest.fixture(scope="module")
def test_images(data_dir):
    _, (x_test, _) = nn.load_dataset("mnist", data_dir)
    return x_test[:1000]


@pytest.mark.parametrize("preset", list(PRESETS))
def test_onnxruntime_gives_predicts_probabilities_for_every_preset(
    preset, test_images, tmp_path
):
    model = build_model(preset_settings(preset), (28, 28), CLASS_NAMES["mnist"])
    randomise_statistics(model, np.random.default_rng(0))
    # sharper last layer: confident answers like a trained net's, not near-uniform
    model.layers[-1].params["W"] *= 4
    model.compile(loss="cross_entropy")
    probs = model.predict(test_images)  # uint8, scaled by 1/255 inside
    assert probs.max(axis=1).mean() > 0.3  # 0.1 would be uniform
    path = nn.export_onnx(model, tmp_path / f"{preset}.onnx")
    got = run_onnx(path, test_images / np.float32(255))
    assert np.abs(got - probs).max() < 1e-5
    np.testing.assert_array_equal(got.argmax(axis=1), probs.argmax(axis=1))
    # one image (what `nnscratch predict` gives the model): the same answer
    one = model.predict(test_images[:1])
    assert np.abs(run_onnx(path, test_images[:1] / np.float32(255)) - one).max() < 1e-5


@pytest.fixture(scope="module")
def digits_estimator():
    """A scikit-learn classifier fitted on 100 of load_digits' images."""
    x, y = load_digits(return_X_y=True)
    net = NeuralNetClassifier((8,), epochs=1, random_state=0)
    return net.fit(x[:100] / 16, y[:100])


GEOMETRIES = {  # the windows' arithmetic ONNX must repeat, on 28x28 digits
    "conv stride 2 padding 1": lambda: [nn.Conv2D(4, 3, stride=2, padding=1)],
    "conv same": lambda: [nn.Conv2D(4, 5, padding="same")],
    "conv even kernel stride 3 padding 2": lambda: [
        nn.Conv2D(3, 4, stride=3, padding=2)
    ],
    "conv (5, 2) kernel (2, 3) stride": lambda: [
        nn.Conv2D(3, (5, 2), stride=(2, 3), padding=(0, 1))
    ],
    "max pool 3: 28 -> 9, the last row dropped": lambda: [nn.MaxPool2D(3)],
    "avg pool 3 stride 2: 28 -> 13": lambda: [nn.AvgPool2D(3, stride=2)],
    "strides that skip rows": lambda: [nn.MaxPool2D(2, 3), nn.AvgPool2D(2, 5)],
    "pools (3, 2) by (2, 3)": lambda: [nn.MaxPool2D((3, 2), (2, 3)), nn.AvgPool2D(2)],
}


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_conv_and_pooling_geometries_on_mnist_digits(name, test_images, tmp_path):
    layers = [nn.Reshape((1, 28, 28)), *GEOMETRIES[name](), nn.ReLU(), nn.Flatten()]
    model = nn.Sequential([*layers, nn.Dense(10)], input_shape=(28, 28), seed=0)
    model.compile(loss="cross_entropy")
    path = nn.export_onnx(model, tmp_path / "model.onnx")
    images = test_images[:300]
    got = run_onnx(path, images / np.float32(255))
    assert np.abs(got - model.predict(images)).max() < 1e-5


def every_layer_model() -> nn.Sequential:
    return nn.Sequential(
        [
            nn.Reshape((2, 6, 5)),
            nn.Conv2D(4, (3, 2), stride=(2, 1), padding=(1, 0)), nn.BatchNorm(),
            nn.LeakyReLU(0.1), nn.MaxPool2D(2, stride=1), nn.Tanh(),
            nn.AvgPool2D((2, 1)), nn.Sigmoid(),
            nn.Conv2D(6, 1), nn.ReLU(), nn.GlobalAvgPool2D(), nn.Dropout(0.5),
            nn.Dense(8), nn.BatchNorm(), nn.ReLU(), nn.Flatten(), nn.Dense(3),
        ],
        input_shape=(60,),
        class_names=["a", "b", "c"],
        seed=0,
    )  # fmt: skip


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse", None])
def test_every_layer_and_the_final_step_of_every_loss(loss, tmp_path):
    model = every_layer_model()
    if loss is not None:
        model.compile(loss=loss)
    randomise_statistics(model, np.random.default_rng(1))
    x = np.random.default_rng(2).uniform(0, 1, (7, 60)).astype(np.float32)
    path = nn.export_onnx(model, tmp_path / "model.onnx")
    expected = model.predict(x)  # no loss: raw outputs from predict, softmax in ONNX
    if loss is None:
        expected = nn.SoftmaxCrossEntropy().predictions(expected)
    got = run_onnx(path, x)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(run_onnx(path, x[:1]), expected[:1], atol=1e-6)
    meaning = {"binary_cross_entropy": "sigmoid", "mse": "raw outputs"}
    assert meaning.get(loss, "softmax") in onnx.load(path).graph.doc_string


def test_a_model_ending_in_softmax_is_exported_as_it_is(tmp_path):
    model = nn.Sequential([nn.Dense(3), nn.Softmax()], input_shape=(4,), seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (5, 4))
    path = nn.export_onnx(model, tmp_path / "model.onnx")
    np.testing.assert_allclose(run_onnx(path, x), model.predict(x), atol=1e-6)
    assert [n.op_type for n in onnx.load(path).graph.node] == [
        "Gemm", "Softmax", "Identity"
    ]  # fmt: skip


def test_the_graph_describes_its_input_output_and_classes(tmp_path):
    model = every_layer_model()
    proto = onnx.load(nn.export_onnx(model, tmp_path / "model.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    metadata = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(metadata["class_names"]) == ["a", "b", "c"]
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 60]
    assert "scaled to [0, 1]" in proto.graph.doc_string
    assert "probabilities" in proto.graph.doc_string
    # the opset and IR version that the README tells runtimes to support
    ((opset,),) = {(o.version,) for o in proto.opset_import}
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"opset {opset} (IR version {proto.ir_version}:" in readme


def test_a_layer_that_cannot_be_exported_is_one_clear_error(tmp_path):
    class Double(nn.Layer):
        def forward(self, x, training=False):
            return 2 * x

        def backward(self, dy):
            return 2 * dy

    model = nn.Sequential([nn.Dense(3), Double()], input_shape=(4,))
    with pytest.raises(nn.NnscratchError, match=r"layer 1 \(Double\) cannot be export"):
        nn.export_onnx(model, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
    with pytest.raises(nn.NnscratchError, match="not built"):
        nn.export_onnx(nn.Sequential([nn.Dense(3)]), tmp_path / "model.onnx")
    # an activation given to a layer after the model was built would be left out
    built = nn.Sequential([nn.Dense(3)], input_shape=(4,))
    built.layers[0].activation = nn.Tanh()
    with pytest.raises(nn.NnscratchError, match=r"layer 0 \(Dense\) holds an activ"):
        nn.export_onnx(built, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_what_is_not_a_model_is_one_clear_error(digits_estimator, tmp_path):
    # was AttributeError: 'NeuralNetClassifier' object has no attribute 'built'
    with pytest.raises(nn.NnscratchError, match=r"NeuralNetClassifier.*\.model_"):
        nn.export_onnx(digits_estimator, tmp_path / "model.onnx")
    nn.export_onnx(digits_estimator.model_, tmp_path / "model.onnx")  # what it says
    with pytest.raises(nn.NnscratchError, match=r"got the path .*load_model"):
        nn.export_onnx(str(tmp_path / "model.npz"), tmp_path / "other.onnx")
    with pytest.raises(nn.NnscratchError, match="expected a Sequential, got NoneType"):
        nn.export_onnx(None, tmp_path / "other.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_nnscratch_export_command(tmp_path, capsys):
    model = nn.Sequential([nn.Flatten(), nn.Dense(10)], input_shape=(28, 28), seed=0)
    model.save(tmp_path / "model.npz")
    out = tmp_path / "model.onnx"
    assert cli.main(["export", str(tmp_path / "model.npz"), str(out)]) == 0
    assert "(batch, 28, 28)" in capsys.readouterr().out
    x = np.random.default_rng(0).uniform(0, 1, (3, 28, 28))
    expected = nn.SoftmaxCrossEntropy().predictions(model.predict(x))
    np.testing.assert_allclose(run_onnx(out, x), expected, atol=1e-6)
    assert cli.main(["export", str(tmp_path / "missing.npz"), str(out)]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_nnscratch_export_refuses_to_write_over_the_model_it_reads(tmp_path, capsys):
    model = nn.Sequential([nn.Dense(3)], input_shape=(4,), seed=0)
    model.save(tmp_path / "model.npz")
    before = (tmp_path / "model.npz").read_bytes()
    # the same file under another name: OUT written over MODEL loses the model
    same = tmp_path / "sub" / ".." / "model.npz"
    (tmp_path / "sub").mkdir()
    assert cli.main(["export", str(tmp_path / "model.npz"), str(same)]) == 1
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert "is MODEL itself" in err
    assert (tmp_path / "model.npz").read_bytes() == before


@nn.register
class DoubledDense(nn.Dense):
    """A user's Dense whose forward differs: 2 (x @ W + b)."""

    def forward(self, x, training=False):
        return 2 * super().forward(x, training)


@nn.register
class ShiftedDense(nn.Dense):
    """A Dense that changes the step its forward calls: x @ W + b + 1."""

    def transform(self, x, relu):
        return super().transform(x, relu) + 1


@nn.register
class SharpSoftmax(nn.Softmax):
    """Softmax of 2 x."""

    def forward(self, x, training=False):
        return super().forward(2 * x, training)


class ScaledOutputs(Huber):
    """A loss whose predictions are not its outputs."""

    def predictions(self, outputs):
        return 10 * outputs


class HuberOnProbabilities(Huber):
    """A loss whose own predictions are a softmax."""

    def predictions(self, outputs):
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    "layers",
    [[DoubledDense(3)], [ShiftedDense(3)], [nn.Dense(3), SharpSoftmax()]],
    ids=["forward", "transform", "final softmax"],
)
def test_a_subclass_of_a_built_in_layer_is_refused_not_exported_as_its_base(
    layers, tmp_path
):
    model = nn.Sequential(layers, input_shape=(4,), seed=0)
    name = type(layers[-1]).__name__
    with pytest.raises(nn.NnscratchError, match=rf"\({name}\) cannot be exported"):
        nn.export_onnx(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "loss, total",
    [(SmoothedCrossEntropy(), 1.0), (HuberOnProbabilities(), 1.0), (Huber(), None)],
)
def test_a_users_loss_is_exported_with_the_predictions_it_makes(loss, total, tmp_path):
    model = nn.Sequential([nn.Dense(3)], input_shape=(4,), seed=0)
    model.compile(loss=loss)
    x = np.random.default_rng(0).uniform(0, 1, (5, 4))
    path = nn.export_onnx(model, tmp_path / "model.onnx")
    got = run_onnx(path, x)
    np.testing.assert_allclose(got, model.predict(x), atol=1e-6)
    if total is not None:  # probabilities, not the raw outputs
        np.testing.assert_allclose(got.sum(axis=1), total, rtol=1e-6)


def test_a_loss_with_its_own_predictions_is_refused(tmp_path):
    model = nn.Sequential([nn.Dense(3)], input_shape=(4,), seed=0)
    model.compile(loss=ScaledOutputs())
    with pytest.raises(nn.NnscratchError, match="ScaledOutputs has its own pred"):
        nn.export_onnx(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []
