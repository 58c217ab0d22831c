"""`kzoo …`: the command-line front door."""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _presets(args):
    from kzoo.models.presets import PRESETS, count_preset_params
    from kzoo.table import format_table

    rows = []
    for name, (class_name, config, description) in PRESETS.items():
        rows.append([name, class_name, f"{count_preset_params(name):,}", description])
    print(format_table(["preset", "backbone", "parameters", "description"], rows))


def _tiny_forward_timings(batch_size, sequence_length, repeats):
    """Forward passes of the tiny presets: first call (compile) and steady-state seconds per batch."""
    import numpy as np

    from kzoo.models import Backbone, PRESETS

    rows = []
    for name in [n for n in PRESETS if "tiny" in n]:
        backbone = Backbone.from_preset(name, dropout=0.0)
        rng = np.random.default_rng(0)
        inputs = {
            "token_ids": rng.integers(1, backbone.vocabulary_size, (batch_size, sequence_length)).astype("int32"),
            "padding_mask": np.ones((batch_size, sequence_length), "int32"),
        }
        if backbone.uses_segments:
            inputs["segment_ids"] = np.zeros((batch_size, sequence_length), "int32")
        start = time.perf_counter()
        outputs = backbone.predict_on_batch(inputs)
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(repeats):
            outputs = backbone.predict_on_batch(inputs)
        steady = (time.perf_counter() - start) / repeats
        shape = "x".join(str(d) for d in outputs["sequence_output"].shape)
        rows.append([name, f"{backbone.count_params():,}", shape, f"{first:.2f}", f"{steady * 1000:.1f}"])
    return rows


def _demo(args):
    import keras

    from kzoo.table import format_table

    print(f"kzoo demo on the {keras.backend.backend()} backend\n")
    print("== The zoo ==")
    _presets(args)
    print(f"\n== Forward pass of the tiny presets (batch {args.batch_size} x seq {args.sequence_length}) ==")
    rows = _tiny_forward_timings(args.batch_size, args.sequence_length, args.repeats)
    print(format_table(["preset", "parameters", "sequence_output", "first call s", "ms / batch"], rows))


def build_parser():
    parser = argparse.ArgumentParser(prog="kzoo", description="BERT, DistilBERT and ALBERT on Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True)
    presets = commands.add_parser("presets", help="list every preset with its parameter count")
    presets.set_defaults(func=_presets)
    demo = commands.add_parser("demo", help="print the zoo and time the tiny presets")
    demo.add_argument("--batch-size", type=int, default=8)
    demo.add_argument("--sequence-length", type=int, default=128)
    demo.add_argument("--repeats", type=int, default=5)
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
