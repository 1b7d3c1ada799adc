"""The Optuna study of a sweep: where it is stored, its sampler and pruner, and what
a rerun finds in it.

The study lives in a database every process of the sweep opens by its URL: by
default the SQLite file DIR/study.db (one machine, or several sharing DIR's file
system lightly), or `--storage`, any URL Optuna's RDB storage takes
(postgresql://..., mysql://...) for many machines. The workers report each epoch's
validation accuracy there and read the other trials' for pruning; the sweep's
process asks trials and tells their results. A database rather than a proxy through
the Dask scheduler (optuna-integration's DaskStorage) because the study must outlive
the scheduler: a rerun after a lost cluster finds every trial where it was.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from ...errors import ArgumentError, NnscratchError
from ..settings import not_taken_by

STUDY_FILE = "study.db"
PRUNERS = ("median", "none")
# median pruning once this many trials have finished, from this epoch on: a trial
# worse than the median of the others at the same epoch stops there
PRUNE_AFTER_TRIALS, PRUNE_FROM_EPOCH = 4, 2
# Sweeps (or a sweep's workers) opening a new database at once each made its
# tables and wrote its schema version: all but the first failed ("table studies
# already exists", "UNIQUE constraint failed: alembic_version.version_num"), where
# opening it again finds it made (`open_storage`)
SCHEMA_ATTEMPTS = 5
FOLDER = "folder"  # the study's user attribute naming its sweep's folder


def default_storage(out: Path) -> str:
    return f"sqlite:///{(Path(out) / STUDY_FILE).absolute()}"


def shared_storage(url: str) -> str:
    """`url` as every process of the sweep opens it: a relative SQLite path made
    absolute (against this process's folder, as --out is), since a worker started
    in another folder opened another file, where the study did not exist
    ("KeyError: 'Record does not exist.'"). Other URLs are returned as given; an
    in-memory SQLite database (which no worker sees) is an NnscratchError."""
    from sqlalchemy.engine import make_url  # optuna's dependency: only when sweeping

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL: open_storage says so
        return url
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database or ""
    if database in ("", ":memory:"):
        raise NnscratchError(
            f"--storage {url}: an in-memory database, which the workers do not "
            "see; give a file (sqlite:///PATH) or a database server's URL"
        )
    if database.startswith("file:") or Path(database).is_absolute():
        return url  # an SQLite URI is the user's to write
    absolute = parsed.set(database=str(Path(database).absolute()))
    return absolute.render_as_string(hide_password=False)


def open_storage(url: str):
    """Optuna's RDB storage at `url`; SQLite waits for a busy file instead of
    failing at once (workers write to it concurrently), and a new database whose
    tables another process made meanwhile is opened again (`SCHEMA_ATTEMPTS`)."""
    import optuna  # the optional sweep extra: only when sweeping

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as e:  # noqa: BLE001 - SQLAlchemy's many errors, one line
            if attempt == SCHEMA_ATTEMPTS or not _made_meanwhile(e):
                reason = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                raise NnscratchError(
                    f"--storage {_shown(url)}: Optuna cannot open it "
                    f"({type(e).__name__}: {reason})"
                ) from None
        time.sleep(0.1)


def _made_meanwhile(error: Exception) -> bool:
    """Whether `error` says another process made the storage's tables meanwhile."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    return isinstance(error, IntegrityError) or (
        isinstance(error, OperationalError) and "already exists" in str(error)
    )


def _shown(url: str) -> str:
    """`url` with its password as *** (SQLAlchemy's way): error lines end up in
    logs, and a worker's in trials.csv."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: nothing to hide
        return url


def make_pruner(name: str):
    import optuna

    if name not in PRUNERS:
        raise NnscratchError(
            f"--pruner: expected one of {', '.join(PRUNERS)}, got {name!r}"
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=PRUNE_AFTER_TRIALS, n_warmup_steps=PRUNE_FROM_EPOCH
    )


def study_exists(storage, study_name: str) -> bool:
    """Whether the storage holds a study of that name (Optuna raises KeyError)."""
    try:
        storage.get_study_id_from_name(study_name)
    except KeyError:
        return False
    return True


def remove_empty_study(storage, study_name: str, out: Path) -> None:
    """Delete the study `study_name` unless it holds trials or another sweep
    claimed it (`claim_folder`) meanwhile. For a sweep that made it and stopped
    before any trial ran: a database of the user's (--storage) is left as found."""
    # the error that stopped the sweep is the one to say, not one of this clean-up
    with suppress(Exception):
        study_id = storage.get_study_id_from_name(study_name)
        claimed = storage.get_study_user_attrs(study_id).get(FOLDER)
        if claimed in (None, _folder(out)) and not storage.get_all_trials(
            study_id, deepcopy=False
        ):
            storage.delete_study(study_id)


def _folder(out: Path) -> str:
    """`out` as a study records it (`FOLDER`): absolute, links resolved."""
    return str(Path(out).resolve())


