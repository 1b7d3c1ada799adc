"""What a run records for its training GIF: after every epoch of `fit`, the model's
probabilities on a few (seeded) test images and the epoch's metrics.

`PredictionRecorder` is the callback that records them; its `Recordings` can be
saved to one .npz (the run directory's recordings.npz) and loaded back, checked as
model files are (`nn.npz.read_npz`). `animation.training_animation` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, ModelFileError, NnscratchError
from ..files import atomic_open
from ..nn.callbacks import Callback
from ..nn.npz import read_npz
from .figures import as_images

# recordings.npz takes a few KB an epoch (16 images' probabilities and logs): a file
# declaring more is damaged, and is refused before anything is inflated
MAX_RECORDINGS_BYTES = 2**28


@dataclass
class Recordings:
    """What `PredictionRecorder` saw: a fixed set of images and, for every epoch, the
    model's probabilities on them and the epoch's logs.

    images (M, H, W), labels (M,), probs (epochs, M, C) float32, logs: metric name ->
    (epochs,) float64 (NaN where missing), class_names: C names.
    """

    images: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    logs: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.images = as_images(self.images)
        self.labels = np.asarray(self.labels).astype(np.int64)
        self.probs = np.asarray(self.probs, dtype=np.float32)
        self.logs = {k: np.asarray(v, dtype=np.float64) for k, v in self.logs.items()}
        self.class_names = [str(c) for c in self.class_names]
        m, epochs = len(self.images), len(self.probs)
        if self.probs.ndim != 3 or self.probs.shape[1] != m or len(self.labels) != m:
            raise DataError(
                f"recordings: expected probs (epochs, {m}, C) and labels ({m},) for"
                f" {m} images, got {self.probs.shape} and {self.labels.shape}"
            )
        if not self.class_names:
            self.class_names = [str(c) for c in range(self.probs.shape[2])]
        if len(self.class_names) != self.probs.shape[2]:
            raise DataError(
                f"recordings: {len(self.class_names)} class names for"
                f" {self.probs.shape[2]} classes"
            )
        for key, values in self.logs.items():
            if values.shape != (epochs,):
                raise DataError(
                    f"recordings: log {key!r} has shape {values.shape}, expected"
                    f" ({epochs},)"
                )

    @property
    def epochs(self) -> int:
        return len(self.probs)

    def save(self, path) -> Path:
        """Write everything to one .npz (plain arrays, no pickle), atomically."""
        arrays = {
            "images": self.images,
            "labels": self.labels,
            "probs": self.probs,
            "class_names": np.array(self.class_names, dtype=str),
        }
        arrays.update({f"log/{k}": v for k, v in self.logs.items()})
        with atomic_open(path) as f:
            np.savez_compressed(f, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path) -> Recordings:
        """Read a file written by `save` as a model file is read (`nn.npz`): never
        unpickled, every array's header checked before any data is read, at most
        MAX_RECORDINGS_BYTES in all. A damaged file is one NnscratchError naming it."""
        try:
            arrays = read_npz(Path(path), MAX_RECORDINGS_BYTES, "recordings file")
        except ModelFileError as e:  # a recordings file is no model: not that type
            raise NnscratchError(str(e)) from None
        missing = {"images", "labels", "probs", "class_names"} - set(arrays)
        if missing:
            raise NnscratchError(
                f"{path}: recordings file lacks {', '.join(sorted(missing))}"
            )
        logs = {k[4:]: v for k, v in arrays.items() if k.startswith("log/")}
        try:
            return cls(
                arrays["images"],
                arrays["labels"],
                arrays["probs"],
                logs,
                list(arrays["class_names"]),
            )
        except (TypeError, ValueError) as e:  # DataError; texts for numbers, 0-d...
            raise NnscratchError(f"{path}: {e}") from None


class PredictionRecorder(Callback):
    """After every epoch, records `model.predict` on a few images and the epoch's logs.

    images (N, H, W) uint8 or float: `n` of them (seeded choice, all if N <= n) are the
    fixed set whose predictions the training animation shows changing. labels (N,) may
    be given now or later to `recordings(labels)` (e.g. by the report, which has them).
    """

    def __init__(
        self,
        images,
        labels=None,
        *,
        n: int = 16,
        seed=0,
        class_names=None,
        batch_size: int = 256,
    ):
        images = np.asarray(images)
        if len(images) == 0 or n < 1:
            raise DataError("PredictionRecorder: expected at least one image to record")
        if labels is not None and len(labels) != len(images):
            raise DataError(
                f"PredictionRecorder: {len(images)} images but {len(labels)} labels"
            )
        rng = np.random.default_rng(seed)
        self.source_size = len(images)
        self.indices = np.sort(
            rng.choice(len(images), min(n, len(images)), replace=False)
        )
        self.images = images[self.indices]
        self.labels = None if labels is None else np.asarray(labels)[self.indices]
        self.class_names = class_names
        self.batch_size = batch_size
        self.probs: list[np.ndarray] = []
        self.epoch_logs: list[dict] = []

    def on_train_begin(self, logs=None):
        self.probs, self.epoch_logs = [], []
        if self.class_names is None:
            self.class_names = getattr(self.model, "class_names", None)

    def on_epoch_end(self, epoch, logs):
        probs = self.model.predict(self.images, batch_size=self.batch_size)
        self.probs.append(np.asarray(probs, dtype=np.float32))
        self.epoch_logs.append(
            {
                k: float(v)
                for k, v in (logs or {}).items()
                if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            }
        )

    def get_state(self):
        probs = np.stack(self.probs) if self.probs else np.zeros((0, len(self.images)))
        return {"probs": probs, "epoch_logs": self.epoch_logs}

    def set_state(self, state):
        self.probs = [np.asarray(p, np.float32) for p in state["probs"]]
        self.epoch_logs = [dict(logs) for logs in state["epoch_logs"]]

    def recordings(self, labels=None) -> Recordings:
        """What was recorded. labels: (N,) for all the constructor's images, needed
        unless they were given to the constructor."""
        if not self.probs:
            raise NnscratchError("PredictionRecorder: no epoch has been recorded yet")
        if labels is not None:
            if len(labels) != self.source_size:
                raise DataError(
                    f"PredictionRecorder: expected {self.source_size} labels, one per"
                    f" image given to the constructor, got {len(labels)}"
                )
            labels = np.asarray(labels)[self.indices]
        elif self.labels is None:
            raise DataError("PredictionRecorder: labels are needed for the recordings")
        else:
            labels = self.labels
        keys = dict.fromkeys(k for logs in self.epoch_logs for k in logs)
        logs = {k: [row.get(k, np.nan) for row in self.epoch_logs] for k in keys}
        return Recordings(
            self.images, labels, np.stack(self.probs), logs, self.class_names or []
        )
