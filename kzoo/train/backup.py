"""Crash-safe checkpoints for `fit`: Keras' `BackupAndRestore`, each file written beside its target and renamed
into place; the best model so far, saved as a preset folder in one rename."""

import json
import os

import keras

from kzoo.atomic import atomic_file


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backups survive a kill at any moment.

    Keras writes its backup weights in place: a run killed during that write leaves a corrupt file and no way
    back (resuming fails in h5py with "bad object header"). Here the weights (model and optimizer state) and
    then the epoch record are each written to a temporary file and renamed, so the last complete backup stays.

    Example:
        model.fit(data, epochs=10, callbacks=[AtomicBackupAndRestore("runs/backup")])
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        staging = self._weights_path[:-len(".weights.h5")] + ".partial.weights.h5"
        self.model.save_weights(staging, overwrite=True)
        os.replace(staging, self._weights_path)
        with atomic_file(self._training_metadata_path) as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)


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

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"BestCheckpoint monitors {self.monitor!r}, absent from the logs {sorted(logs)}; "
                             "fit needs validation_data.")
        value = float(logs[self.monitor])
        if self.best is None or self.sign * value > self.sign * self.best:
            self.best, self.best_epoch = value, epoch + 1
            self.model.save_to_preset(self.directory, overwrite=True)
