"""The KD loss alone, forward and backward, in three forms: is there a cheaper one for KD at every MLM token?

At every token of a 32 × 64 MLM batch, KD compares two 30,522-way softmaxes (62.5M logits each): on TensorFlow
that is most of what the default MLM Distiller step adds to its parts (bench/distill_step.py, task mlm_all).
Forms, all T²·KL(softmax(t/T) ‖ softmax(s/T)) up to rounding, gradient taken w.r.t. the student's logits:
  kzoo            `kzoo.distill.kd_loss`: log_softmax of both, exp of the teacher's
  shared_exp      the teacher's softmax and log-softmax from one exp (XLA counts a third fewer exp/log)
  cross_entropy   `keras.ops.categorical_crossentropy(p_teacher, s, from_logits=True)` − the teacher's entropy
                  (TensorFlow's fused softmax_cross_entropy_with_logits kernel)
Each backend compiles as Keras' `fit` does on this machine: TensorFlow a tf.function, with XLA only where Keras'
jit_compile="auto" picks it (not on a CPU-only machine); JAX `jax.jit`, whose XLA counts are read too.

    .venv/bin/python bench/kd_loss.py          # TF and JAX, 2048 tokens x 30522 words, median of 6 calls
"""

import argparse
import json
import os
import statistics
import sys
import time

import workers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def forms():
    from keras import ops

    from kzoo.distill import kd_loss
    from kzoo.distill.losses import weighted_mean

    def scaled(teacher_logits, student_logits, temperature):
        return (ops.cast(teacher_logits, "float32") / temperature, ops.cast(student_logits, "float32") / temperature)

    def shared_exp(teacher_logits, student_logits, temperature, weights):
        t, s = scaled(teacher_logits, student_logits, temperature)
        t_shifted = t - ops.max(t, axis=-1, keepdims=True)
        t_exp = ops.exp(t_shifted)
        t_sum = ops.sum(t_exp, axis=-1, keepdims=True)
        log_p_teacher = t_shifted - ops.log(t_sum)
        kl = ops.sum(t_exp / t_sum * (log_p_teacher - ops.log_softmax(s, axis=-1)), axis=-1)
        return temperature ** 2 * weighted_mean(kl, weights)

    def cross_entropy(teacher_logits, student_logits, temperature, weights):
        t, s = scaled(teacher_logits, student_logits, temperature)
        p_teacher, log_p_teacher = ops.softmax(t, axis=-1), ops.log_softmax(t, axis=-1)
        entropy = -ops.sum(p_teacher * log_p_teacher, axis=-1)
        kl = ops.categorical_crossentropy(p_teacher, s, from_logits=True) - entropy
        return temperature ** 2 * weighted_mean(kl, weights)

    return {"kzoo": kd_loss, "shared_exp": shared_exp, "cross_entropy": cross_entropy}


def compiled_steps(teacher, student, weights, temperature):
    """{form: (run() → (loss, gradient) as numpy, XLA counts)} compiled as Keras' fit would; the logits are
    arguments, not constants, so that no compiler folds the teacher's side away before it runs."""
    import keras

    steps = {}
    if keras.backend.backend() == "jax":
        import jax

        arrays = [jax.device_put(a) for a in (teacher, student, weights)]
        for name, loss in forms().items():
            step = jax.jit(jax.value_and_grad(lambda t, s, w, loss=loss: loss(t, s, temperature, w), argnums=1))
            counts = step.lower(*arrays).compile().cost_analysis()
            counts = counts[0] if isinstance(counts, list) else counts
            steps[name] = (lambda step=step: jax.device_get(step(*arrays)),
                           {k: counts.get(k) for k in ("flops", "transcendentals", "bytes accessed")})
        return steps
    import tensorflow as tf

    # Keras' jit_compile="auto" on TensorFlow: XLA only where there is an accelerator (what `fit` uses here).
    jit = any(device.device_type != "CPU" for device in tf.config.list_physical_devices())
    teacher, student, weights = (tf.constant(a) for a in (teacher, student, weights))
    for name, loss in forms().items():
        @tf.function(jit_compile=jit)
        def step(t, s, w, loss=loss):
            with tf.GradientTape() as tape:
                tape.watch(s)
                value = loss(t, s, temperature, w)
            return value, tape.gradient(value, s)

        steps[name] = (lambda step=step: [x.numpy() for x in step(teacher, student, weights)], {"jit_compile": jit})
    return steps


def worker(args):
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    teacher, student = (rng.normal(size=(2, args.tokens, args.vocabulary)) * 3).astype("float32")
    weights = (rng.random(args.tokens) > 0.1).astype("float32")  # a few padding tokens
    steps = compiled_steps(teacher, student, weights, args.temperature)
    outputs = {name: run() for name, (run, _) in steps.items()}  # compiles
    reference_gradient = outputs["kzoo"][1]
    seconds = {name: [] for name in steps}
    for _ in range(args.calls):
        for name, (run, _) in steps.items():  # interleaved, so drifts of a shared machine hit every form
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    print(json.dumps({"backend": keras.backend.backend(), "forms": {
        name: {"seconds": statistics.median(seconds[name]), "loss": float(outputs[name][0]),
               "max_gradient_difference": float(np.abs(outputs[name][1] - reference_gradient).max()),
               "xla": steps[name][1]} for name in steps}}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--vocabulary", type=int, default=30522)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "saved_models", "bench", "kd_loss.json"))
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    flags = ["--tokens", str(args.tokens), "--vocabulary", str(args.vocabulary), "--temperature",
             str(args.temperature), "--calls", str(args.calls)]
    results = [workers.run_worker(__file__, backend, flags, f"kd_loss {backend}")
               for backend in args.backends.split(",")]
    print(f"KD loss forward + backward, {args.tokens} tokens x {args.vocabulary} words, T = {args.temperature}, "
          f"median of {args.calls} calls")
    print(f"{'backend':11} {'form':14} {'seconds':>8} {'vs kzoo':>8} {'loss':>12} {'max |Δ grad|':>13} "
          f"{'transcendentals':>16}")
    for result in results:
        forms_ = result["forms"]
        for name, row in forms_.items():
            transcendentals = row["xla"].get("transcendentals")
            print(f"{result['backend']:11} {name:14} {row['seconds']:8.3f} "
                  f"{row['seconds'] / forms_['kzoo']['seconds']:7.2f}x {row['loss']:12.6f} "
                  f"{row['max_gradient_difference']:13.1e} {f'{transcendentals:.3g}' if transcendentals else '-':>16}")
    workers.write_results({"config": vars(args), "results": results}, args.out)


if __name__ == "__main__":
    main()
