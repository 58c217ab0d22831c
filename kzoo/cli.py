"""`kzoo …`: the command-line front door."""

import argparse
import dataclasses
import os
import shutil
import sys

from kzoo.architectures import ARCHITECTURES
from kzoo.native_logs import import_tensorflow_quietly

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _presets(args):
    from kzoo.demo import presets_table

    print(presets_table())


def _demo(args):
    from kzoo.demo import run_demo

    run_demo(args)


def _convert(args):
    from kzoo.convert import from_huggingface, to_huggingface
    from kzoo.models import preset_io

    tokenizer_files = ("vocab.txt", "tokenizer.json", "spiece.model", "tokenizer_config.json",
                       "special_tokens_map.json")
    assets = [os.path.join(args.src, name) for name in tokenizer_files if os.path.isfile(os.path.join(args.src, name))]
    if preset_io.is_huggingface_directory(args.src):
        conversion = from_huggingface(args.src, allow_pickle=args.allow_pickle)
        conversion.model.save_to_preset(args.dst, overwrite=args.overwrite, assets=assets)
        print(f"Hugging Face {args.src} -> kzoo preset {args.dst}")
        print(conversion.summary())
        if assets:
            print(f"copied: {', '.join(os.path.basename(a) for a in assets)}")
        return
    record = preset_io.read_preset_config(args.src)
    from kzoo.models import load_preset_folder

    model = load_preset_folder(args.src)
    to_huggingface(model, args.dst, overwrite=args.overwrite, assets=assets)
    print(f"kzoo {record['class_name']} {args.src} -> Hugging Face directory {args.dst} "
          f"({len(model.weights)} variables written)")


def _add_engine_arguments(parser):
    """The flags that choose devices, precision and accumulation (`kzoo.engines.EngineConfig`; the commands run on
    one host, `EngineConfig.one_host`)."""
    from kzoo.engines import PRECISIONS

    group = parser.add_argument_group("devices and precision (kzoo.engines)")
    group.add_argument("--data-parallel", action="store_true",
                       help="split each batch over all local devices: keras.distribution.DataParallel (jax) / "
                       "tf.distribute.MirroredStrategy (tensorflow)")
    group.add_argument("--devices", type=int, help="use the first N local devices (implies --data-parallel)")
    group.add_argument("--model-parallel", type=int, default=1, metavar="M",
                       help="jax: shard embeddings, attention and feed-forward kernels over M devices, a "
                       "devices/M x M mesh")
    group.add_argument("--precision", choices=PRECISIONS, default="float32",
                       help="mixed_* keep float32 variables; mixed_float16 adds loss scaling")
    group.add_argument("--accumulate", type=int, default=1, metavar="K",
                       help="jax: K micro-batches of batch-size/K per optimizer update")
    group.add_argument("--cpu-devices", type=int, default=0, help=argparse.SUPPRESS)  # tests: split the CPU


def _engine_config(args):
    from kzoo.engines import EngineConfig, virtual_cpu_devices

    if args.cpu_devices:
        virtual_cpu_devices(args.cpu_devices)
    return EngineConfig(data_parallel=args.data_parallel, devices=args.devices, model_parallel=args.model_parallel,
                        precision=args.precision, accumulate=args.accumulate)


def _config(cls, args, **extras):
    """`cls` (a config dataclass) from the parsed `args`: every field named like a flag's destination, plus
    `extras` (what has another name on the command line, or is made from several flags); the engine and the
    verbosity are every command's."""
    own = {field.name: getattr(args, field.name) for field in dataclasses.fields(cls) if hasattr(args, field.name)}
    return cls(**{**own, "engine": _engine_config(args), "verbose": _verbosity(args.quiet), **extras})


def _verbosity(quiet):
    """Keras' `verbose`: a progress bar on a terminal; one line per epoch with --quiet or when the output goes to a
    file or a pipe (a progress bar there is a line of escape codes every 50 ms)."""
    return 2 if quiet or not sys.stdout.isatty() else 1


