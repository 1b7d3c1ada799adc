"""nnscratch: a neural network written from scratch in NumPy.

The public names are re-exported here: layers, losses, optimisers, schedules, the
`Sequential` model, callbacks, `load_model`, `load_dataset` and the errors.
"""

from .augment import Augment
from .callbacks import Callback, EarlyStopping
from .conv import Conv2D
from .datasets import CLASS_NAMES, load_dataset
from .errors import DataError, ModelFileError, NnscratchError, TrainingDivergedError
from .layers import (
    Dense,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    ReLU,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from .losses import MeanSquaredError, SoftmaxCrossEntropy
from .model import History, Sequential
from .normalization import BatchNorm
from .optimizers import SGD, Adam, AdamW, RMSprop
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .schedules import Constant, CosineDecay, ExponentialDecay, StepDecay
from .serialization import load_model

__version__ = "0.1.0"
