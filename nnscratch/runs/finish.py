"""The end of a training run: its files written to .incoming/, then put in place of
those of the run there before (`rundir.commit_incoming`), in one step a killed
process cannot leave half done."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import NnscratchError
from ..nn.kernels import compile_seconds
from .rundir import (
    MODEL_FILE,
    RECORDINGS_FILE,
    commit_incoming,
    incoming_dir,
    write_config,
    write_history,
    write_metrics,
    write_run_report,
)
from .scoring import test_metrics, validation_metrics
from .signals import RunInterrupted, resume_command


def finish_run(
    run_dir: Path, run: dict, model, history, data, recorder: list, train_seconds: float,
    stop,
) -> dict:  # fmt: skip
    """Write the trained run's files (model, config, history, metrics, and unless
    `run["report"]` is false, recordings, figures and report.html) and put them in
    place; print and return the metrics. The metrics are the test set's, unless
    `run["score_test"]` is false (a sweep's trial): then the validation set's.

    data: a `training.RunData`; recorder: [the PredictionRecorder] or []. `stop`
    (`signals.StopSignals`) asked to stop: RunInterrupted before the files are put in
    place. If a file cannot be written (a full disk) none is put in place, and the
    run's checkpoints stay to write them again with --resume.
    """
    go_on = f"continue with: {resume_command(run_dir)}"

    def stop_if_asked() -> None:
        if stop.requested():
            raise RunInterrupted(
                f"interrupted while writing the run's files; {go_on}", stop.exit_code
            )

    x_test, y_test = data.test
    incoming = incoming_dir(run_dir)
    try:
        model.save(incoming / MODEL_FILE)
        write_config(incoming, run["config"])
        write_history(incoming, history)
        probs = None  # the test set's, if scored: the figures reuse them
        if run.get("score_test", True):
            metrics, probs = test_metrics(model, x_test, y_test, data.class_names)
        else:
            metrics = validation_metrics(model, data.validation)
        metrics["train_seconds"] = train_seconds
        write_metrics(incoming, metrics)
        if run["report"]:
            stop_if_asked()
            recordings = recorder[0].recordings(y_test)
            recordings.save(incoming / RECORDINGS_FILE)
            write_run_report(
                incoming, model, history, history.batch_losses, data.test,
                recordings, run["config"], metrics, shown_dir=run_dir,
                after_each=stop_if_asked, probs=probs,
            )  # fmt: skip
    except NnscratchError as e:
        shutil.rmtree(incoming, ignore_errors=True)  # the room it took, too
        raise NnscratchError(f"{e}; the run's checkpoints are kept: {go_on}") from None
    stop_if_asked()
    commit_incoming(run_dir)
    dataset = run["config"]["dataset"]
    if "test_accuracy" in metrics:
        scored = (
            f"test accuracy {metrics['test_accuracy']:.4f} on {len(y_test):,} {dataset}"
            f" test images (loss {metrics['test_loss']:.4f})"
        )
    else:
        scored = (
            f"validation accuracy {metrics['val_accuracy']:.4f} on "
            f"{metrics['val_examples']:,} held-out images (test set not scored)"
        )
    print(f"{scored}; trained in {train_seconds:.1f}s; saved {run_dir / MODEL_FILE}")
    if compile_seconds() > COMPILE_NOTE_SECONDS:
        print(
            f"(this run spent {compile_seconds():.0f}s compiling nnscratch's kernels: "
            "once on this machine, later runs load them from numba's cache)"
        )
    return metrics


# the first run on a fresh install compiles the kernels; past this, it says so
COMPILE_NOTE_SECONDS = 3.0
