"""Checkpoints from the Python API: BackupAndRestore continues a fit exactly,
ModelCheckpoint keeps the best model, save(include_optimizer=True) continues training;
damaged, foreign and mismatched checkpoints give one clear error."""

import io
import json
import zipfile

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.errors import CheckpointError, NnscratchError
from nnscratch.nn.checkpoints import (
    checkpoint_paths,
    read_checkpoint,
    save_next,
    write_checkpoint,
)
from nnscratch.nn.kernels.dispatch import using


def data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 6, 6)) * 255).astype(np.uint8)
    return x, rng.integers(0, 3, n)


def model():
    return nn.Sequential(
        [nn.Flatten(), nn.Dense(12), nn.BatchNorm(), nn.ReLU(), nn.Dropout(0.3),
         nn.Dense(3)],
        input_shape=(6, 6), seed=1,
    )  # fmt: skip


def fit(m, callbacks, epochs=5):
    """A fit that uses every kind of state: dropout, batch norm, augmentation, a
    cosine schedule with warm-up, AdamW, a validation split and early stopping."""
    x, y = data()
    return m.fit(
        x, y, epochs=epochs, batch_size=16, validation_split=0.2, seed=3,
        optimizer=nn.AdamW(0.02), lr_schedule=nn.CosineDecay(0.02, epochs, warmup_epochs=1),
        augment=nn.Augment(shift=1, rotation=10), verbose=0,
        callbacks=[nn.EarlyStopping(patience=1), *callbacks],
    )  # fmt: skip


def stop_after(*calls):
    """An `interrupt` that says stop at its n-th call, for each n in `calls`."""
    count = [0]

    def interrupt():
        count[0] += 1
        return count[0] in calls

    return interrupt


def same_history(a, b):
    drop = {"seconds"}
    assert {k: v for k, v in a.history.items() if k not in drop} == {
        k: v for k, v in b.history.items() if k not in drop
    }
    assert a.batch_losses == b.batch_losses and a.epoch == b.epoch


def same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


@pytest.fixture(scope="module")
def uninterrupted():
    m = model()
    return m, fit(m, [], epochs=8)


def test_a_fit_interrupted_again_and_again_ends_as_if_never_stopped(
    tmp_path, uninterrupted
):
    reference, history = uninterrupted
    assert len(history.epoch) < 8  # early stopping ended it: its state was restored
    rng = np.random.default_rng(0)
    for _ in range(6):  # at random steps, with checkpoints every 3 steps between
        m = model()
        backup = nn.BackupAndRestore(
            tmp_path, save_every=3, interrupt=stop_after(int(rng.integers(1, 12)))
        )
        with pytest.raises(nn.TrainingInterrupted) as stopped:
            fit(m, [backup], epochs=8)
        assert stopped.value.path == backup.last_saved and backup.last_saved.is_file()
        assert len(checkpoint_paths(tmp_path)) <= 2  # the last two are kept
    m = model()
    resumed = fit(m, [nn.BackupAndRestore(tmp_path)], epochs=8)
    same_weights(reference, m)
    same_history(history, resumed)
    assert not tmp_path.exists()  # deleted at the end, as Keras does


OPTIMIZERS = {
    "sgd-momentum": lambda: nn.SGD(0.05, momentum=0.9),
    "sgd-nesterov": lambda: nn.SGD(
        0.05, momentum=0.9, nesterov=True, weight_decay=1e-3
    ),
    "rmsprop": lambda: nn.RMSprop(0.01),
    "adam": lambda: nn.Adam(0.01, weight_decay=1e-3),
    "adamw": lambda: nn.AdamW(0.01),
}


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_optimizer_continues_exactly_on_both_kernels(
    tmp_path, optimizer, kernels
):
    """Stopped at an epoch's end (the 5th call of `interrupt`: after 3 steps and the
    epoch's checkpoint) and in the middle of the next (the 7th: after its 2nd step),
    then continued: the very weights and losses of the fit never stopped (batch norm,
    dropout, augmentation, a validation split and a step-decay schedule)."""
    x, y = data(60)

    def short_fit(callbacks):
        m = model()
        history = m.fit(
            x, y, epochs=3, batch_size=16, validation_split=0.2, seed=3,
            optimizer=OPTIMIZERS[optimizer](), lr_schedule=nn.StepDecay(0.02, 1, 0.5),
            augment=nn.Augment(shift=1), verbose=0, callbacks=callbacks,
        )  # fmt: skip
        return m, history

    with using(kernels):
        reference, history = short_fit([])
        for stop_at in (5, 7):
            folder = tmp_path / str(stop_at)
            with pytest.raises(nn.TrainingInterrupted) as stopped:
                short_fit([nn.BackupAndRestore(folder, interrupt=stop_after(stop_at))])
            assert stopped.value.step == (3 if stop_at == 5 else 2)
            resumed, resumed_history = short_fit([nn.BackupAndRestore(folder)])
            same_weights(reference, resumed)
            same_history(history, resumed_history)


