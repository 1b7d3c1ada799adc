"""What `fit` shows while it trains (with `verbose` on): a progress bar per epoch and
one line of metrics when the epoch ends."""

from __future__ import annotations

import sys

from ..errors import NnscratchError
from .callbacks import Callback

POSTFIX_EVERY = 50  # steps between updates of the bar's loss and metrics


class ProgressBar(Callback):
    """A tqdm bar on stderr while an epoch trains (on a terminal only, cleared when the
    epoch's last batch is done), then one line on stdout with the epoch's metrics:
    `epoch 2/5 - loss 0.3120 - accuracy 0.9012 - lr 1.00e-03 - 4.2s` (and `val_loss`,
    `val_accuracy` after `accuracy` when there is validation data).

    epochs: how many `fit` runs; examples: training examples per epoch; bar: False
    for the lines only (Keras' verbose=2, for logs that are not a terminal).
    """

    def __init__(self, epochs: int, examples: int, bar: bool = True):
        self.epochs, self.examples, self.shows_bar = epochs, examples, bar
        self.bar = None

    def on_epoch_begin(self, epoch, logs):
        from tqdm import tqdm  # imported by fit only: `import nnscratch` goes without

        self.bar = tqdm(
            total=self.examples, desc=f"epoch {epoch + 1}/{self.epochs}", unit="img",
            leave=False, disable=not (self.shows_bar and sys.stderr.isatty()),
            mininterval=0.5,
        )  # fmt: skip

    def on_batch_end(self, batch, logs):
        self.bar.update(logs["size"])
        if batch % POSTFIX_EVERY == 0:  # the loss and every metric, as Keras shows
            shown = {k: v for k, v in logs.items() if k != "size"}
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items()})
        if self.bar.n == self.examples:  # cleared before validation runs
            self.close()

    def on_epoch_end(self, epoch, logs):
        self.close()
        print(epoch_line(epoch, self.epochs, logs), flush=True)

    def close(self) -> None:
        """Clear the bar if one is showing (`fit` calls this when training raises)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def epoch_line(epoch: int, epochs: int, logs: dict) -> str:
    """`epoch 1/5 - loss 0.4821 - accuracy 0.8612 - lr 1.00e-03 - 3.9s` from the
    epoch's logs (0-based `epoch`)."""
    parts = [f"epoch {epoch + 1}/{epochs}"]
    measured = [k for k in logs if k not in ("lr", "seconds", "size")]
    # the training metrics first, then the validation ones, each in the logs' order
    for key in sorted(measured, key=lambda k: k.startswith("val_")):
        parts.append(f"{key} {logs[key]:.4f}")
    parts.append(f"lr {logs['lr']:.2e}")
    parts.append(f"{logs['seconds']:.1f}s")
    return " - ".join(parts)


def results_line(results: dict) -> str:
    """`loss 0.2717 - accuracy 0.9160`: evaluate's results, as an epoch line shows
    them."""
    return " - ".join(f"{key} {value:.4f}" for key, value in results.items())


def check_verbose(verbose, levels: str) -> int:
    """Keras' `verbose`: 0, 1 or 2 (True and False are 1 and 0), or "auto" (1, its
    meaning in Keras); `levels` says what 0, 1 and 2 do, for the error."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if isinstance(verbose, str) or verbose not in (0, 1, 2):
        raise NnscratchError(
            f"verbose: expected {levels}, or 'auto' (1), got {verbose!r}"
        )
    return int(verbose)