def claim_folder(study, out: Path) -> None:
    """Record `out` as the folder of the study's sweep; ArgumentError when the
    study is another folder's, one that still exists (a folder moved since is
    followed). Two sweeps in two folders started together on one study in a
    --storage each took the other's running trials for a dead sweep's and
    trained them again, then failed writing best/ from a trial run in the other
    folder. (Two starting within the same instant may both pass.)"""
    here = _folder(out)
    there = study.user_attrs.get(FOLDER)
    if there != here and (there is None or not Path(there).is_dir()):
        study.set_user_attr(FOLDER, here)
        there = study.user_attrs.get(FOLDER)  # another sweep's, if it claimed last
    if there != here:
        raise ArgumentError(
            f"study {study.study_name!r} is the sweep in {there}: give that --out "
            "to continue it, or another --study-name"
        )


def trial_handle(study, storage, number: int):
    """An `optuna.Trial` of the study's trial `number` (to report, prune, tell)."""
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    return optuna.Trial(
        study, storage.get_trial_id_from_study_id_trial_number(study_id, number)
    )


def sampler_seed(seed: int, held: int) -> int:
    """The sampler's seed for a study already holding `held` trials: `seed` for a new
    study, and a different one for each rerun, whose sampler would otherwise draw
    the same random settings (TPE's first trials) as the first run did."""
    if not held:
        return seed
    return int(np.random.SeedSequence([seed, held]).generate_state(1)[0])


# sweeps running in this process (threads of a notebook...), and Optuna's verbosity
# before the first: the last to end puts it back. Each one's own "before" was the
# other's WARNING when two overlapped, and the one ending last restored that.
_QUIET = {"sweeps": 0, "before": None}
_QUIET_LOCK = threading.Lock()


@contextmanager
def optuna_quiet():
    """Inside, Optuna logs warnings and errors only, not a line per trial (the
    sweep's own line says it); its verbosity, which is the whole program's, is put
    back when the last sweep running in this process ends, for a user calling
    `nnscratch.sweep` who had set it."""
    import optuna

    with _QUIET_LOCK:
        if not _QUIET["sweeps"]:
            _QUIET["before"] = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(max(_QUIET["before"], optuna.logging.WARNING))
        _QUIET["sweeps"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET["sweeps"] -= 1
            if not _QUIET["sweeps"]:
                optuna.logging.set_verbosity(_QUIET["before"])


def open_study(storage, study_name: str, pruner: str, seed: int, setup: dict):
    """The study (made, or the one there), for maximising the validation accuracy
    with TPE (seeded by `sampler_seed`). `setup` (the search space and base
    settings) is recorded with the study; once a trial ran in it, another one is
    refused (ArgumentError: the options do not go with that study)."""
    import optuna

    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        pruner=make_pruner(pruner),
        direction="maximize",
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ArgumentError(f"study {study_name!r} does not maximise (not a sweep's)")
    held = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed(seed, held))
    recorded = _without_unused(study.user_attrs.get("setup"))
    if recorded is None or not held:  # a study no trial ran in may still change
        study.set_user_attr("setup", setup)
    elif recorded != setup:
        changed = _changes(recorded, setup)
        if len(changed) > SHOWN_CHANGES:
            changed[SHOWN_CHANGES - 1 :] = ["more"]
        raise ArgumentError(
            f"study {study_name!r} was made with another "
            f"{', '.join(changed)}: give the same options to continue it, or "
            "choose another --out"
        )
    return study


SHOWN_CHANGES = 4  # another --preset changes most settings: the first few say it


def _without_unused(setup):
    """A recorded `setup` whose base settings leave out those their optimiser does
    not take, as `RunSettings.to_dict` now does (studies made before held them)."""
    base = setup.get("base") if isinstance(setup, dict) else None
    if not isinstance(base, dict):
        return setup
    unused = not_taken_by(base.get("optimizer"))
    return {**setup, "base": {k: v for k, v in base.items() if k not in unused}}


def _changes(recorded: dict, setup: dict) -> list[str]:
    """What a rerun changes: 'space', or an option and its values ('--epochs (5,
    now 2)'); the base settings (a dict) are compared option by option."""
    changed = []
    for key in sorted({*recorded, *setup}):
        old, new = recorded.get(key), setup.get(key)
        if old == new:
            continue
        if key == "space":
            changed.append("space")
        elif isinstance(old, dict) and isinstance(new, dict):
            changed += _changes(old, new)
        else:
            changed.append(f"--{key.replace('_', '-')} ({old}, now {new})")
    return changed


def counts(study) -> dict[str, int]:
    """Trials by state: complete, pruned, fail, running."""
    from optuna.trial import TrialState

    found = {"complete": 0, "pruned": 0, "fail": 0, "running": 0}
    names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
             TrialState.FAIL: "fail"}  # fmt: skip
    for trial in study.get_trials(deepcopy=False):
        found[names.get(trial.state, "running")] += 1
    return found


def unfinished(study) -> list:
    """The trials a sweep's process left running or waiting when it died: rerun,
    they continue from their checkpoints under the same numbers."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