def test_a_checkpoint_taken_after_the_last_epoch_only_ends_training(
    tmp_path, uninterrupted
):
    reference, history = uninterrupted
    fit(model(), [nn.BackupAndRestore(tmp_path, delete_at_end=False)], epochs=8)
    m = model()
    same_history(history, fit(m, [nn.BackupAndRestore(tmp_path)], epochs=8))
    same_weights(reference, m)  # early stopping's best weights, restored at the end


def test_a_damaged_checkpoint_falls_back_to_the_one_before(tmp_path, uninterrupted):
    reference, history = uninterrupted
    with pytest.raises(nn.TrainingInterrupted):
        fit(model(), [nn.BackupAndRestore(tmp_path, interrupt=stop_after(20))], 8)
    older, latest = checkpoint_paths(tmp_path)
    damage(latest)
    said = []
    m = model()
    resumed = fit(m, [nn.BackupAndRestore(tmp_path, say=said.append)], epochs=8)
    assert len(said) == 1 and str(latest) in said[0] and "damaged" in said[0]
    assert older.name in said[0]
    same_weights(reference, m)
    same_history(history, resumed)


def damage(path):
    """Flip bytes in the middle of a file, as a failing disk would."""
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 8] = bytes(8)
    path.write_bytes(bytes(raw))


def test_damaged_and_foreign_checkpoints_give_one_clear_error(tmp_path):
    state = {"a": np.arange(3.0), "b": [1, {"c": np.ones((2, 2), np.float32)}]}
    path = tmp_path / "c.npz"
    write_checkpoint(path, state)
    back = read_checkpoint(path)
    np.testing.assert_array_equal(back["b"][1]["c"], state["b"][1]["c"])
    damage(path)
    with pytest.raises(CheckpointError, match=f"{path}: damaged checkpoint"):
        read_checkpoint(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="damaged checkpoint \\(not a zip"):
        read_checkpoint(path)
    with zipfile.ZipFile(path, "w") as z:  # a checkpoint of a later format
        meta = b'{"format": "nnscratch-checkpoint", "version": 2, "state": {}}'
        z.writestr("__checkpoint__.npy", npy(np.frombuffer(meta, np.uint8)))
    with pytest.raises(NnscratchError, match="format version 2; this nnscratch reads"):
        read_checkpoint(path)
    with zipfile.ZipFile(path, "w") as z:  # never unpickled
        meta = b'{"format": "nnscratch-checkpoint", "version": 1, "state": {}}'
        z.writestr("__checkpoint__.npy", npy(np.frombuffer(meta, np.uint8)))
        z.writestr("a.npy", npy(np.array([print], dtype=object)))
    with pytest.raises(CheckpointError, match="'a.npy' holds Python objects"):
        read_checkpoint(path)
    save_next(tmp_path / "all", state)
    damage(checkpoint_paths(tmp_path / "all")[0])
    with pytest.raises(CheckpointError, match="no checkpoint before it is whole"):
        nn.Sequential([nn.Flatten(), nn.Dense(3)]).fit(
            *data(), verbose=0, callbacks=[nn.BackupAndRestore(tmp_path / "all")]
        )


