"""The `kzoo` command: the zoo table, the tiny-preset forward timings and the demo's pretraining run."""

import pytest

from kzoo.cli import main


@pytest.mark.slow
def test_demo_prints_every_preset_with_its_count_and_times_the_tiny_ones(capsys, tmp_path):
    assert main(["demo", "--batch-size", "2", "--sequence-length", "16", "--repeats", "1", "--pretrain-steps", "4",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name, count in [("bert_base_en_uncased", "109,482,240"), ("distil_bert_base_en_uncased", "66,362,880"),
                        ("albert_extra_extra_large_en_uncased", "222,595,584")]:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert count in line
    timing_lines = [line for line in out.splitlines() if "tiny" in line and "2x16x128" in line]
    assert len(timing_lines) == 3, out
    if "held-out MLM accuracy" in out:  # the pretraining part runs where make demo installed its corpus
        assert (tmp_path / "bert_pretrain" / "model" / "model.weights.h5").is_file()
        assert (tmp_path / "corpus" / "lee_background.txt").stat().st_size > 300_000


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "presets" in capsys.readouterr().out