def _pretrain(args):
    from kzoo.recipes.pretrain import PretrainConfig, pretrain

    summary = pretrain(_config(PretrainConfig, args, vocabulary_size=args.vocab_size,
                               backbone_overrides={} if args.dropout is None else {"dropout": args.dropout}))
    if "held_out" in summary:
        print("\nheld-out: " + ", ".join(f"{k} {v:.4f}" for k, v in summary["held_out"].items()))
        print(f"unigram baseline MLM accuracy {summary['unigram_baseline_mlm_accuracy']:.4f}" + "".join(
            f", majority baseline {key.split('_')[2].upper()} accuracy {value:.4f}"
            for key, value in summary.items() if key.startswith("majority_baseline_")))
    print(f"wrote {args.out}/model, metrics.csv, metrics.png, summary.json")


def _finetune(args):
    from kzoo.recipes.finetune import FinetuneConfig, finetune

    finetune(_config(FinetuneConfig, args, source=getattr(args, "from")))


def _distill(args):
    from kzoo.recipes.distill import DistillConfig, distill

    distill(_config(DistillConfig, args, source=args.teacher))


def _export(args):
    from kzoo.export.backend_process import FORMAT_BACKENDS, on_backend, run_cli

    if args.quantize and args.format == "saved_model":
        raise ValueError("--quantize applies to --format tflite or onnx; a SavedModel keeps the float weights.")
    backend = FORMAT_BACKENDS[args.format]
    if not on_backend(backend):  # Keras fixed its backend at import: export from a process on the exporter's
        result = run_cli(["export", *args.argv], backend, check=False)
        print(result.stdout, end="")
        if result.returncode:
            print((result.stderr.strip().splitlines() or [""])[-1], file=sys.stderr)
        return result.returncode
    from kzoo import export
    from kzoo.models import load_preset_folder
    from kzoo.models.task import directory_preprocessor

    model = load_preset_folder(args.model)
    preprocessor = directory_preprocessor(args.model, args.sequence_length)
    if args.format == "saved_model":
        with_preprocessing = not args.no_preprocessing
        if with_preprocessing and preprocessor is None:
            raise ValueError(f"{args.model} holds no tokenizer (vocab.txt or spiece.model) to put in the "
                             "SavedModel; pass --no-preprocessing for a token-id model.")
        export.saved_model(model, args.out, with_preprocessing=with_preprocessing, preprocessor=preprocessor,
                           top_k=args.top_k, overwrite=args.overwrite)
    elif args.format == "onnx":
        export.onnx(model, args.out, quantize=args.quantize, top_k=args.top_k, overwrite=args.overwrite)
    else:
        if preprocessor is not None:
            model.preprocessor = preprocessor
        export.tflite(model, args.out, quantize=args.quantize, sequence_length=args.sequence_length,
                      top_k=args.top_k, overwrite=args.overwrite)
    from kzoo.export.timing import path_bytes

    print(f"{type(model).__name__} {args.model} -> {args.format} {args.out} ({path_bytes(args.out) / 2**20:.1f} MiB)")


def _add_data_arguments(parser):
    """The labelled-data options `finetune` and `distill` share (the same split under the same seed)."""
    parser.add_argument("--data", required=True, help=".csv with a header, or .jsonl (one object a line)")
    parser.add_argument("--text-field", help="text (classify), word list (tokens: default 'tokens') or question "
                        "(qa: default 'question'); default 'text'")
    parser.add_argument("--pair-field", help="second text segment: a sentence pair (classify) or the context "
                        "(qa: default 'context')")
    parser.add_argument("--label-field", help="class (default 'label'), tag list (tokens: 'tags') or answer "
                        "(qa: 'answer': text, {text, answer_start}, SQuAD's answers dict, or empty)")
    parser.add_argument("--where", help="keep rows satisfying FIELD OP NUMBER, e.g. 'confidence>=0.8'")
    parser.add_argument("--encoding-errors", choices=["strict", "replace"], default="strict",
                        help="bytes that are not UTF-8: fail (strict) or read as U+FFFD (replace)")
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--validation-share", type=float, default=0.1, help="of the training rows")
    parser.add_argument("--seed", type=int, default=0, help="the split, and the training unless --training-seed")
    parser.add_argument("--training-seed", type=int, help="what is random in training: a new head's "
                        "weights, batch order, dropout (default --seed): replicate a run on the same split")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--max-train-examples", type=int, help="use only the first N training rows (quick runs)")
    parser.add_argument("--max-test-examples", type=int, help="score only the first N test rows (quick runs)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch (also when the output is not a "
                        "terminal)")
    _add_engine_arguments(parser)


