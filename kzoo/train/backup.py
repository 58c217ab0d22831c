"""Crash-safe checkpoints for `fit`: Keras' `BackupAndRestore`, each file written beside its target and renamed
into place."""

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
