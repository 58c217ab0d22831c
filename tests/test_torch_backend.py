"""Smoke test: the torch backend builds the tiny presets and runs a forward pass and a fit step."""

import importlib.util

import pytest
from conftest import run_python

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")


@pytest.mark.slow
def test_torch_backend_forward_and_fit_of_tiny_presets():
    out = run_python("""
        import numpy as np, keras
        from kzoo.models import BertPretrainer, DistilBertMaskedLM, AlbertPretrainer
        assert keras.backend.backend() == "torch"
        for cls, preset in [(BertPretrainer, "bert_tiny_en_uncased"),
                            (DistilBertMaskedLM, "distil_bert_tiny_en_uncased"),
                            (AlbertPretrainer, "albert_tiny_en_uncased")]:
            model = cls.from_preset(preset)
            backbone = model.backbone
            x = {"token_ids": np.random.randint(5, 1000, (4, 16)).astype("int32"),
                 "padding_mask": np.ones((4, 16), "int32"), "mask_positions": np.array([[1, 2]] * 4)}
            if backbone.uses_segments:
                x["segment_ids"] = np.zeros((4, 16), "int32")
            out = backbone({k: x[k] for k in backbone.input_keys})
            assert tuple(out["sequence_output"].shape) == (4, 16, backbone.hidden_dim)
            y = {"mlm": np.array([[7, 8]] * 4)}
            sw = {"mlm": np.ones((4, 2), "float32")}
            if model.pair_task:
                y[model.pair_task] = np.array([0, 1, 0, 1])
                sw[model.pair_task] = None
            model.compile(optimizer="adam")
            loss = model.fit(x, y, sample_weight=sw, epochs=1, verbose=0).history["loss"][0]
            assert np.isfinite(loss)
            try:
                x["token_ids"][0, 0] = 10**6
                backbone({k: x[k] for k in backbone.input_keys})
                raise AssertionError("out-of-range id was accepted")
            except ValueError as error:
                assert "token_ids has value 1000000" in str(error)
            print(preset, "ok")
    """, "torch")
    assert out.count(" ok") == 3