@pytest.mark.parametrize("name", [["a"], {"a": 1}, 3, None])
def test_an_array_reference_that_is_not_a_name_is_a_damaged_checkpoint(tmp_path, name):
    """{"__array__": ["a"]} in a hand-made description: one CheckpointError line, not
    a TypeError (unhashable list) out of `nnscratch train --resume`."""
    path = tmp_path / "c.npz"
    with zipfile.ZipFile(path, "w") as z:
        state = {"format": "nnscratch-checkpoint", "version": 1,
                 "state": {"w": {"__array__": name}}}  # fmt: skip
        meta = json.dumps(state).encode()
        z.writestr("__checkpoint__.npy", npy(np.frombuffer(meta, np.uint8)))
        z.writestr("a.npy", npy(np.zeros(2)))
    with pytest.raises(
        CheckpointError, match=f"{path}: damaged checkpoint \\(no array"
    ):
        read_checkpoint(path)


def test_a_deflated_checkpoint_that_cannot_be_inflated_is_damaged(tmp_path):
    """zlib's own error (not a BadZipFile) for a member whose data cannot be
    inflated: one CheckpointError line, so load_latest falls back as for others."""
    path = tmp_path / "c.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        meta = b'{"format": "nnscratch-checkpoint", "version": 1, "state": {}}'
        z.writestr("__checkpoint__.npy", npy(np.frombuffer(meta, np.uint8)))
    data = bytearray(path.read_bytes())
    data[30 + len("__checkpoint__.npy")] = 0xFF  # a deflate block of reserved type
    path.write_bytes(bytes(data))
    with pytest.raises(
        CheckpointError, match=f"{path}: damaged checkpoint .*block type"
    ):
        read_checkpoint(path)


def test_a_checkpoint_of_an_unknown_compression_method_is_damaged(tmp_path):
    """zipfile raises NotImplementedError for a member compressed by a method it
    does not know: one CheckpointError line, as for a model file."""
    path = tmp_path / "c.npz"
    with zipfile.ZipFile(path, "w") as z:
        meta = b'{"format": "nnscratch-checkpoint", "version": 1, "state": {}}'
        z.writestr("__checkpoint__.npy", npy(np.frombuffer(meta, np.uint8)))
    data = bytearray(path.read_bytes())
    for signature, method_at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = data.find(signature) + method_at
        data[start : start + 2] = (99).to_bytes(2, "little")  # no such method
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{path}: damaged checkpoint .*method"):
        read_checkpoint(path)


