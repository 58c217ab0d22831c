"""Cost of one Distiller step against its parts: (student train step + teacher forward) on the same batches.

Per backend, one process builds a teacher of MiniLM's shape (6 layers, 384 hidden, 12 heads, vocabulary 30522;
random weights) and a 3-layer student, then times, through Keras' own compiled loops and after a warm-up:
  distill   Distiller.fit          (teacher forward + student forward/backward + the losses, one step)
  student   student.fit            (plain training on the labels)
  teacher   teacher.predict        (inference forward)
on the same --steps batches, in alternating rounds. Prints the overhead distill / (student + teacher) per task
(goal: <= 1.15) and writes JSON. Tasks: classify (KD + hard labels), classify_layers (the same + the cosine
loss between each student layer and the teacher layer it starts from, `cosine_layers`), mlm (BERT -> DistilBERT, KD at the
masked positions + MLM + cosine on the hidden states: DistilBERT's triple loss), mlm_kd (the same without
the cosine loss) and mlm_all (the triple loss with KD at every token: `DISTILBERT_LOSS_WEIGHTS` as they are, the
Distiller's default). Each step is timed to its end and the median step taken (whole `fit` calls were seen to
stall on a shared VM). student.fit and teacher.predict of a pretrainer compute the last layer at the masked
positions only; the cosine loss needs every position of both models, so `mlm` does more work than its parts
by design, and `mlm_kd`, where the Distiller takes the same shortcut, isolates the Distiller's own overhead.
On JAX the first round also reads what XLA counts in each compiled step (the same steps, one batch): floating-point
operations, transcendental operations (exp, log) and bytes of memory accessed, the work the steps do, free of
timing noise. The time ratio has tracked the FLOP ratio in every task measured; the other two show what a
full-vocabulary softmax at every token adds besides (mlm_all).
For the MLM tasks a second anchor is measured too (columns "full anchor"): for mlm and mlm_kd, the same student
step and teacher forward computing their last layer at every position before gathering the masked ones (the
models' functional graphs; how keras-hub's MLM models run), the work the cosine loss needs; for mlm_all, the same
student and teacher computing MLM logits at every position with the loss weighted at the masked ones only, as
Hugging Face's `BertForMaskedLM` trains (labels -100 elsewhere) and as its DistilBERT script runs the teacher.

    .venv/bin/python bench/distill_step.py                  # TF and JAX, batch 32 x 64, 10 steps, 3 rounds
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

GOAL = 1.15
TEACHER = dict(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384, intermediate_dim=1536,
               max_sequence_length=512)


def build(task, student_layers):
    from kzoo.distill import DISTILBERT_LOSS_WEIGHTS, Distiller, init_student, student_backbone
    from kzoo.models import BertBackbone, BertPretrainer, DistilBertMaskedLM, TextClassifier

    if task.startswith("classify"):
        teacher = TextClassifier(BertBackbone(**TEACHER), num_classes=3)
        student = TextClassifier(student_backbone(teacher, student_layers), num_classes=3)
        weights = {"temperature": 2.0, "alpha": 0.5}
    else:
        teacher = BertPretrainer(BertBackbone(**TEACHER))
        student = DistilBertMaskedLM(student_backbone(teacher, student_layers, "distil_bert"))
        # KD at the masked slots: the reference steps (student fit, teacher predict) compute logits only there;
        # the default (mlm_all), KD at every token, adds a full-vocabulary softmax per token to both models.
        weights = dict(DISTILBERT_LOSS_WEIGHTS, **({} if task == "mlm_all" else {"mlm_kd_positions": "masked"}),
                       **({"cosine_weight": 0.0} if task == "mlm_kd" else {}))
    layers = init_student(student, teacher)
    if task == "classify_layers":  # a classifier computes every position anyway: only the cosine is extra
        weights.update(cosine_weight=1.0, cosine_layers=layers)
    return teacher, student, Distiller(student, teacher, **weights)


def full_last_layer(pretrainer):
    """A pretrainer of the same class on the same backbone whose `call` is its functional graph: the last layer
    at every position, the masked ones gathered after (its MLM head's weights are new; the cost is the same)."""
    from kzoo.models.pretrainers import Pretrainer

    class FullLastLayer(type(pretrainer)):
        def call(self, inputs, training=None, mask=None):
            return super(Pretrainer, self).call(inputs, training=training, mask=mask)

    return FullLastLayer(pretrainer.backbone)


def second_anchor(task, student, teacher, x, y, weights):
    """(student, teacher, inputs, labels, weights) of the MLM tasks' second anchor ("full anchor"); None for the
    classifiers, which compute every position anyway."""
    import numpy as np

    if task.startswith("classify"):
        return None
    if task != "mlm_all":
        return full_last_layer(student), full_last_layer(teacher), x, y, weights
    # Every position a prediction slot, weighted 1 at the real masked ones: logits everywhere, loss at the masks.
    rows, length = x["token_ids"].shape
    every = dict(x, mask_positions=np.tile(np.arange(length, dtype="int32"), (rows, 1)))
    at_masks = np.zeros((rows, length), "float32")
    np.put_along_axis(at_masks, x["mask_positions"], 1.0, axis=1)
    return student, teacher, every, x["token_ids"], at_masks


def batches(task, args):
    import numpy as np

    rng = np.random.default_rng(0)
    rows, seq = args.batch_size * args.steps, args.sequence_length
    x = {"token_ids": rng.integers(5, TEACHER["vocabulary_size"], (rows, seq)).astype("int32"),
         "segment_ids": np.zeros((rows, seq), "int32"), "padding_mask": np.ones((rows, seq), "int32")}
    if task.startswith("classify"):
        return x, rng.integers(0, 3, rows).astype("int32"), None
    predictions = max(1, int(0.15 * seq))
    x["mask_positions"] = np.sort(np.stack([rng.choice(np.arange(1, seq), predictions, replace=False)
                                            for _ in range(rows)]), axis=1).astype("int32")
    y = np.take_along_axis(x["token_ids"], x["mask_positions"], axis=1)
    return x, y, np.ones(y.shape, "float32")


def _values(variables):
    return [v.value for v in variables]


XLA_MEASURES = ("flops", "transcendentals", "bytes accessed")


def xla_costs(distiller, student, teacher, x, y, weights, batch_size, full=None):
    """{measure: {step: count}}: the floating-point operations, transcendental operations (exp, log, ...) and
    bytes of memory XLA counts in each step's compiled program for one batch (JAX); `full`: the second anchor's
    (student, teacher, inputs, labels, weights), counted as "student_full" and "teacher_full"."""
    import jax
    import keras

    def first(tree):
        return keras.tree.map_structure(lambda a: None if a is None else a[:batch_size], tree)

    def train_state(model):
        return (_values(model.trainable_variables), _values(model.non_trainable_variables),
                _values(model.optimizer.variables), _values(model.metrics_variables))

    def count(step, state, data):
        analysis = jax.jit(step).lower(state, data).compile().cost_analysis()
        return (analysis[0] if isinstance(analysis, list) else analysis)

    def parts(student, teacher, x, y, weights):
        student_x = {k: x[k] for k in student.input_keys}
        return (count(student.train_step, train_state(student), first((student_x, y, weights))),
                count(teacher.predict_step, (_values(teacher.trainable_variables),
                                             _values(teacher.non_trainable_variables)), first((x,))))

    steps = {"distill": count(distiller.train_step, train_state(distiller), first((x, y, weights)))}
    steps["student"], steps["teacher"] = parts(student, teacher, x, y, weights)
    if full:
        steps["student_full"], steps["teacher_full"] = parts(*full)
    return {measure: {step: float(costs.get(measure, 0.0)) for step, costs in steps.items()}
            for measure in XLA_MEASURES}


def anchor_ratio(counts, suffix=""):
    """The Distiller step's count over the sum of its parts' ("_full": the second anchor's); None if absent."""
    if "student" + suffix not in counts:
        return None
    return counts["distill"] / (counts["student" + suffix] + counts["teacher" + suffix])


def worker(args):
    import keras

    teacher, student, distiller = build(args.task, args.student_layers)
    x, y, weights = batches(args.task, args)
    student_x = {k: x[k] for k in student.input_keys}
    distiller.compile(optimizer="adamw")
    student.compile(optimizer="adamw")
    full = second_anchor(args.task, student, teacher, x, y, weights)
    if full and not full[0].compiled:
        full[0].compile(optimizer="adamw")
    timed = {
        "distill": lambda callbacks: distiller.fit(x, y, sample_weight=weights, batch_size=args.batch_size,
                                                   shuffle=False, verbose=0, callbacks=callbacks),
        "student": lambda callbacks: student.fit(student_x, y, sample_weight=weights, batch_size=args.batch_size,
                                                 shuffle=False, verbose=0, callbacks=callbacks),
        "teacher": lambda callbacks: teacher.predict(x, batch_size=args.batch_size, verbose=0, callbacks=callbacks),
    }
    if full:
        full_student, full_teacher, full_x, full_y, full_weights = full
        timed["student_full"] = lambda callbacks: full_student.fit(
            {k: full_x[k] for k in full_student.input_keys}, full_y, sample_weight=full_weights,
            batch_size=args.batch_size, shuffle=False, verbose=0, callbacks=callbacks)
        timed["teacher_full"] = lambda callbacks: full_teacher.predict(
            full_x, batch_size=args.batch_size, verbose=0, callbacks=callbacks)
    seconds = {}
    for name, run in timed.items():
        run([])  # warm-up: compiles
        timer = workers.step_timer()
        run([timer])
        seconds[name] = statistics.median(timer.seconds)  # per step, robust to stalls of the whole call
    if args.count_flops:  # after the warm-ups: the optimizers and metrics are built
        seconds["xla"] = xla_costs(distiller, student, teacher, x, y, weights, args.batch_size, full)
    print(json.dumps({"backend": keras.backend.backend(), **seconds}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--tasks", default="classify,classify_layers,mlm,mlm_kd,mlm_all")
    parser.add_argument("--task", default="classify", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=os.path.join(ROOT, "saved_models", "bench", "distill_step.json"))
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    flags = ["--batch-size", str(args.batch_size), "--sequence-length", str(args.sequence_length), "--steps",
             str(args.steps), "--student-layers", str(args.student_layers)]
    results, rows, xla_rows = [], [], []
    for task in args.tasks.split(","):
        for backend in args.backends.split(","):
            ratios, parts, xla = [], [], None
            for _ in range(args.rounds):
                count = ["--count-flops"] if backend == "jax" and xla is None else []  # the same every round
                seconds = workers.run_worker(__file__, backend, flags + ["--task", task] + count, f"{task} {backend}")
                xla = seconds.pop("xla", xla)
                ratios.append(seconds["distill"] / (seconds["student"] + seconds["teacher"]))
                parts.append(seconds)
                print(f"{task} {backend} round {len(ratios)}: {ratios[-1]:.2f}x {seconds}", flush=True)
            keys = [k for k in ("distill", "student", "teacher", "student_full", "teacher_full") if k in parts[0]]
            median = {k: statistics.median(p[k] for p in parts) for k in keys}
            ratio = statistics.median(ratios)
            full_ratio = statistics.median(p["distill"] / (p["student_full"] + p["teacher_full"]) for p in parts) \
                if "student_full" in median else None
            xla_ratios = {measure: {"anchor": anchor_ratio(counts), "full_anchor": anchor_ratio(counts, "_full")}
                          for measure, counts in (xla or {}).items()}
            flop_ratio, full_flop_ratio = (xla_ratios["flops"].values() if xla else (None, None))
            results.append({"task": task, "backend": backend, "seconds_per_step": median, "overhead": ratio,
                            "overheads": ratios, "xla_flops": xla and xla["flops"],
                            "xla_costs": xla, "xla_ratios": xla_ratios, "flop_ratio": flop_ratio,
                            "overhead_full_anchor": full_ratio, "flop_ratio_full_anchor": full_flop_ratio,
                            "goal": GOAL})
            rows.append((task, backend, median["distill"], median["student"], median["teacher"], ratio, flop_ratio,
                         full_ratio, full_flop_ratio))
            xla_rows.extend((task, measure, r["anchor"], r["full_anchor"]) for measure, r in xla_ratios.items())
    print(f"\nDistiller step vs student step + teacher forward, batch {args.batch_size} x {args.sequence_length}, "
          f"{args.steps} steps, median of {args.rounds} rounds ({platform.processor() or platform.machine()})")
    print(f"{'task':15} {'backend':11} {'distill s':>10} {'student s':>10} {'teacher s':>10} {'overhead':>9} "
          f"{'FLOP ratio':>10} {'full anchor':>11} {'full FLOPs':>10}")

    def ratio_text(value, width):
        return f"{value:{width - 1}.3f}x" if value else f"{'-':>{width}}"

    for task, backend, d, s, t, ratio, flop_ratio, full_ratio, full_flop_ratio in rows:
        print(f"{task:15} {backend:11} {d:10.3f} {s:10.3f} {t:10.3f} {ratio:8.2f}x {ratio_text(flop_ratio, 10)} "
              f"{ratio_text(full_ratio, 11)} {ratio_text(full_flop_ratio, 10)} "
              f"{'(goal met)' if ratio <= GOAL else '(goal missed)'}")
    if xla_rows:
        print("\nJAX: what XLA counts in the Distiller's step / in its parts' (anchor, full anchor)")
        for task, measure, anchor, full in xla_rows:
            print(f"{task:15} {measure:16} {ratio_text(anchor, 10)} {ratio_text(full, 11)}")
    workers.write_results({"config": vars(args), "results": results}, args.out)


if __name__ == "__main__":
    main()
