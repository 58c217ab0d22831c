"""Optimisers of the BERT/ALBERT recipe (docs/design.md §5): AdamW or LAMB, linear warmup then linear decay,
no weight decay on LayerNorm and bias, global gradient clipping at 1.0."""

import keras
from keras import ops

from kzoo.replicas import replica_count, sum_over_replicas

NO_DECAY = ["bias", "gamma", "beta"]  # Keras names the LayerNorm scale and offset gamma and beta


@keras.saving.register_keras_serializable(package="kzoo")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """0 → `peak` linearly over `warmup_steps`, then linearly → `end` at `total_steps` (Hugging Face's
    `get_linear_schedule_with_warmup`). Written here because Keras' schedules warm up only into cosine decay.
    With gradient accumulation Keras calls a schedule with the count of micro-batches; `micro_steps` (the
    optimizer's `gradient_accumulation_steps`) turns it back into updates, so the schedule is that of the same
    run without accumulation.

    Example:
    >>> schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=110)
    >>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 60, 110, 200)]
    [0.0, 0.0005, 0.001, 0.0005, 0.0, 0.0]
    """

    def __init__(self, peak, warmup_steps, total_steps, end=0.0, micro_steps=1):
        if not 0 <= warmup_steps <= total_steps or total_steps < 1:
            raise ValueError(f"Need 0 ≤ warmup_steps ≤ total_steps and total_steps ≥ 1; got warmup_steps="
                             f"{warmup_steps}, total_steps={total_steps}.")
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.end = end
        self.micro_steps = int(micro_steps)

    def __call__(self, step):
        step = ops.cast(ops.floor_divide(step, self.micro_steps), "float32")
        warmup = self.peak * step / max(1, self.warmup_steps)
        remaining = ops.clip((self.total_steps - step) / max(1, self.total_steps - self.warmup_steps), 0.0, 1.0)
        decay = self.end + (self.peak - self.end) * remaining
        return ops.where(step < self.warmup_steps, warmup, decay)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "end": self.end, "micro_steps": self.micro_steps}


class ReplicaExactClipping:
    """Mixin: `global_clipnorm` measured on the gradient summed over `tf.distribute` replicas.

    Keras clips inside each replica, before MirroredStrategy sums the replicas' gradients, so every replica
    would scale by the norm of its own part and training on N devices would differ from one device. Here the
    norm is that of the summed gradient (one extra all-reduce of the gradients per step); with one replica, or
    on JAX (one global program), this is Keras' own clipping.
    """

    def _clip_gradients(self, grads):
        if not self.global_clipnorm or replica_count() == 1:
            return super()._clip_gradients(grads)
        present = [g for g in grads if g is not None]
        norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in sum_over_replicas(present)))
        scale = self.global_clipnorm * ops.minimum(1.0 / norm, 1.0 / self.global_clipnorm)
        return [None if g is None else g * scale for g in grads]


@keras.saving.register_keras_serializable(package="kzoo")
class AdamW(ReplicaExactClipping, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with replica-exact global-norm clipping."""


@keras.saving.register_keras_serializable(package="kzoo")
class Lamb(ReplicaExactClipping, keras.optimizers.Lamb):
    """`keras.optimizers.Lamb` with replica-exact global-norm clipping."""


def check_accumulation(accumulate):
    """Raise unless `accumulate` micro-batches per update can run on this backend."""
    if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
        raise ValueError(f"accumulate must be an int ≥ 1; got {accumulate!r}.")
    if accumulate > 1 and keras.backend.backend() == "tensorflow":
        # Measured with Keras 3.15.1: one update of 2 accumulated micro-batches through an Embedding layer ends
        # 2e-2 (Adam) or 1e-3 (clipped SGD) away from one step of the whole batch on TensorFlow, exact on JAX;
        # dense-only models agree. Under tf.distribute it fails outright (merge_call inside a cond).
        raise ValueError(f"accumulate {accumulate}: Keras' gradient accumulation is wrong on TensorFlow for models "
                         "with embeddings (and fails under tf.distribute); accumulate on the jax backend.")


def make_optimizer(name, learning_rate, total_steps, warmup_steps, weight_decay=0.01, clipnorm=1.0, accumulate=1):
    """`adamw` (BERT: eps 1e-6) or `lamb` (ALBERT), on a `WarmupLinearDecay` schedule over `total_steps`
    updates, decay off for LayerNorm and bias; `accumulate` K > 1 averages the gradients of K micro-batches into
    each update (Keras' `gradient_accumulation_steps`; clipping and weight decay act on the average).

    Example:
        model.compile(optimizer=make_optimizer("adamw", 1e-4, total_steps=10_000, warmup_steps=1_000))
    """
    check_accumulation(accumulate)
    schedule = WarmupLinearDecay(learning_rate, warmup_steps, total_steps, micro_steps=accumulate)
    common = dict(learning_rate=schedule, weight_decay=weight_decay, epsilon=1e-6, global_clipnorm=clipnorm,
                  gradient_accumulation_steps=accumulate if accumulate > 1 else None)
    if name == "adamw":
        optimizer = AdamW(**common)
    elif name == "lamb":
        optimizer = Lamb(**common)
    else:
        raise ValueError(f"optimizer must be 'adamw' or 'lamb'; got {name!r}.")
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