def test_a_file_given_as_the_checkpoint_folder_is_named_as_such(tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    # it said "cannot write DIR/notes.txt: File exists"
    with pytest.raises(NnscratchError) as info:
        nn.Sequential([nn.Flatten(), nn.Dense(3)]).fit(
            *data(), verbose=0, callbacks=[nn.BackupAndRestore(tmp_path / "notes.txt")]
        )
    assert str(info.value) == (
        f"cannot write checkpoints in {tmp_path / 'notes.txt'}: it is a file, not a "
        "folder"
    )


def test_only_its_own_temporary_files_are_removed_from_the_folder(tmp_path):
    """BackupAndRestore may be pointed at a folder other programs write in too: the
    temporary file of a killed checkpoint write goes, another program's stays."""
    killed = tmp_path / ".checkpoint-000002.npz.k1ll3d.tmp"
    others = tmp_path / ".draft.txt.a8c2.tmp"
    for path in (killed, others):
        path.write_bytes(b"half written")
    nn.Sequential([nn.Flatten(), nn.Dense(3)]).fit(
        *data(), verbose=0, callbacks=[nn.BackupAndRestore(tmp_path)]
    )
    assert sorted(tmp_path.iterdir()) == [others]


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def test_a_fit_given_no_seed_continues_the_seed_of_the_fit_it_continues(tmp_path):
    """Keras' usual BackupAndRestore, with no seed anywhere: the continued fit holds
    out the same validation examples and ends as the fit never stopped would have
    (it used to refuse the checkpoint as one "of a fit on other data")."""
    x, y = data()

    def unseeded_fit(callbacks, seed=None):
        rng = np.random.default_rng(0)  # the same initial weights, nothing else
        m = nn.Sequential(
            [nn.Flatten(), nn.Dense(12, rng=rng), nn.ReLU(), nn.Dropout(0.3),
             nn.Dense(3, rng=rng)],
            input_shape=(6, 6),
        )  # fmt: skip
        history = m.fit(
            x, y, epochs=3, batch_size=16, validation_split=0.2, seed=seed,
            verbose=0, callbacks=callbacks,
        )  # fmt: skip
        return m, history

    with pytest.raises(nn.TrainingInterrupted):
        unseeded_fit([nn.BackupAndRestore(tmp_path, interrupt=stop_after(2))])
    seed = read_checkpoint(checkpoint_paths(tmp_path)[-1])["position"]["seed"]
    resumed, resumed_history = unseeded_fit([nn.BackupAndRestore(tmp_path)])
    reference, history = unseeded_fit([], seed=seed)
    same_weights(reference, resumed)
    same_history(history, resumed_history)


def test_a_checkpoint_of_another_fit_is_refused_by_name(tmp_path):
    x, y = data()
    x = x.reshape(len(x), -1)
    nn.Sequential([nn.Dense(3)], seed=0).fit(
        x, y, epochs=1, verbose=0, seed=0,
        callbacks=[nn.BackupAndRestore(tmp_path, delete_at_end=False)],
    )  # fmt: skip
    cases = [
        ({"x": x[:100], "y": y[:100]}, "other data"),
        ({"batch_size": 8}, "steps an epoch"),
        # 5 steps an epoch as with 32: only the batch size tells the fits apart
        ({"batch_size": 31}, "of batch_size 32; this one has 31"),
        ({"shuffle": False}, "that shuffled its examples; this one does not$"),
        (
            {"augment": lambda images, rng: images},
            "never augmented its batches; this one does$",
        ),
        ({"callbacks": [nn.EarlyStopping(monitor="loss")]}, "callbacks"),
        # as many metrics: the epoch's running sums would mix two of them
        ({"metrics": [nn.TopKAccuracy(2)]}, r"reported \['accuracy'\]; this one"),
        # the same layers: the epoch's running loss would add one loss to the other
        (
            {"loss": "mse"},
            r"loss SoftmaxCrossEntropy\(label_smoothing=0.0\); this one with Mean",
        ),
    ]
    for change, message in cases:
        args = {"x": x, "y": y, "epochs": 1, "verbose": 0, "seed": 0, **change}
        args["callbacks"] = [*args.get("callbacks", []), nn.BackupAndRestore(tmp_path)]
        with pytest.raises(NnscratchError, match=message):
            nn.Sequential([nn.Dense(3)], seed=0).fit(**args)
    with pytest.raises(NnscratchError, match="another model"):
        other = nn.Sequential([nn.Dense(4), nn.Dense(3)], seed=0)
        other.fit(x, y, verbose=0, seed=0, callbacks=[nn.BackupAndRestore(tmp_path)])


def test_model_checkpoint_keeps_the_best_model(tmp_path):
    x, y = data()
    best = nn.ModelCheckpoint(
        tmp_path / "best.npz", monitor="val_accuracy", save_best_only=True
    )
    # in a folder that does not exist yet: made, as Keras makes it
    every = nn.ModelCheckpoint(tmp_path / "every" / "m-{epoch:02d}-{val_loss:.3f}.npz")
    m = model()
    history = m.fit(
        x, y, epochs=4, validation_split=0.2, seed=0, verbose=0, callbacks=[best, every]
    )
    assert len(list((tmp_path / "every").glob("m-0*.npz"))) == 4
    accuracies = history.history["val_accuracy"]
    assert best.best == max(accuracies)
    assert nn.load_model(tmp_path / "best.npz").count_params() == m.count_params()
    with pytest.raises(NnscratchError, match="no metric 'val_loss'"):
        m.fit(x, y, verbose=0, callbacks=[nn.ModelCheckpoint(tmp_path / "a.npz",
              save_best_only=True)])  # fmt: skip


def test_model_checkpoint_keeps_its_best_over_several_fits(tmp_path):
    # as in Keras: a second fit given the same callback saves only a better model,
    # it does not overwrite the best file with its own first epoch
    x, y = data(60)
    best = nn.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)
    m = model()
    m.fit(x, y, epochs=3, seed=0, verbose=0, validation_data=(x, y), callbacks=[best])
    saved = nn.load_model(tmp_path / "best.npz").get_weights()
    worse = m.get_weights()
    worse["5.W"] *= -20  # the last Dense's weights: confidently wrong
    m.set_weights(worse)
    m.fit(x, y, epochs=1, seed=0, verbose=0, validation_data=(x, y), callbacks=[best],
          optimizer=nn.SGD(1e-9))  # fmt: skip
    for name, array in nn.load_model(tmp_path / "best.npz").get_weights().items():
        np.testing.assert_array_equal(array, saved[name])


