"""Real pretraining on Jane Austen's novels (../shared/data/corpora/austen), a few minutes on CPU, JAX backend
(the pipeline and CLI run under both backends in test_pretraining_pipeline.py; these runs are long, so once).

- a small BERT (bert_tiny, MLM + NSP) learns the masked tokens well beyond the unigram baseline and NSP beyond
  60% on held-out documents;
- a small ALBERT (albert_tiny, MLM + SOP, n-gram masking) learns the masked tokens beyond the baseline, by a
  smaller margin: four shared layers learn more slowly than BERT's two. Its SOP accuracy is printed, not
  asserted: in this budget it stays near chance (SOP needs far more steps).
Both runs are seeded; on one machine they repeat to the digit.
"""

import json
import os

import pytest
from conftest import AUSTEN, BACKEND

from kzoo.train.pretrain import PretrainConfig, pretrain

CASES = {  # arch: (steps, sequence length, peak learning rate, optimizer, MLM margin over the baseline)
    "bert": (500, 128, 1e-3, "adamw", 1.5),
    "albert": (500, 64, 2e-3, "adamw", 1.15),
}


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(AUSTEN), reason=f"real corpus {AUSTEN} is absent")
@pytest.mark.skipif(BACKEND != "jax", reason="long real-data runs: once, under jax")
@pytest.mark.parametrize("arch", sorted(CASES))
def test_small_model_learns_austen(arch, tmp_path):
    steps, sequence_length, learning_rate, optimizer, margin = CASES[arch]
    config = PretrainConfig(arch=arch, corpus=AUSTEN, out=str(tmp_path / arch), vocabulary_size=8000, steps=steps,
                            batch_size=32, sequence_length=sequence_length, learning_rate=learning_rate,
                            optimizer=optimizer, log_every=100, holdout_every=20, eval_batches=20, verbose=2,
                            backbone_overrides={"dropout": 0.0})
    summary = pretrain(config)
    print(json.dumps(summary, indent=2))
    held_out = summary["held_out"]
    baseline = summary["unigram_baseline_mlm_accuracy"]
    assert held_out["mlm_accuracy"] > margin * baseline, (held_out, baseline)
    if arch == "bert":
        assert held_out["nsp_accuracy"] > 0.6, held_out
    assert os.path.isfile(tmp_path / arch / "metrics.png")
