"""nnscratch: a neural network written from scratch in NumPy.

The public names are re-exported here: layers, losses, optimisers, schedules, the
`Sequential` model, callbacks (checkpoints too), `load_model`, `load_dataset`,
`export_onnx`, `sweep` (hyperparameter sweeps, with the optional `sweep` extra) and
the errors. The scikit-learn estimators are in `nnscratch.sklearn`
(an optional extra).
"""

from .runs.signals import quiet_ctrl_c_while_starting

quiet_ctrl_c_while_starting()  # `nnscratch`'s Ctrl-C in the imports below: no traceback

from .app.export import export_onnx
from .data.augment import Augment
from .data.catalog import CLASS_NAMES
from .data.loading import load_dataset
from .errors import (
    CheckpointError,
    DataError,
    ModelFileError,
    NnscratchError,
    TrainingDivergedError,
)
from .nn.activations import Activation, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .nn.backup import BackupAndRestore, ModelCheckpoint, TrainingInterrupted
from .nn.callbacks import Callback, CallbackList, CSVLogger, EarlyStopping, History
from .nn.conv import Conv2D
from .nn.custom import register
from .nn.dense import Dense
from .nn.dropout import Dropout
from .nn.layer import Layer
from .nn.loading import load_model
from .nn.losses import (
    BinaryCrossEntropy,
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)
from .nn.metrics import Accuracy, Metric, TopKAccuracy
from .nn.model import Sequential
from .nn.normalization import BatchNorm
from .nn.optimizers import SGD, Adam, AdamW, RMSprop
from .nn.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .nn.rate_callbacks import LearningRateScheduler, ReduceLROnPlateau
from .nn.reshape import Flatten, Reshape
from .nn.schedules import Constant, CosineDecay, ExponentialDecay, StepDecay
from .nn.seeding import set_seed
from .runs.sweeps import SweepResult, sweep

__version__ = "0.1.0"

__all__ = [
    "CLASS_NAMES",
    "SGD",
    "Accuracy",
    "Activation",
    "Adam",
    "AdamW",
    "Augment",
    "AvgPool2D",
    "BackupAndRestore",
    "BatchNorm",
    "BinaryCrossEntropy",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "CheckpointError",
    "Constant",
    "Conv2D",
    "CosineDecay",
    "DataError",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "ExponentialDecay",
    "Flatten",
    "GlobalAvgPool2D",
    "History",
    "Layer",
    "LeakyReLU",
    "LearningRateScheduler",
    "Loss",
    "MaxPool2D",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "ModelCheckpoint",
    "ModelFileError",
    "NnscratchError",
    "RMSprop",
    "ReLU",
    "ReduceLROnPlateau",
    "Reshape",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "StepDecay",
    "SweepResult",
    "Tanh",
    "TopKAccuracy",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "__version__",
    "export_onnx",
    "load_dataset",
    "load_model",
    "register",
    "set_seed",
    "sweep",
]