def test_model_checkpoint_saves_every_n_steps_with_save_freq(tmp_path):
    # Keras' save_freq=N: every N steps, counted over the fit (5 steps an epoch here)
    x, y = data(80)
    every = nn.ModelCheckpoint(
        tmp_path / "m-{epoch}-{batch}-{loss:.1f}.npz", save_freq=3
    )
    best = nn.ModelCheckpoint(tmp_path / "best.npz", monitor="loss", save_freq=3,
                              save_best_only=True)  # fmt: skip
    m = model()
    history = m.fit(x, y, epochs=2, batch_size=16, seed=0, verbose=0,
                    callbacks=[every, best])  # fmt: skip
    saved = sorted(p.name.rsplit("-", 1)[0] for p in tmp_path.glob("m-*.npz"))
    assert saved == ["m-1-3", "m-2-1", "m-2-4"]
    assert best.best == min(history.batch_losses[2::3])
    with pytest.raises(NnscratchError, match="save_freq=3 saves between epochs"):
        nn.ModelCheckpoint(tmp_path / "a.npz", save_freq=3, save_best_only=True)
    with pytest.raises(NnscratchError, match='save_freq: expected "epoch" or an int'):
        nn.ModelCheckpoint(tmp_path / "a.npz", save_freq="batch")


def test_save_with_the_optimizer_continues_training_exactly(tmp_path):
    x, y = data()

    def two_fits(between):
        m = nn.Sequential([nn.Flatten(), nn.Dense(8), nn.ReLU(), nn.Dense(3)],
                          input_shape=(6, 6), seed=2)  # fmt: skip
        m.fit(x, y, epochs=1, seed=0, verbose=0, optimizer=nn.Adam(0.01))
        m = between(m)
        m.fit(x, y, epochs=1, seed=0, verbose=0)
        return m

    def reload(m):
        m.save(tmp_path / "m.npz", include_optimizer=True)
        return nn.load_model(tmp_path / "m.npz")

    same_weights(two_fits(lambda m: m), two_fits(reload))
    loaded = nn.load_model(tmp_path / "m.npz")
    assert isinstance(loaded.optimizer, nn.Adam) and loaded.optimizer.iterations == 5
    m = loaded
    m.save(tmp_path / "again.npz", include_optimizer=True)  # the same bytes again
    assert (tmp_path / "again.npz").read_bytes() == (tmp_path / "m.npz").read_bytes()
    m.save(tmp_path / "plain.npz")
    assert nn.load_model(tmp_path / "plain.npz").optimizer is None


def tampered(s, where, value):
    """Set s[where[0]][where[1]]...[index] = value, the index being where's last item."""
    *keys, index = where
    for key in keys:
        s = s[key]
    s[index] = value


@pytest.mark.parametrize(
    "where, value, problem",
    [
        (("weights", "1.W", (0, 0)), np.nan, "array '1.W' holds NaN or infinite"),
        (("weights", "2.running_var", 0), -3.0,
         "array '2.running_var' holds negative values, which BatchNorm's running_var"),
        (("optimizer", "state", "all", "v", 0), -1.0,
         "state 'all/v' holds negative values, which a mean of squares cannot"),
        (("optimizer", "state", "all", "m", slice(None)), np.inf,
         "state 'all/m' holds NaN or infinite"),
    ],
    ids=["nan-weight", "negative-variance", "negative-moment", "infinite-moment"],
)  # fmt: skip
def test_a_checkpoint_with_values_training_cannot_have_is_refused_by_name(
    tmp_path, where, value, problem
):
    """A tampered checkpoint (whole zip, bad numbers) is named with the array at
    restore, not reported later as 'training diverged, try a lower learning rate'
    (after which `nnscratch train` deletes the run's checkpoints) or left to make
    every prediction NaN."""
    x, y = data(48)
    backup = nn.BackupAndRestore(tmp_path, delete_at_end=False)
    model().fit(x, y, epochs=1, seed=0, verbose=0, optimizer=nn.Adam(0.01),
                callbacks=[backup])  # fmt: skip
    state = read_checkpoint(backup.last_saved)
    tampered(state, where, value)
    write_checkpoint(backup.last_saved, state)
    with pytest.raises(NnscratchError) as info:
        model().fit(x, y, epochs=2, seed=0, verbose=0, optimizer=nn.Adam(0.01),
                    callbacks=[nn.BackupAndRestore(tmp_path)])  # fmt: skip
    assert type(info.value) is NnscratchError  # not TrainingDivergedError
    assert str(info.value).startswith(f"{backup.last_saved}: ")
    assert problem in str(info.value)


