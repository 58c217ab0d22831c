"""Saving: a failed save leaves nothing half-written, and one weights file gives the same outputs on the other
backend. Config round trips, `.keras` files and preset directories of every model: tests/test_battery.py."""

import os

import numpy as np
import pytest
from conftest import BACKEND, make_backbone, make_inputs, numpy_outputs, run_python

from kzoo.models import AlbertPretrainer, BertPretrainer, DistilBertMaskedLM

PRETRAINERS = {"bert": BertPretrainer, "distil_bert": DistilBertMaskedLM, "albert": AlbertPretrainer}


def _assert_same(a, b, atol):
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=0, err_msg=key)


def test_failed_save_leaves_nothing_and_keeps_the_old_preset(tmp_path, monkeypatch):
    backbone = make_backbone("bert")
    directory = str(tmp_path / "preset")
    backbone.save_to_preset(directory)
    before = sorted(os.listdir(directory))

    def broken_save_weights(path):
        open(path, "w").write("partial")
        raise OSError("disk full")

    monkeypatch.setattr(backbone, "save_weights", broken_save_weights)
    with pytest.raises(OSError, match="disk full"):
        backbone.save_to_preset(directory, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        backbone.save_to_preset(str(tmp_path / "new"))
    assert sorted(os.listdir(tmp_path)) == ["preset"]  # no staging folder, no half-written "new"
    assert sorted(os.listdir(directory)) == before
    type(backbone).from_preset(directory)  # the old preset still loads


@pytest.mark.slow
def test_weights_file_gives_same_outputs_on_the_other_backend(arch, tmp_path):
    other = "jax" if BACKEND == "tensorflow" else "tensorflow"
    model = PRETRAINERS[arch](make_backbone(arch))
    inputs = dict(make_inputs(model.backbone), mask_positions=np.array([[1, 2], [3, 1], [0, 4]]))
    directory = str(tmp_path / "preset")
    model.save_to_preset(directory)
    np.savez(tmp_path / "inputs.npz", **inputs)
    run_python(f"""
        import numpy as np
        from kzoo.models import {type(model).__name__} as cls
        model = cls.from_preset({directory!r})
        inputs = dict(np.load({str(tmp_path / 'inputs.npz')!r}))
        outputs = {{k: np.asarray(v) for k, v in model(inputs).items()}}
        np.savez({str(tmp_path / 'outputs.npz')!r}, **outputs)
    """, other)
    theirs = dict(np.load(tmp_path / "outputs.npz"))
    _assert_same(numpy_outputs(model(inputs)), theirs, 1e-5)
