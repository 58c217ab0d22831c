"""`Distiller.train_step` / `test_step` for each backend, written out the way each backend trains.

Keras' own trainers hide the step behind `compute_loss`; a distiller needs more control than that: the teacher
runs first, in inference mode and outside the gradient (no tape, `torch.no_grad`, outside `jax.value_and_grad`),
and only the student's variables get gradients. The loss itself is one backend-neutral method,
`Distiller.compute_losses`.
"""

import keras
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight


# TensorFlow: eager or inside Keras' tf.function (with jit_compile when asked) -----------------------------
def tensorflow_train_step(model, data):
    import tensorflow as tf

    x, y, sample_weight = unpack_x_y_sample_weight(data)
    teacher_out = model.teacher_forward(x)
    with tf.GradientTape() as tape:
        student_out = model.student_forward(x, training=True)
        losses = model.compute_losses(x, y, sample_weight, student_out, teacher_out)
        scaled_loss = model.optimizer.scale_loss(losses["loss"])
    variables = model.trainable_variables
    model.optimizer.apply(tape.gradient(scaled_loss, variables), variables)
    return model.update_metrics(x, y, sample_weight, student_out, losses)


def eager_test_step(model, data):
    """TensorFlow and torch: both forwards in inference mode, the losses and the metrics."""
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    teacher_out = model.teacher_forward(x)
    student_out = model.student_forward(x, training=False)
    losses = model.compute_losses(x, y, sample_weight, student_out, teacher_out)
    return model.update_metrics(x, y, sample_weight, student_out, losses)


# torch --------------------------------------------------------------------------------------------------
def torch_train_step(model, data):
    import torch

    x, y, sample_weight = unpack_x_y_sample_weight(data)
    with torch.no_grad():
        teacher_out = model.teacher_forward(x)
    model.zero_grad()
    student_out = model.student_forward(x, training=True)
    losses = model.compute_losses(x, y, sample_weight, student_out, teacher_out)
    model.optimizer.scale_loss(losses["loss"]).backward()
    variables = model.trainable_weights[:]
    with torch.no_grad():
        model.optimizer.apply([v.value.grad for v in variables], variables)
    return model.update_metrics(x, y, sample_weight, student_out, losses)


# JAX: stateless; Keras jit-compiles the step (state in, state out) ----------------------------------------
def _scope(model, trainable, non_trainable):
    mapping = list(zip(model.trainable_variables, trainable)) + list(zip(model.non_trainable_variables,
                                                                        non_trainable))
    return keras.StatelessScope(state_mapping=mapping)


def _current_values(scope, variables, values):
    updated = [scope.get_current_value(v) for v in variables]
    return [value if new is None else new for new, value in zip(updated, values)]


def _stateless_metrics(model, metrics_variables, x, y, sample_weight, student_out, losses):
    with keras.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_variables))) as scope:
        logs = model.update_metrics(x, y, sample_weight, student_out, losses)
    return logs, _current_values(scope, model.metrics_variables, metrics_variables)


def jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer_variables, metrics_variables = state
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    with _scope(model, trainable, non_trainable):
        teacher_out = model.teacher_forward(x)

    def loss_and_updates(trainable_values):
        with _scope(model, trainable_values, non_trainable) as scope:
            student_out = model.student_forward(x, training=True)
            losses = model.compute_losses(x, y, sample_weight, student_out, teacher_out)
        new_non_trainable = _current_values(scope, model.non_trainable_variables, non_trainable)
        with keras.StatelessScope(state_mapping=list(zip(model.optimizer.variables, optimizer_variables))):
            scaled_loss = model.optimizer.scale_loss(losses["loss"])
        return scaled_loss, (losses, student_out, new_non_trainable)

    (_, (losses, student_out, non_trainable)), grads = jax.value_and_grad(loss_and_updates, has_aux=True)(
        trainable)
    trainable, optimizer_variables = model.optimizer.stateless_apply(optimizer_variables, grads, trainable)
    logs, metrics_variables = _stateless_metrics(model, metrics_variables, x, y, sample_weight, student_out, losses)
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def jax_test_step(model, state, data):
    trainable, non_trainable, metrics_variables = state
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    with _scope(model, trainable, non_trainable):
        teacher_out = model.teacher_forward(x)
        student_out = model.student_forward(x, training=False)
        losses = model.compute_losses(x, y, sample_weight, student_out, teacher_out)
    logs, metrics_variables = _stateless_metrics(model, metrics_variables, x, y, sample_weight, student_out, losses)
    return logs, (trainable, non_trainable, metrics_variables)


STEPS = {
    "tensorflow": (tensorflow_train_step, eager_test_step),
    "torch": (torch_train_step, eager_test_step),
    "jax": (jax_train_step, jax_test_step),
}
