"""Crash-safe checkpoints for `fit`: Keras' `BackupAndRestore`, each file written beside its target and renamed
into place; the best model so far, saved as a preset folder in one rename."""

import dataclasses
import json
import os
import shutil

import keras
import numpy as np
from keras import ops

from kzoo.atomic import STAGING_PREFIX, atomic_file, sync_file
from kzoo.file_checks import read_json


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backups survive a kill at any moment, and resume exactly.

    Keras writes its backup weights in place: a run killed during that write leaves a corrupt file and no way
    back (resuming fails in h5py with "bad object header"). Here the weights (model and optimizer state) and
    then the epoch record are each written to a temporary file and renamed, so the last complete backup stays.
    The record also holds what `save_weights` leaves out, so a resumed run draws what the unbroken one would:
    the dropout seed generators' states and the state of `stateful` callbacks (objects with `state()` and
    `restore(state)`, e.g. `BestCheckpoint`). Rows of the `log` CSV (a `CSVLogger`'s file) past the backed-up
    epochs are cut when this callback is made, so they are written once, when those epochs are trained again.

    Args:
        backup_dir: the backup's folder (nothing else may write there).
        log: the CSV a `CSVLogger(log, append=True)` writes, or None. Put the logger before this callback,
            so an epoch's row is written before its backup.
        stateful: callbacks whose state is saved with each backup. Put them before this callback.
        fingerprint: a JSON-able dict of the run's settings, kept in each backup; resuming under other
            settings is refused, naming those that differ.
        delete_checkpoint: remove the backup when `fit` ends (Keras' default). A run that writes results
            after `fit` passes False and removes it once they are committed (`remove_backup`).

    Resuming starts from the data's beginning unless told otherwise: skip the batches of the completed epochs
    (`dataset.skip(backup.completed_epochs() * steps_per_epoch)`), or, for raw text, pass
    `initial_epoch=backup.completed_epochs()` to `fit`, whose epoch-e batches are drawn from (seed, e) alone.

    Example:
        backup = AtomicBackupAndRestore("runs/backup")
        model.fit(data, epochs=10, initial_epoch=backup.completed_epochs(), callbacks=[backup])
    """

    def __init__(self, backup_dir, log=None, stateful=(), fingerprint=None, delete_checkpoint=True, **kwargs):
        if kwargs:
            raise ValueError(f"AtomicBackupAndRestore backs up at the end of each epoch only (a record per epoch is "
                             f"what it resumes from); it does not take {sorted(kwargs)}.")
        super().__init__(backup_dir, delete_checkpoint=delete_checkpoint)
        self.log, self.stateful, self.fingerprint = log, list(stateful), fingerprint
        if log:  # now, before a CSVLogger opens the log and decides whether it needs a header
            cut_log(log, self._record().get("epoch", 0))

    def completed_epochs(self):
        """The epochs the backup holds (0 without one): what `fit`'s `initial_epoch` becomes on resume. Raises
        when the backup was made by another run (its fingerprint differs)."""
        record = self._record()
        if record and self.fingerprint is not None and record.get("fingerprint") != self.fingerprint:
            saved = record.get("fingerprint") or {}
            changed = sorted(key for key in set(saved) | set(self.fingerprint)
                             if saved.get(key) != self.fingerprint.get(key))
            raise ValueError(f"{self.backup_dir} holds the backup of a run with other settings ({', '.join(changed)} "
                             f"differ); rerun with the same settings to resume it, or pass --overwrite to start over.")
        return record.get("epoch", 0)

    def _record(self):
        if not os.path.isfile(self._training_metadata_path):
            return {}
        record = read_json(self._training_metadata_path, "backup record")
        if "weights" not in record:
            raise ValueError(f"{self._training_metadata_path} is not a kzoo backup record (no 'weights'): remove "
                             f"{self.backup_dir} to start over.")
        return record

    def _save_model(self):
        # The weights go to a new file named by epoch, on disk before the record naming it is renamed into place:
        # the record is the commit, so a kill (or a crash of the machine) leaves the previous record and weights.
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch}.weights.h5"
        staging = os.path.join(self.backup_dir, f"{STAGING_PREFIX}{name}")
        self.model.save_weights(staging, overwrite=True)
        sync_file(staging)
        os.replace(staging, os.path.join(self.backup_dir, name))
        record = {"epoch": self._current_epoch, "weights": name, "fingerprint": self.fingerprint,
                  "seed_states": [ops.convert_to_numpy(v.value).tolist() for v in _seed_states(self.model)],
                  "callbacks": [callback.state() for callback in self.stateful]}
        with atomic_file(self._training_metadata_path) as f:
            json.dump(record, f)
        for other in os.listdir(self.backup_dir):  # older epochs, and partial files of killed runs
            if other.endswith(".weights.h5") and other != name:
                os.remove(os.path.join(self.backup_dir, other))

    def _load_model(self):
        record = self._record()
        if not record:
            return
        self.completed_epochs()  # the same run, or an error naming what differs
        if not self.model.built:
            raise ValueError("AtomicBackupAndRestore restores a built model; build it (call it on a batch) first.")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its variables must exist to be loaded
        self.model.load_weights(os.path.join(self.backup_dir, record["weights"]))
        seeds = _seed_states(self.model)
        if len(seeds) != len(record["seed_states"]) or len(self.stateful) != len(record["callbacks"]):
            raise ValueError(f"{self._training_metadata_path} was made by another model or set of callbacks "
                             f"({len(record['seed_states'])} seed states, {len(record['callbacks'])} callback states; "
                             f"here {len(seeds)} and {len(self.stateful)}).")
        for variable, value in zip(seeds, record["seed_states"]):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        for callback, state in zip(self.stateful, record["callbacks"]):
            callback.restore(state)
        self.model._initial_epoch = record["epoch"]


def _seed_states(model):
    """The model's dropout seed-generator states (Keras' `save_weights` leaves them out)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def cut_log(path, epochs):
    """Cut a `CSVLogger` file after the rows of its first `epochs` epochs (its first column), in one truncation;
    with `epochs=0` remove it (a new run writes its own header)."""
    if not os.path.isfile(path):
        return
    if epochs == 0:
        os.remove(path)
        return
    offset = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f):
            if number and line.strip():
                try:
                    epoch = int(line.split(b",", 1)[0])
                except ValueError:
                    epoch = epochs  # a row cut short by a kill: dropped with the rest
                if epoch >= epochs:
                    break
            offset += len(line)
    os.truncate(path, offset)


