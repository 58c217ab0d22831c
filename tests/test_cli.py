"""The `kzoo` command: the zoo table, the tiny-preset forward timings and the demo's pretraining and fine-tuning
runs."""

import json
import re

import keras
import pytest

from kzoo.cli import main


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="make demo runs on the default backend; pretraining and fine-tuning are tested on both")
def test_demo_prints_every_preset_with_its_count_and_times_the_tiny_ones(capsys, tmp_path):
    assert main(["demo", "--batch-size", "2", "--sequence-length", "16", "--repeats", "1", "--pretrain-steps", "4",
                 "--finetune-examples", "64", "--finetune-test-examples", "32", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name, count in [("bert_base_en_uncased", "109,482,240"), ("distil_bert_base_en_uncased", "66,362,880"),
                        ("albert_extra_extra_large_en_uncased", "222,595,584")]:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert count in line
    timing_lines = [line for line in out.splitlines() if "tiny" in line and "2x16x128" in line]
    assert len(timing_lines) == 3, out
    if "held-out masked-word accuracy" in out:  # the pretraining part runs where make demo installed its corpus
        assert (tmp_path / "pretrain" / "model" / "model.weights.h5").is_file()
        assert (tmp_path / "corpus" / "lee_background.txt").stat().st_size > 300_000
    if "Held-out test split" in out:  # the fine-tune runs where make demo installed MiniLM and the tweets
        metrics = json.loads((tmp_path / "tweets_finetune" / "metrics.json").read_text())
        assert metrics["examples"]["train"] == 64 and metrics["examples"]["test"] == 32, metrics["examples"]
        assert metrics["lora_rank"] is None and metrics["trainable_parameters"] == metrics["parameters"]  # all of it
        distilled = json.loads((tmp_path / "tweets_distill" / "metrics.json").read_text())
        assert distilled["student_layers"] == [0, 2, 5]
        assert distilled["examples"] == {**metrics["examples"], "transfer": 0}  # the demo distils without one
        assert distilled["teacher"]["accuracy"] == pytest.approx(metrics["accuracy"])  # the same test tweets
        # The student exported: a SavedModel that serves raw strings, and TFLite files (int8 smaller than fp32).
        assert (tmp_path / "export" / "sentiment" / "saved_model.pb").is_file()
        assert "SavedModel fp32 (strings in)" in out
        # The closing check: each exported format's answers on the six showcase tweets, counted against a person's.
        assert re.search(r"^SavedModel: [0-6] of 6 as expected$", out, re.MULTILINE), out
        if "TFLite fp32" in out:
            fp32, int8 = (tmp_path / "export" / f"sentiment_{q}.tflite" for q in ("fp32", "int8"))
            assert int8.stat().st_size < 0.5 * fp32.stat().st_size


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "presets" in capsys.readouterr().out
