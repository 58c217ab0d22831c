"""Every kzoo serving path against ONNX Runtime running the Hugging Face export of the same weights.

One run, one table, one JSON. The model is a TextClassifier preset (default: `make demo`'s distilled 3-layer
tweets student). The parent exports it (SavedModel, TFLite fp32/int8, ONNX fp32/int8), converts it to a Hugging
Face folder and exports that with torch.onnx (fp32, and int8 by ONNX Runtime's dynamic quantization, as
Hugging Face users do), then measures in child processes:

- one tweet: median latency over the first `--one` test tweets, one at a time, 1 thread everywhere, each tweet
  through every path of a process before the next;
- batch: tweets/s over `--batch` test tweets in batches of 32 (all cores), each batch padded to its longest
  member (TFLite files take their fixed length; kzoo's string paths sort the tweets by length first, as
  `TextClassifier.predict` does);
- agreement: argmax agreement with the float32 Keras model (TF backend) on the batch tweets, and (int8 paths)
  on the whole tweets test split of `kzoo finetune`'s split;
- accuracy: on that test split, for the float32 Keras model and each int8 path.

Strings in includes tokenization: in the graph for the SavedModel, on the host for the id files (kzoo's
tokenizer, or Hugging Face's fast tokenizer for the Hugging Face rows).

    .venv/bin/python bench/serve.py --model saved_models/demo/tweets_distill/best   # bench/results/serve.json
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workers import ROOT, run_worker, write_results  # noqa: E402

BATCH = 32
LABEL_FIELD, WHERE = "sentiment", "confidence>=0.8"


def test_split(model_dir):
    """(texts, labels) of the tweets test split, as `kzoo finetune` splits them."""
    from kzoo.data.labelled_files import tweets_csv
    from kzoo.recipes.finetune import FinetuneConfig, load_splits
    from kzoo.recipes.finetune_tasks import TASKS

    config = FinetuneConfig(task="classify", data=tweets_csv(), source=model_dir, out="", label_field=LABEL_FIELD,
                            where=WHERE, encoding_errors="replace")
    _, _, (texts, labels), _ = load_splits(config, TASKS["classify"], report=lambda *_: None)
    return list(texts), list(labels)


def build_files(model_dir, folder):
    """Export every file the children time; returns {name: path}."""
    import shutil

    import onnx
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from kzoo import export
    from kzoo.convert import to_huggingface
    from kzoo.models import TextClassifier

    model = TextClassifier.from_preset(model_dir)
    _, lengths = model.preprocessor.encode(test_split(model_dir)[0])
    files = {"saved_model": export.saved_model(model, os.path.join(folder, "saved_model"))}
    for quantize in (None, "int8"):
        name = quantize or "fp32"
        files[f"tflite_{name}"] = export.tflite(model, os.path.join(folder, f"{name}.tflite"), quantize=quantize,
                                                sequence_length=int(lengths.max()))
        files[f"onnx_{name}"] = export.onnx(model, os.path.join(folder, f"{name}.onnx"), quantize=quantize)
    hf = os.path.join(folder, "huggingface")
    to_huggingface(model, hf, assets=[os.path.join(model_dir, "vocab.txt")])
    shutil.copy(os.path.join(model_dir, "tokenizer_config.json"), hf)
    # Eager attention and a padded sample: traced with SDPA on an unpadded row, the padding mask is left out.
    reference = transformers.AutoModelForSequenceClassification.from_pretrained(hf, attn_implementation="eager")
    sample = transformers.AutoTokenizer.from_pretrained(hf)(["a tweet", "and a longer tweet than that"],
                                                            padding=True, return_tensors="pt")
    names = list(sample)
    files["hf_onnx_fp32"] = os.path.join(folder, "hf_fp32.onnx")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    program = torch.onnx.export(reference.eval(), (), kwargs=dict(sample), input_names=names, output_names=["logits"],
                                opset_version=18, dynamo=True, dynamic_shapes={k: {0: batch, 1: sequence} for k in names})
    program.optimize()
    program.save(files["hf_onnx_fp32"])
    exported = onnx.load(files["hf_onnx_fp32"])
    del exported.graph.value_info[:]  # some recorded shapes fail the quantizer's shape inference; it infers them
    onnx.save(exported, files["hf_onnx_fp32"])
    onnx.checker.check_model(files["hf_onnx_fp32"])
    files["hf_onnx_int8"] = os.path.join(folder, "hf_int8.onnx")
    quantize_dynamic(files["hf_onnx_fp32"], files["hf_onnx_int8"], weight_type=QuantType.QInt8)
    files["huggingface"] = hf
    return files


def softmax(logits):
    import numpy as np

    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def paths(model_dir, files, threads, backend):
    """({row name: (input kind, file, predict(batch) -> probabilities)} for this process's backend, encoders):
    kinds are "strings", "ids" (kzoo's id inputs) and "hf_ids" (Hugging Face's tokenizer's)."""
    import keras
    import numpy as np

    from kzoo.models import TextClassifier

    model = TextClassifier.from_preset(model_dir)
    preprocessor = model.preprocessor

    def kzoo_ids(texts, length=None):
        encoded, lengths = preprocessor.encode(texts)
        return {key: encoded[key][:, :length or int(lengths.max())] for key in model.input_keys}

    host = None

    def host_ids(texts):  # kzoo's host tokenizer (Rust WordPiece where it gives kzoo's ids)
        nonlocal host
        if host is None:
            from kzoo.export import HostTokenizer

            host = HostTokenizer(preprocessor)
        return {key: value for key, value in host(texts).items() if key in model.input_keys}

    helpers = {"label_names": model.label_names, "ids": kzoo_ids}
    rows = {f"Keras predict, {backend}": ("strings", None, lambda texts: softmax(keras.ops.convert_to_numpy(
        model.predict(texts, batch_size=BATCH, verbose=0))))}
    if backend != "tensorflow":
        return rows, helpers
    import onnxruntime
    import tensorflow as tf
    import transformers

    from kzoo import export
    from kzoo.export.onnx import DISABLED_OPTIMIZERS

    served = tf.saved_model.load(files["saved_model"])
    serve_text, serve_ids = served.signatures["serve_text"], served.signatures["serve_ids"]
    rows["SavedModel, serve_text"] = ("strings", files["saved_model"],
                                      lambda texts: serve_text(text=tf.constant(texts))["probabilities"].numpy())
    rows["SavedModel, serve_ids"] = ("ids", files["saved_model"], lambda ids: serve_ids(
        **{k: tf.constant(v) for k, v in ids.items()})["probabilities"].numpy())
    for name in ("fp32", "int8"):
        runner = export.TFLiteRunner(files[f"tflite_{name}"], num_threads=threads)
        rows[f"TFLite {name}"] = ("fixed_ids", files[f"tflite_{name}"], lambda ids, r=runner: r(ids)["probabilities"])
        onnx_runner = export.OnnxRunner(files[f"onnx_{name}"], num_threads=threads)
        rows[f"kzoo ONNX {name}"] = ("ids", files[f"onnx_{name}"],
                                     lambda ids, r=onnx_runner: r(ids)["probabilities"])
        rows[f"kzoo ONNX {name}, strings"] = ("strings", files[f"onnx_{name}"],
                                              lambda texts, r=onnx_runner: r(host_ids(texts))["probabilities"])
    tokenizer = transformers.AutoTokenizer.from_pretrained(files["huggingface"])

    def hf_ids(texts):
        return dict(tokenizer(texts, padding=True, truncation=True, max_length=preprocessor.sequence_length,
                              return_tensors="np"))

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads or 0, 1
    # Hugging Face's export as its users run it (every fusion on), and int8 also as OnnxRunner runs kzoo's files.
    for name, disabled in (("fp32", []), ("int8", []), ("int8 (as OnnxRunner)", DISABLED_OPTIMIZERS)):
        path = files[f"hf_onnx_{name.split()[0]}"]
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"],
                                               disabled_optimizers=disabled)

        def hf_run(encoded, s=session):
            return softmax(s.run(["logits"], {k: np.asarray(v, "int64") for k, v in encoded.items()})[0])

        rows[f"HF ONNX Runtime {name}"] = ("hf_ids", path, hf_run)
        rows[f"HF ONNX Runtime {name}, strings"] = ("strings", path, lambda texts, run=hf_run: run(hf_ids(texts)))
    helpers.update(hf_ids=hf_ids, tflite_length=export.TFLiteRunner(files["tflite_fp32"]).sequence_length)
    return rows, helpers


def worker(args):
    """Measure every path of this process's backend in mode `args.worker` ("one" or "batch"); print one JSON
    line: per row, the one-tweet median seconds, or batch tweets/s, argmax on the batch tweets and (float32
    Keras on TensorFlow, every int8 path) accuracy on the whole test split."""
    import numpy as np

    backend = os.environ["KERAS_BACKEND"]
    threads = 1 if args.worker == "one" else None
    if threads == 1 and backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    files = json.loads(args.files)
    texts, labels = test_split(args.model)
    rows, helpers = paths(args.model, files, threads, backend)
    def prepare(batch, kind):
        if kind == "strings":
            return batch
        if kind == "hf_ids":
            return helpers["hf_ids"](batch)
        return helpers["ids"](batch, helpers["tflite_length"] if kind == "fixed_ids" else None)

    if args.worker == "one":
        # Interleaved: each tweet goes through every path before the next tweet, so a slow spell of this shared
        # machine lands on all paths alike (timed one path after another, two runs differed by 2x in a ratio).
        inputs = {name: [prepare(texts[i:i + 1], kind) for i in range(args.one)] for name, (kind, _, _) in rows.items()}
        seconds = {name: [] for name in rows}
        for index in range(-5, args.one):  # five untimed warm-up tweets
            for name, (_, _, predict) in rows.items():
                start = time.perf_counter()
                predict(inputs[name][max(index, 0)])
                seconds[name].append(time.perf_counter() - start)
        print(json.dumps({name: {"one_seconds": float(np.median(values[5:]))} for name, values in seconds.items()}))
        return
    results = {}
    for name, (kind, _, predict) in rows.items():
        tweets = texts[:args.batch]
        # kzoo's string paths sort by length, as TextClassifier.predict buckets; the others keep the order.
        by_length = kind == "strings" and not name.startswith("HF")
        order = np.argsort([len(t) for t in tweets], kind="stable") if by_length else np.arange(len(tweets))
        batches = [prepare([tweets[i] for i in order[start:start + BATCH]], kind)
                   for start in range(0, len(tweets), BATCH)]
        predict(batches[0])  # compile, warm up
        start = time.perf_counter()
        outputs = [predict(batch) for batch in batches]
        seconds = time.perf_counter() - start
        predicted = np.empty(len(tweets), "int64")
        predicted[order] = np.concatenate(outputs).argmax(-1)
        entry = {"batch_tweets_per_second": len(tweets) / seconds, "argmax": predicted.tolist()}
        if "int8" in name and kind != "strings" or name == "Keras predict, tensorflow":
            chunks = [texts[i:i + 256] for i in range(0, len(texts), 256)]
            answers = np.concatenate([predict(prepare(chunk, kind)).argmax(-1) for chunk in chunks])
            entry["test_accuracy"] = float(np.mean(np.asarray(helpers["label_names"])[answers] == np.asarray(labels)))
            entry["test_argmax"] = answers.tolist()
        results[name] = entry
    print(json.dumps(results))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "saved_models", "demo", "tweets_distill", "best"),
                        help="a TextClassifier preset with its tokenizer (default: make demo's distilled student)")
    parser.add_argument("--one", type=int, default=200, help="test tweets timed one at a time")
    parser.add_argument("--batch", type=int, default=512, help="test tweets timed in batches of 32")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "serve.json"))
    parser.add_argument("--worker", choices=["one", "batch"], help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    os.environ["KERAS_BACKEND"] = "tensorflow"  # this process exports SavedModel and TFLite (ONNX: a torch one)
    if not os.path.isdir(args.model):
        sys.exit(f"--model {args.model} is not a folder: run `make demo` first, or pass a TextClassifier preset.")
    from kzoo.export.timing import path_bytes
    from kzoo.table import format_table

    with tempfile.TemporaryDirectory(prefix="kzoo-bench-serve-") as folder:
        files = build_files(args.model, folder)
        sizes = {key: path_bytes(path) for key, path in files.items()}
        measured = {}
        common = ["--model", args.model, "--files", json.dumps(files), "--one", str(args.one), "--batch",
                  str(args.batch)]
        for mode in ("one", "batch"):
            for backend in ("tensorflow", "jax"):
                single = mode == "one" and backend == "jax"
                previous = os.environ.get("XLA_FLAGS")
                if single:  # XLA's CPU client: one thread
                    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
                try:
                    part = run_worker(__file__, backend, [mode, *common], f"{mode} on {backend}")
                finally:
                    if single:
                        os.environ.pop("XLA_FLAGS") if previous is None else os.environ.update(XLA_FLAGS=previous)
                for name, entry in part.items():
                    measured.setdefault(name, {}).update(entry)
    report(measured, sizes, args, format_table)


def report(measured, sizes, args, format_table):
    """Print the table and the goals; write the JSON."""
    import numpy as np

    reference = np.asarray(measured["Keras predict, tensorflow"]["argmax"])
    test_reference = np.asarray(measured["Keras predict, tensorflow"]["test_argmax"])
    file_of = {"SavedModel": "saved_model", "TFLite fp32": "tflite_fp32", "TFLite int8": "tflite_int8",
               "kzoo ONNX fp32": "onnx_fp32", "kzoo ONNX int8": "onnx_int8", "HF ONNX Runtime fp32": "hf_onnx_fp32",
               "HF ONNX Runtime int8": "hf_onnx_int8",
               "HF ONNX Runtime int8 (as OnnxRunner)": "hf_onnx_int8"}
    table, results = [], {"model": args.model, "one_tweets": args.one, "batch_tweets": args.batch,
                          "batch_size": BATCH, "cpu_count": os.cpu_count(), "rows": {}}
    for name, entry in measured.items():
        stem = name.split(",")[0]
        entry["bytes"] = sizes.get(file_of.get(stem))
        entry["agreement"] = float(np.mean(np.asarray(entry.pop("argmax")) == reference))
        if "test_argmax" in entry:
            entry["test_agreement"] = float(np.mean(np.asarray(entry.pop("test_argmax")) == test_reference))
        results["rows"][name] = entry
        tested = "test_accuracy" in entry
        table.append([name, "-" if entry["bytes"] is None else f"{entry['bytes'] / 2**20:.1f}",
                      f"{entry['one_seconds'] * 1e3:.2f}", f"{entry['batch_tweets_per_second']:.1f}",
                      f"{entry['agreement']:.4f}", f"{entry['test_agreement']:.4f}" if tested else "",
                      f"{entry['test_accuracy']:.4f}" if tested else ""])
    print(f"\n{args.model}: one tweet = median ms over {args.one} test tweets, 1 thread; batch = tweets/s over "
          f"{args.batch} test tweets in batches of {BATCH}, {os.cpu_count()} cores; agreement = argmax against "
          "Keras predict on TensorFlow, on those tweets and on the whole test split; accuracy on the test split")
    print(format_table(["path", "MiB", "one tweet ms", "batch tweets/s", "agreement", "test agreement",
                        "test accuracy"], table))
    rows = results["rows"]
    kzoo_strings = {n: e for n, e in rows.items() if not n.startswith("HF") and n.endswith(("strings", "serve_text"))
                    or n.startswith("Keras")}
    hf_strings = {n: e for n, e in rows.items() if n.startswith("HF") and n.endswith("strings")}
    fastest = {key: (min if key == "one_seconds" else max)(
        ((e[key], n) for n, e in kzoo_strings.items())) for key in ("one_seconds", "batch_tweets_per_second")}
    rivals = {key: (min if key == "one_seconds" else max)(
        ((e[key], n) for n, e in hf_strings.items())) for key in ("one_seconds", "batch_tweets_per_second")}
    goals = {
        "one_tweet_strings_vs_onnxruntime": rivals["one_seconds"][0] / fastest["one_seconds"][0],
        "batch_strings_vs_onnxruntime": fastest["batch_tweets_per_second"][0] / rivals["batch_tweets_per_second"][0],
        "saved_model_text_over_ids": rows["SavedModel, serve_text"]["one_seconds"] / rows["SavedModel, serve_ids"][
            "one_seconds"],
    }
    for stem in ("TFLite", "kzoo ONNX"):
        goals[f"{stem} int8 over fp32, one tweet"] = rows[f"{stem} fp32"]["one_seconds"] / rows[f"{stem} int8"][
            "one_seconds"]
        goals[f"{stem} int8 over fp32, batch"] = rows[f"{stem} int8"]["batch_tweets_per_second"] / rows[
            f"{stem} fp32"]["batch_tweets_per_second"]
        goals[f"{stem} int8 accuracy lost (points)"] = 100 * (rows["Keras predict, tensorflow"]["test_accuracy"]
                                                              - rows[f"{stem} int8"]["test_accuracy"])
    results["fastest"] = {"kzoo": fastest, "onnxruntime_hf": rivals}
    results["goals"] = goals
    print(f"\nfastest kzoo, strings in: one tweet {fastest['one_seconds'][1]}, batch "
          f"{fastest['batch_tweets_per_second'][1]}; Hugging Face + ONNX Runtime: {rivals['one_seconds'][1]}, "
          f"{rivals['batch_tweets_per_second'][1]}")
    print(format_table(["ratio", "value"], [[key, f"{value:.2f}"] for key, value in goals.items()]))
    write_results(results, args.out)


if __name__ == "__main__":
    main()