def _architectures_named():
    """"BERT (MLM+NSP), DistilBERT (MLM) or ALBERT (MLM+SOP)"."""
    named = [f"{arch.title} ({arch.objectives})" for arch in ARCHITECTURES.values()]
    return ", ".join(named[:-1]) + " or " + named[-1]


def _default_per_architecture(setting):
    """"default: adamw; lamb for albert": the commonest value of an architecture record's `setting`, then the
    others."""
    values = {name: getattr(arch, setting) for name, arch in ARCHITECTURES.items()}
    common = max(values.values(), key=list(values.values()).count)
    return "; ".join([f"default: {common}"] + [f"{value} for {name}" for name, value in values.items()
                                                 if value != common])


def build_parser():
    parser = argparse.ArgumentParser(prog="kzoo", description="BERT, DistilBERT and ALBERT on Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True)
    presets = commands.add_parser("presets", help="list every preset with its parameter count")
    presets.set_defaults(func=_presets)
    demo = commands.add_parser("demo", help="the zoo, real weights, and each job once on real data: pretrain, "
                               "fine-tune a teacher, distil a student, export and serve it")
    demo.add_argument("--batch-size", type=int, default=8)
    demo.add_argument("--sequence-length", type=int, default=128)
    demo.add_argument("--repeats", type=int, default=5)
    demo.add_argument("--pretrain-steps", type=int, default=400)
    demo.add_argument("--finetune-examples", type=int, default=4000,
                      help="training tweets for the teacher's fine-tune and the distillation")
    demo.add_argument("--finetune-test-examples", type=int, default=1000, help="test tweets scored")
    demo.add_argument("--out", default="saved_models/demo", help="where the demo writes its runs")
    demo.set_defaults(func=_demo)
    convert = commands.add_parser(
        "convert", help="convert a Hugging Face directory to a kzoo preset directory, or back",
        description="SRC is a Hugging Face directory (config.json + model.safetensors) or a kzoo preset "
                    "directory; DST gets the other format. Prints what was mapped and what was left.")
    convert.add_argument("src")
    convert.add_argument("dst")
    convert.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    convert.add_argument("--allow-pickle", action="store_true",
                         help="accept pytorch_model.bin (read with torch.load(weights_only=True))")
    convert.set_defaults(func=_convert)
    pretrain = commands.add_parser(
        "pretrain", help=f"pretrain {_architectures_named()} on a folder of .txt files",
        description="Trains the tokenizer when --vocab is not given, then the model; checkpoints every "
                    "--log-every steps and resumes when run again with the same --out. Documents are separated "
                    "by blank lines.")
    pretrain.add_argument("--arch", required=True, choices=list(ARCHITECTURES))
    pretrain.add_argument("--corpus", required=True, nargs="+", help="folder(s) or .txt file(s)")
    pretrain.add_argument("--out", required=True, help="output folder (resumes if it holds a backup)")
    pretrain.add_argument("--vocab", help="existing vocab.txt (WordPiece) or spiece.model (SentencePiece)")
    pretrain.add_argument("--vocab-size", type=int, default=8000, help="size of a vocabulary trained here")
    pretrain.add_argument("--preset", help="architecture preset (default: the arch's tiny preset)")
    pretrain.add_argument("--steps", type=int, default=1000)
    pretrain.add_argument("--batch-size", type=int, default=32, help="global batch size")
    pretrain.add_argument("--sequence-length", type=int, default=128)
    pretrain.add_argument("--learning-rate", type=float, help="peak learning rate (default 5e-4 AdamW, 5e-3 LAMB)")
    pretrain.add_argument("--dropout", type=float, help="override the preset's dropout (0 suits short runs)")
    pretrain.add_argument("--warmup", type=float, default=0.1, help="share of steps for linear warmup")
    pretrain.add_argument("--optimizer", choices=["adamw", "lamb"], help=_default_per_architecture("optimizer"))
    pretrain.add_argument("--masking", choices=["token", "whole_word", "ngram"],
                          help=_default_per_architecture("masking"))
    pretrain.add_argument("--log-every", type=int, default=50, help="steps between metrics rows and checkpoints")
    pretrain.add_argument("--holdout-every", type=int, default=20, help="every k-th document is held out (0: none)")
    pretrain.add_argument("--eval-batches", type=int, default=20)
    _add_engine_arguments(pretrain)
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--overwrite", action="store_true", help="start over even if --out holds a model")
    pretrain.add_argument("--quiet", action="store_true", help="one line per --log-every steps (also when the output "
                          "is not a terminal)")
    pretrain.set_defaults(func=_pretrain)
    finetune = commands.add_parser(
        "finetune", help="fine-tune a task model on a labelled .csv or .jsonl file",
        description="Splits the file into train / validation (checkpoint selection) / test under --seed, trains, "
                    "keeps the best checkpoint (validation accuracy; validation loss for qa and embed), and reports "
                    "accuracy, macro-F1 and the majority baseline on the test split (also in OUT/metrics.json). For "
                    "tokens they are per word; for qa accuracy is exact match and macro_f1 SQuAD's F1; for embed, "
                    "retrieval of each test anchor's positive: accuracy (recall@1), recall_at_10, mrr_at_10 and "
                    "chance_baseline.")
    finetune.add_argument("--task", required=True, help="classify, tokens (a tag per word), qa (answer spans) or "
                          "embed (sentence embeddings from pairs of texts: --text-field anchor, --pair-field positive)")
    finetune.add_argument("--from", required=True, help="preset name, kzoo preset folder or Hugging Face folder")
    finetune.add_argument("--out", required=True)
    _add_data_arguments(finetune)
    finetune.add_argument("--learning-rate", type=float, default=5e-5)
    finetune.add_argument("--lora-rank", type=int, help="LoRA on the attention and feed-forward kernels")
    finetune.add_argument("--quantize", choices=["int8"], help="also score the int8-quantized model")
    finetune.add_argument("--doc-stride", type=int, metavar="N", help="qa: split long contexts into windows "
                          "sharing N tokens, as Hugging Face's run_qa.py (default: truncate them)")
    finetune.add_argument("--max-answer-length", type=int, metavar="M", help="qa: the longest answer in word "
                          "pieces (default 30)")
    finetune.set_defaults(func=_finetune)

    distill = commands.add_parser(
        "distill", help="distil a fine-tuned classifier into a shallower student",
        description="Reads the teacher's data with the same split as `kzoo finetune` (same --seed and shares), "
                    "makes a student of --student-layers layers initialised from evenly spread teacher layers (or "
                    "--student-init's), "
                    "trains it on alpha x labels + (1 - alpha) x T^2 KL(teacher || student) (+ cosine-weight x "
                    "a hidden-state loss), keeps the best "
                    "checkpoint, and reports teacher and student accuracy, their ratio, encoder parameters and the "
                    "speed-up on one batch (also in OUT/metrics.json).")
    distill.add_argument("--task", default="classify", help="classify or tokens")
    distill.add_argument("--teacher", required=True, help="the fine-tuned teacher: kzoo finetune's OUT/best folder")
    distill.add_argument("--out", required=True)
    _add_data_arguments(distill)
    distill.add_argument("--student-layers", type=int, default=3)
    distill.add_argument("--student-arch", choices=list(ARCHITECTURES),
                         help="default: the teacher's; distil_bert from a BERT teacher")
    distill.add_argument("--student-init", help="take the student's embeddings and evenly spread layers from this "
                         "checkpoint (a kzoo preset or Hugging Face folder with the teacher's vocabulary, e.g. the "
                         "one the teacher was fine-tuned from) instead of the teacher; its head is drawn fresh")
    distill.add_argument("--temperature", type=float, default=2.0)
    distill.add_argument("--alpha", type=float, default=0.5, help="weight of the hard-label loss")
    distill.add_argument("--kd-weight", type=float, help="weight of the soft-label loss (default 1 - alpha)")
    distill.add_argument("--cosine-weight", type=float, default=0.0,
                         help="weight of the hidden-state loss: 1 - cos at every non-padding token (default 0: none)")
    distill.add_argument("--cosine-layers", choices=["last", "spread"], default="last",
                         help="the hidden states it compares: the last layers', or every student layer's with the "
                         "teacher layer at the same spread position (6 → 3: [0, 2, 5], the layers a teacher-"
                         "initialised student starts from), averaged")
    distill.add_argument("--learning-rate", type=float, default=1e-4)
    distill.add_argument("--hard-label-baseline", action="store_true",
                         help="also train the same student on the labels alone, for comparison")
    distill.add_argument("--transfer-where", help="also distil on the rows of the data satisfying FIELD OP NUMBER "
                         "(e.g. 'confidence<0.8') as unlabelled examples: the teacher's soft labels only")
    distill.add_argument("--transfer-data", help="a .csv/.jsonl of unlabelled texts (the --text-field) to distil on "
                         "as well; with --transfer-where, its rows satisfying that")
    distill.set_defaults(func=_distill)

    export = commands.add_parser(
        "export", help="export a kzoo preset folder as a SavedModel (raw strings in), a TFLite or an ONNX file (ids "
                       "in)",
        description="Each format runs on its exporter's backend (SavedModel and TFLite: TensorFlow; ONNX: torch); "
                    "under another KERAS_BACKEND the command re-runs itself there, so weights trained on any "
                    "backend export the same way. A SavedModel has the tokenizer inside (signatures serve_text, "
                    "serve_text_pair, serve_ids); a TFLite file takes token ids padded to --sequence-length; an "
                    "ONNX file takes token ids of any length (pip install 'kzoo[onnx]'). Writes are atomic; an "
                    "existing OUT needs --overwrite.")
    export.add_argument("model", help="a kzoo preset folder (save_to_preset, kzoo finetune's OUT/best, ...)")
    export.add_argument("out", help="SavedModel folder, or a .tflite / .onnx file with --format tflite / onnx")
    export.add_argument("--format", choices=["saved_model", "tflite", "onnx"], default="saved_model")
    export.add_argument("--quantize", choices=["int8"], help="TFLite or ONNX: int8 weights (dynamic quantization)")
    export.add_argument("--sequence-length", type=int, help="most tokens per example (default: the preset's)")
    export.add_argument("--top-k", type=int, default=5, help="masked-LM exports: candidates per position")
    export.add_argument("--no-preprocessing", action="store_true", help="SavedModel without the string signatures")
    export.add_argument("--overwrite", action="store_true")
    export.set_defaults(func=_export)
    return parser


def _holds_results(folder):
    """True when `folder` holds anything a run made worth keeping: weights, a backup, scores."""
    for _, folders, files in os.walk(folder):
        if "backup" in folders or any(name.endswith(".h5") or name in ("summary.json", "metrics.json")
                                      for name in files):
            return True
    return False


# Bad input: a one-line message and exit code 2. Anything else is a bug and keeps its traceback.
BAD_INPUT = (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv[1:]  # the command's own arguments (kzoo export re-runs itself on another backend with them)
    import_tensorflow_quietly()  # every command loads Keras, and with it TensorFlow: without its native INFO lines
    out = getattr(args, "out", None)
    new_out = bool(out) and not os.path.exists(out)
    try:
        code = args.func(args)
    except BAD_INPUT as error:
        if new_out and os.path.isdir(out) and not _holds_results(out):
            shutil.rmtree(out, ignore_errors=True)  # refused before anything was trained: leave no folder behind
        message = " ".join(line.strip() for line in str(error).splitlines())
        print(f"kzoo {args.command}: error: {message}", file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