def test_a_checkpoint_missing_an_optimizer_moment_is_refused_by_name(tmp_path):
    x, y = data(48)
    backup = nn.BackupAndRestore(tmp_path, delete_at_end=False)
    model().fit(x, y, epochs=1, seed=0, verbose=0, optimizer=nn.RMSprop(0.01),
                callbacks=[backup])  # fmt: skip
    state = read_checkpoint(backup.last_saved)
    state["optimizer"]["state"]["all"]["velocity"] = state["optimizer"]["state"][
        "all"
    ].pop("square_avg")
    write_checkpoint(backup.last_saved, state)
    with pytest.raises(NnscratchError) as info:  # it was a KeyError at the first step
        model().fit(x, y, epochs=2, seed=0, verbose=0, optimizer=nn.RMSprop(0.01),
                    callbacks=[nn.BackupAndRestore(tmp_path)])  # fmt: skip
    assert str(info.value) == (
        f"{backup.last_saved}: optimizer: the state of 'all' holds ['velocity'], "
        "RMSprop keeps ['square_avg']"
    )


def test_backup_and_restore_takes_keras_names(tmp_path):
    """backup_dir, save_freq and delete_checkpoint, as a Keras user writes them."""
    keras = nn.BackupAndRestore(
        backup_dir=tmp_path, save_freq=7, delete_checkpoint=False
    )
    assert (keras.directory, keras.save_every, keras.delete_at_end) == (
        tmp_path,
        7,
        False,
    )
    per_epoch = nn.BackupAndRestore(tmp_path, save_freq="epoch")
    assert per_epoch.save_every is None and per_epoch.delete_at_end
    with pytest.raises(NnscratchError, match='save_freq: expected "epoch" or an int'):
        nn.BackupAndRestore(tmp_path, save_freq="batch")
    with pytest.raises(NnscratchError, match="give save_every or save_freq"):
        nn.BackupAndRestore(tmp_path, save_every=3, save_freq=5)
    with pytest.raises(NnscratchError, match="give delete_at_end or delete_checkpoint"):
        nn.BackupAndRestore(tmp_path, delete_at_end=False, delete_checkpoint=True)
    with pytest.raises(NnscratchError, match="give directory or backup_dir"):
        nn.BackupAndRestore(tmp_path, backup_dir=tmp_path)
    with pytest.raises(NnscratchError, match="expected a directory"):
        nn.BackupAndRestore()


def test_a_fit_given_no_seed_reads_the_checkpoint_it_continues_once(
    tmp_path, monkeypatch
):
    # the seed, then the training state: the same file was read twice
    x, y = data()

    def unseeded_fit(backup):
        model().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[backup])

    with pytest.raises(nn.TrainingInterrupted):
        unseeded_fit(nn.BackupAndRestore(tmp_path, interrupt=stop_after(2)))
    reads = []
    monkeypatch.setattr(
        "nnscratch.nn.checkpoints.read_checkpoint",
        lambda path: reads.append(path) or read_checkpoint(path),
    )
    backup = nn.BackupAndRestore(tmp_path, delete_at_end=False)
    unseeded_fit(backup)
    assert reads == [backup.restored_from]

    # what it read is not used once the checkpoints have changed: a fit that
    # failed before training left it, and the checkpoints were removed since
    backup = nn.BackupAndRestore(tmp_path)
    assert backup.resumed_seed() is not None
    for path in checkpoint_paths(tmp_path):
        path.unlink()
    unseeded_fit(backup)
    assert backup.restored_from is None


