"""Exported files against the Keras model on the real tweets test split: size, latency, agreement.

Exports a fine-tuned (or distilled) classifier preset as a SavedModel (raw strings in), a TFLite fp32 file and
a TFLite int8 (dynamic-range) file, then scores all three on the test tweets of `kzoo finetune`'s split (same
seed and shares): argmax agreement with the Keras model, the largest probability difference, file size, and
latency for one tweet (median; the SavedModel's includes tokenization, the TFLite files take ids). TFLite
files are fixed-length: the longest test tweet, in tokens, sets their length.

    .venv/bin/python bench/export.py --model runs/tweets_distill/best          # writes saved_models/bench/export.json
"""

import argparse
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "tensorflow"  # export runs on TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from workers import ROOT, write_results  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a TextClassifier preset folder with its tokenizer")
    parser.add_argument("--latency-examples", type=int, default=200, help="tweets timed one at a time")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT interpreter threads")
    parser.add_argument("--out", default=os.path.join(ROOT, "saved_models", "bench", "export.json"))
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from kzoo import export
    from kzoo.data.labelled_files import tweets_csv
    from kzoo.export.timing import path_bytes
    from kzoo.models import TextClassifier
    from kzoo.recipes.finetune import FinetuneConfig, load_splits
    from kzoo.recipes.finetune_tasks import TASKS
    from kzoo.table import format_table
    from kzoo.timing import median_seconds

    config = FinetuneConfig(task="classify", data=tweets_csv(), source=args.model, out="", label_field="sentiment",
                            where="confidence>=0.8", encoding_errors="replace")
    _, _, (texts, labels), _ = load_splits(config, TASKS["classify"])
    model = TextClassifier.from_preset(args.model)
    preprocessor = model.preprocessor
    reference = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(texts, batch_size=64)))
    inputs, lengths = preprocessor.encode(texts)
    length = int(lengths.max())
    inputs = {key: inputs[key][:, :length] for key in model.input_keys}
    timed = list(range(min(args.latency_examples, len(texts))))

    rows, results = [], {"model": args.model, "test_examples": len(texts), "tflite_sequence_length": length,
                         "machine": os.uname().machine, "cpu_count": os.cpu_count(), "formats": {}}
    keras_seconds = median_seconds(lambda i: model.predict_on_batch(
        {k: v[i:i + 1, :lengths[i]] for k, v in inputs.items()}), timed)
    rows.append(["Keras (TF backend, ids in)", "-", "1.0000", "0", f"{keras_seconds * 1e3:.2f}"])
    with tempfile.TemporaryDirectory(prefix="kzoo-bench-export-") as scratch:
        saved = export.saved_model(model, os.path.join(scratch, "saved_model"))
        serve = tf.saved_model.load(saved).signatures["serve_text"]
        probabilities = np.concatenate([serve(text=tf.constant(texts[i:i + 64]))["probabilities"].numpy()
                                        for i in range(0, len(texts), 64)])
        seconds = median_seconds(lambda i: serve(text=tf.constant(texts[i:i + 1])), timed)
        measured = {"SavedModel fp32 (strings in)": (saved, probabilities, seconds)}
        for name, quantize in (("TFLite fp32 (ids in)", None), ("TFLite int8 (ids in)", "int8")):
            path = export.tflite(model, os.path.join(scratch, f"{quantize or 'fp32'}.tflite"), quantize=quantize,
                                 sequence_length=length)
            runner = export.TFLiteRunner(path, num_threads=args.threads)
            probabilities = np.concatenate([runner({k: v[i:i + 64] for k, v in inputs.items()})["probabilities"]
                                            for i in range(0, len(texts), 64)])
            seconds = median_seconds(lambda i: runner({k: v[i:i + 1] for k, v in inputs.items()}), timed)
            measured[name] = (path, probabilities, seconds)
        for name, (path, probabilities, seconds) in measured.items():
            agreement = float((probabilities.argmax(-1) == reference.argmax(-1)).mean())
            difference = float(np.abs(probabilities - reference).max())
            size = path_bytes(path)
            rows.append([name, f"{size / 2**20:.1f}", f"{agreement:.4f}", f"{difference:.2e}", f"{seconds * 1e3:.2f}"])
            results["formats"][name] = {"bytes": size, "argmax_agreement": agreement,
                                        "max_probability_difference": difference, "one_example_seconds": seconds}
    results["keras_one_example_seconds"] = keras_seconds
    print(f"\n{args.model} on {len(texts):,} test tweets (TFLite length {length}, {args.threads} thread(s); "
          f"latency: median over {len(timed)} single tweets)")
    print(format_table(["format", "MiB", "argmax agreement", "max |Δp|", "ms / tweet"], rows))
    write_results(results, args.out)


if __name__ == "__main__":
    main()
