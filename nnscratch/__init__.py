"""nnscratch: a neural network written from scratch in NumPy."""

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

__version__ = "0.1.0"
from .callbacks import Callback, EarlyStopping
from .losses import MeanSquaredError, SoftmaxCrossEntropy
from .model import History, Sequential
from .optimizers import SGD, Adam, AdamW, RMSprop
from .schedules import Constant, CosineDecay, ExponentialDecay, StepDecay
from .serialization import load_model
from .datasets import CLASS_NAMES, load_dataset