def test_a_checkpoint_taken_at_a_learning_rate_of_zero_continues(tmp_path):
    """A CosineDecay shorter than the fit holds the rate at its min_lr, 0, from
    then on (as a LearningRateScheduler may): the checkpoints written then, and a
    model saved with its optimiser, hold lr 0 and are read back, not refused."""
    x, y = data(60)

    def cosine_fit(callbacks):
        m = model()
        m.fit(
            x, y, epochs=3, batch_size=16, seed=3, optimizer=nn.SGD(0.05),
            lr_schedule=nn.CosineDecay(0.05, 1), verbose=0, callbacks=callbacks,
        )  # fmt: skip
        return m

    reference = cosine_fit([])
    assert reference.optimizer.lr == 0.0
    with pytest.raises(nn.TrainingInterrupted):  # after the 2nd epoch's 2nd step
        cosine_fit([nn.BackupAndRestore(tmp_path / "b", interrupt=stop_after(8))])
    same_weights(reference, cosine_fit([nn.BackupAndRestore(tmp_path / "b")]))
    reference.save(tmp_path / "m.npz", include_optimizer=True)
    assert nn.load_model(tmp_path / "m.npz").optimizer.lr == 0.0


def test_a_csv_log_is_whole_after_continuing_from_the_last_checkpoint(tmp_path):
    """Stopped after the last epoch's checkpoint (a kill before fit returned), the
    fit continued only ends training: its CSVLogger file still holds every epoch's
    row, not just the header it starts a fit with."""
    x, y = data(60)
    log = tmp_path / "log.csv"

    def logged_fit(callbacks):
        model().fit(
            x, y, epochs=2, batch_size=16, seed=3, verbose=0,
            callbacks=[nn.CSVLogger(log), *callbacks],
        )  # fmt: skip
        return [line.split(",")[:2] for line in log.read_text().splitlines()]

    expected = logged_fit([])
    assert len(expected) == 3  # the header and two epochs
    backup = tmp_path / "backup"
    logged_fit([nn.BackupAndRestore(backup, delete_at_end=False)])
    assert logged_fit([nn.BackupAndRestore(backup)]) == expected


def test_a_checkpoint_of_the_other_kernels_is_refused_by_name(tmp_path):
    """The numba and NumPy twins round differently: a fit stopped on one and
    continued on the other would end with weights neither fit has. Refused, saying
    which kernels to run it with; continued on its own kernels, it is exact."""
    x, y = data(60)

    def plain_fit(callbacks):
        m = nn.Sequential([nn.Flatten(), nn.Dense(8), nn.ReLU(), nn.Dense(3)],
                          input_shape=(6, 6), seed=1)  # fmt: skip
        m.fit(x, y, epochs=2, batch_size=16, seed=0, optimizer=nn.Adam(0.01),
              verbose=0, callbacks=callbacks)  # fmt: skip
        return m

    with using("numba"):
        reference = plain_fit([])
        with pytest.raises(nn.TrainingInterrupted):
            plain_fit([nn.BackupAndRestore(tmp_path, interrupt=stop_after(3))])
    with using("numpy"), pytest.raises(NnscratchError) as refused:
        plain_fit([nn.BackupAndRestore(tmp_path)])
    assert str(refused.value).endswith(
        "the checkpoint was written with the numba kernels, this fit runs the numpy "
        "ones, which round differently: continue it with NNSCRATCH_KERNELS=numba"
    )
    with using("numba"):
        same_weights(reference, plain_fit([nn.BackupAndRestore(tmp_path)]))


def test_a_checkpoint_that_cannot_be_opened_is_not_taken_for_damaged(tmp_path):
    """An OSError on opening (no permission, written by another user; here a folder
    under a checkpoint's name) says so in one line and deletes nothing: only a file
    read and found damaged is replaced by the one before it."""
    x, y = data(60)

    def short_fit(backup):
        model().fit(x, y, epochs=2, batch_size=16, seed=3, verbose=0,
                    callbacks=[backup])  # fmt: skip

    with pytest.raises(nn.TrainingInterrupted):
        short_fit(nn.BackupAndRestore(tmp_path, interrupt=stop_after(3)))
    unreadable = tmp_path / "checkpoint-000099.npz"
    unreadable.mkdir()
    listed = checkpoint_paths(tmp_path)
    with pytest.raises(NnscratchError, match=f"^cannot read {unreadable}: ") as e:
        short_fit(nn.BackupAndRestore(tmp_path, say=pytest.fail))
    assert not isinstance(e.value, CheckpointError)
    assert checkpoint_paths(tmp_path) == listed  # all still there
