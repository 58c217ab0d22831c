"""The `kzoo` command: the zoo table and the tiny-preset forward timings."""

import pytest

from kzoo.cli import main


@pytest.mark.slow
def test_demo_prints_every_preset_with_its_count_and_times_the_tiny_ones(capsys):
    assert main(["demo", "--batch-size", "2", "--sequence-length", "16", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for name, count in [("bert_base_en_uncased", "109,482,240"), ("distil_bert_base_en_uncased", "66,362,880"),
                        ("albert_extra_extra_large_en_uncased", "222,595,584")]:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert count in line
    timing_lines = [line for line in out.splitlines() if "tiny" in line and "2x16x128" in line]
    assert len(timing_lines) == 3, out


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "presets" in capsys.readouterr().out