def run_fingerprint(config, ignore=("verbose", "overwrite")):
    """The settings of a run (a config dataclass) as JSON values: what a resumed run must share with its backup."""
    settings = {key: value for key, value in dataclasses.asdict(config).items() if key not in ignore}
    return json.loads(json.dumps(settings, default=str))


def remove_outputs(out, names):
    """Remove the files and folders `names` of a run folder (`--overwrite`: start over)."""
    for name in names:
        target = os.path.join(out, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)


def remove_backup(directory):
    """Remove a run's backup once the results it protected are committed."""
    shutil.rmtree(directory, ignore_errors=True)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the task model as a preset (atomically: the old best stays until the new one is complete) whenever
    `monitor` improves (rises with mode "max", falls with "min"). `best` and `best_epoch` (1-based) say where
    it stood.

    Example:
        model.fit(x, y, validation_data=(vx, vy), epochs=3, callbacks=[BestCheckpoint("out/best")])
    """

    def __init__(self, directory, monitor="val_accuracy", mode="max"):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min'; got {mode!r}.")
        self.directory, self.monitor, self.sign = directory, monitor, 1.0 if mode == "max" else -1.0
        self.best, self.best_epoch = None, None

    def state(self):
        return {"best": self.best, "best_epoch": self.best_epoch}

    def restore(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"BestCheckpoint monitors {self.monitor!r}, absent from the logs {sorted(logs)}; "
                             "fit needs validation_data.")
        value = float(logs[self.monitor])
        if self.best is None or self.sign * value > self.sign * self.best:
            self.best, self.best_epoch = value, epoch + 1
            self.model.save_to_preset(self.directory, overwrite=True)
