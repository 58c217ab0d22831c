"""How a run uses its hardware: devices, hosts, precision and gradient accumulation, chosen by the user and run
by the backend's own engine. kzoo writes no parallelism of its own; this module only picks and configures:

    JAX          `keras.distribution.DataParallel` (one global program, inputs sharded on a "batch" axis) or
                 `keras.distribution.ModelParallel` (a devices/M × M mesh: the batch on "batch", the large
                 kernels on "model"; `layout_map`); several hosts through `keras.distribution.initialize`
                 (`jax.distributed`).
    TensorFlow   `tf.distribute.MirroredStrategy` (one host) or `MultiWorkerMirroredStrategy` (several hosts,
                 `TF_CONFIG`): one replica per device, gradients summed by all-reduce. Keras scales its own
                 losses by 1 / replicas; kzoo's losses return each replica's share of the global mean
                 (`kzoo.replicas`), so N devices train as one device does on the same global batch.
    precision    a Keras dtype policy for the models (variables stay float32); `mixed_float16` adds Keras'
                 `LossScaleOptimizer`.
    accumulate   Keras optimizers' `gradient_accumulation_steps` (JAX): K micro-batches of B / K make one update
                 of the global batch B; the learning-rate schedule counts updates. Each micro-batch's loss is its
                 own mean, so the update equals one step of B where the micro-batches weigh alike (examples; the
                 same number of masked or real tokens); token-weighted terms otherwise count a micro-batch's
                 tokens a little more or less. TensorFlow is refused (`kzoo.train.optim.check_accumulation`).
"""

import contextlib
import dataclasses
import json
import os

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass
class EngineConfig:
    """What the user chose (the `--data-parallel ... --accumulate` flags of the commands).

    Args:
        data_parallel: split each batch over the local devices (all of them, or `devices`).
        devices: how many local devices to use (implies `data_parallel`); None: all.
        model_parallel: JAX only: M > 1 shards the word embeddings, attention and feed-forward kernels over M
            devices (`layout_map`) and the batch over the other devices/M.
        precision: "float32", "mixed_bfloat16" or "mixed_float16".
        accumulate: K ≥ 1 micro-batches per optimizer update (K > 1 is refused on TensorFlow:
            `kzoo.train.optim.check_accumulation`).
        coordinator: several hosts: "HOST:PORT" of process 0 (JAX), or every process's "HOST:PORT", comma
            separated, process 0 first (TensorFlow needs them all). None: read the engines' own environment
            variables (`KERAS_DISTRIBUTION_JOB_ADDRESSES` / `..._NUM_PROCESSES` / `..._PROCESS_ID`; `TF_CONFIG`).
        num_processes, process_id: the number of processes (hosts) and this one's index, 0 for the coordinator.

    Example:
    >>> config = EngineConfig(devices=2, precision="mixed_bfloat16")
    >>> config.data_parallel, config.dtype_options
    (True, {'dtype': 'mixed_bfloat16'})
    """

    data_parallel: bool = False
    devices: int | None = None
    model_parallel: int = 1
    precision: str = "float32"
    accumulate: int = 1
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    def __post_init__(self):
        from kzoo.train.optim import check_accumulation

        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {self.precision!r}.")
        check_accumulation(self.accumulate)
        for name in ("model_parallel", "devices"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an int ≥ 1; got {value!r}.")
        if self.devices is not None or self.model_parallel > 1:
            self.data_parallel = True
        hosts = (self.coordinator, self.num_processes, self.process_id)
        if any(value is not None for value in hosts) and None in hosts:
            raise ValueError("Several hosts need all of coordinator, num_processes and process_id; got "
                             f"coordinator={self.coordinator!r}, num_processes={self.num_processes!r}, "
                             f"process_id={self.process_id!r}.")
        if self.num_processes is not None:
            if self.num_processes < 1 or not 0 <= self.process_id < self.num_processes:
                raise ValueError(f"process_id must be in [0, num_processes); got process_id {self.process_id}, "
                                 f"num_processes {self.num_processes}.")
            self.data_parallel = True

    @property
    def multi_host(self):
        """Several hosts: given here, or (with data_parallel) in the backend's own environment variables."""
        if self.num_processes is not None:
            return True
        if not self.data_parallel:
            return False
        import keras

        variable = "KERAS_DISTRIBUTION_NUM_PROCESSES" if keras.backend.backend() == "jax" else "TF_CONFIG"
        return bool(os.environ.get(variable))

    def one_host(self, commands):
        """Refuse several hosts for `commands` (kzoo's commands): their raw-text batches are made in each process
        and nothing gives each host its share, and every host would write the run's files. Keras shards a
        `tf.data` dataset over hosts: the Python API with one runs there (tests/test_several_hosts.py)."""
        if self.multi_host:
            raise ValueError(f"{commands} run on one host (all its devices); for several hosts use the Python API "
                             "with a tf.data dataset (docs/guide.md: several hosts).")

    @property
    def dtype_options(self):
        """Keyword arguments that build a model (`from_preset`, a backbone) in this precision; none for float32."""
        return {} if self.precision == "float32" else {"dtype": self.precision}


def model_parallel_layouts(device_mesh):
    """A `keras.distribution.LayoutMap` for the BERT family on a ("batch", "model") mesh, Megatron-style: the
    word embeddings split on the hidden axis (BERT's 30,522 words do not divide by 4), query/key/value and the
    first feed-forward kernel on their output axis, the attention output and second feed-forward kernel on their
    input axis; everything else (biases, LayerNorms, positions, heads) replicated. The keys are regexes that
    Keras matches against the variables' whole paths, e.g. `encoder/transformer_layer_0/attention/query/kernel` or ALBERT's
    `encoder/group_0_inner_0/intermediate/kernel`. `Engine(model_parallel=M)` uses it.

    Args:
        device_mesh: a `keras.distribution.DeviceMesh` with axes named "batch" and "model".

    Example:
    >>> import keras
    >>> mesh = keras.distribution.DeviceMesh((1, 1), ["batch", "model"], keras.distribution.list_devices()[:1])
    >>> layouts = model_parallel_layouts(mesh)   # for ModelParallel(layout_map=layouts, batch_dim_name="batch")
    >>> layouts["encoder/transformer_layer_0/attention/query/kernel"].axes
    (None, 'model')
    """
    import keras

    layouts = keras.distribution.LayoutMap(device_mesh)
    layouts[r".*token_embedding/embeddings"] = (None, "model")
    layouts[r".*attention/(query|key|value)/kernel"] = (None, "model")
    layouts[r".*attention/attention_output/kernel"] = ("model", None)
    layouts[r".*/intermediate/kernel"] = (None, "model")
    layouts[r".*(transformer_layer_\d+|group_\d+_inner_\d+)/output/kernel"] = ("model", None)
    return layouts


def virtual_cpu_devices(count):
    """Split the host CPU into `count` devices, to run the engines without accelerators (tests, trials).
    Call before the backend starts (JAX: before the first computation; TF: before any op); calling again with
    the same count does nothing.

    Args:
        count: the number of devices.

    Example (skipped here: it must run first in a process):
    >>> virtual_cpu_devices(4)  # doctest: +SKIP
    >>> Engine(EngineConfig(devices=4)).replicas  # doctest: +SKIP
    4
    """
    import keras

    if keras.backend.backend() == "jax":
        import jax

        if jax.config.jax_num_cpu_devices != count:
            jax.config.update("jax_num_cpu_devices", count)
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        if len(tf.config.get_logical_device_configuration(cpu) or [None]) != count:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


class Engine:
    """The backend's engine for an `EngineConfig`: build, compile and `fit` models inside `scope()`.

    Attributes: `replicas` (how many shards each global batch is split into: the data-parallel width over all
    hosts), `dtype` (the models' dtype policy), `jit_compile` (what to pass to `compile`), `description` (one
    line naming the engine, devices, mesh and precision).

    Args:
        config: an `EngineConfig`; None: one made of `options`.
        **options: `EngineConfig` fields, when `config` is None.

    Example:
    >>> engine = Engine(EngineConfig(precision="mixed_bfloat16"))
    >>> engine.replicas, engine.dtype
    (1, 'mixed_bfloat16')
    >>> with engine.scope():
    ...     optimizer = engine.make_optimizer("adamw", 1e-4, total_steps=100, warmup_steps=10)
    >>> type(optimizer).__name__
    'AdamW'
    """

    def __init__(self, config=None, **options):
        import keras

        self.config = config if config is not None else EngineConfig(**options)
        self.backend = keras.backend.backend()
        self.distribution = None  # JAX: a keras.distribution.Distribution
        self.strategy = None  # TensorFlow: a tf.distribute.Strategy
        self.processes = 1
        self.devices = []
        self.mesh_shape = None
        if self.config.data_parallel:
            if self.backend == "jax":
                self._start_jax()
            elif self.backend == "tensorflow":
                self._start_tensorflow()
            else:
                raise ValueError(f"Several devices run on the jax and tensorflow backends, not {self.backend}.")
        if self.strategy is not None:
            self.replicas = self.strategy.num_replicas_in_sync
        elif self.mesh_shape is not None:
            self.replicas = self.mesh_shape[0]
        else:
            self.replicas = len(self.devices) or 1

    # Engines ----------------------------------------------------------------------------------------------
    def _start_jax(self):
        import jax
        import keras

        config = self.config
        if config.multi_host:
            if not jax.distributed.is_initialized():  # once per process: a second Engine joins the same hosts
                keras.distribution.initialize(config.coordinator, config.num_processes, config.process_id)
            self.processes = jax.process_count()
        devices = keras.distribution.list_devices()
        if config.devices is not None:
            if self.processes > 1:
                raise ValueError("devices selects local devices on one host; several hosts use all of theirs.")
            if config.devices > len(devices):
                raise ValueError(f"devices {config.devices}: this host has {len(devices)} ({devices}).")
            devices = devices[:config.devices]
        self.devices = list(devices)
        model_parallel = config.model_parallel
        if model_parallel == 1:
            self.distribution = keras.distribution.DataParallel(devices=self.devices)
            return
        if len(devices) % model_parallel:
            raise ValueError(f"model_parallel {model_parallel} must divide the {len(devices)} devices.")
        self.mesh_shape = (len(devices) // model_parallel, model_parallel)
        mesh = keras.distribution.DeviceMesh(self.mesh_shape, ["batch", "model"], self.devices)
        self.distribution = keras.distribution.ModelParallel(layout_map=model_parallel_layouts(mesh),
                                                             batch_dim_name="batch")

    def _start_tensorflow(self):
        import tensorflow as tf

        config = self.config
        if config.model_parallel > 1:
            raise ValueError("model_parallel runs on JAX (keras.distribution.ModelParallel); TensorFlow's "
                             "MirroredStrategy keeps a whole copy of the model on every device.")
        if config.multi_host:
            if config.num_processes is not None:
                os.environ["TF_CONFIG"] = json.dumps(tf_config(config))
            _let_keras_fit_on_several_workers()
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy()
            self.processes = self.strategy.cluster_resolver.cluster_spec().num_tasks("worker")
        else:
            devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                      [d.name for d in tf.config.list_logical_devices("CPU")]
            if config.devices is not None:
                if config.devices > len(devices):
                    raise ValueError(f"devices {config.devices}: this host has {len(devices)} ({devices}).")
                devices = devices[:config.devices]
            self.strategy = _mirrored_strategy(tuple(devices))
        self.devices = list(self.strategy.extended.worker_devices)  # this host's

    def scope(self):
        """The context to build, compile and train models in."""
        if self.distribution is not None:
            return self.distribution.scope()
        if self.strategy is not None:
            return self.strategy.scope()
        return contextlib.nullcontext()

    # What models and optimizers take --------------------------------------------------------------------
    @property
    def dtype(self):
        return self.config.precision

    @property
    def jit_compile(self):
        """"auto" (Keras' choice: XLA on JAX, and on a TensorFlow GPU) except under `tf.distribute`, where Keras
        turns XLA off and forcing it on fails (a replica's variable read from another device)."""
        return False if self.strategy is not None else "auto"

    def make_optimizer(self, name, learning_rate, total_steps, warmup_steps, **kwargs):
        """`kzoo.train.optim.make_optimizer` for `total_steps` updates, accumulating `accumulate` micro-batches per
        update, in Keras' `LossScaleOptimizer` under mixed_float16. Call inside `scope()`.

        Args:
            name: "adamw" or "lamb".
            learning_rate: the peak learning rate.
            total_steps: optimizer updates in the run (the schedule decays linearly to 0 at the end).
            warmup_steps: updates of linear warm-up from 0.
            **kwargs: other `make_optimizer` arguments (weight decay, clipping).
        """
        import keras

        from kzoo.train.optim import make_optimizer

        optimizer = make_optimizer(name, learning_rate, total_steps, warmup_steps, accumulate=self.config.accumulate,
                                   **kwargs)
        if self.config.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def micro_batch_size(self, batch_size):
        """The batch `fit` is fed: the global batch over `accumulate`; raises unless it divides evenly over the
        micro-batches and the replicas.

        Args:
            batch_size: the global batch: the examples of one optimizer update, over all devices.
        """
        accumulate = self.config.accumulate
        if batch_size % accumulate:
            raise ValueError(f"batch_size {batch_size} must divide into accumulate {accumulate} micro-batches.")
        micro = batch_size // accumulate
        if micro % self.replicas:
            raise ValueError(f"The micro-batch of {micro} rows (batch_size {batch_size} / accumulate {accumulate}) "
                             f"must divide evenly over {self.replicas} replicas.")
        return micro

    @property
    def description(self):
        """One line: the engine, its devices and mesh, hosts, precision, accumulation and XLA."""
        kinds = sorted({_device_kind(device) for device in self.devices})
        if self.distribution is not None:
            name = type(self.distribution).__name__
            engine = f"keras.distribution.{name} on {len(self.devices)} {'/'.join(kinds)} devices"
            if self.mesh_shape:
                engine += f", mesh {self.mesh_shape[0]} (batch) × {self.mesh_shape[1]} (model)"
        elif self.strategy is not None:
            # TensorFlow's MultiWorkerMirroredStrategy is a class named CollectiveAllReduceStrategy: say the former.
            name = "MultiWorkerMirroredStrategy" if self.processes > 1 else type(self.strategy).__name__
            engine = f"tf.distribute.{name} on {self.replicas} {'/'.join(kinds)} devices"
        else:
            engine = f"{self.backend}, one device"
        hosts = f", {self.processes} hosts" if self.processes > 1 else ""
        if self.backend == "jax":
            xla = "XLA (jit)"
        elif self.strategy is not None:
            xla = "XLA off (tf.distribute turns it off)"
        else:
            xla = "XLA as Keras chooses"
        accumulate = f", {self.config.accumulate} micro-batches per update" if self.config.accumulate > 1 else ""
        return f"engine: {engine}{hosts}; {self.config.precision}{accumulate}; {xla}"


_MIRRORED = {}


def _mirrored_strategy(devices):
    """One `MirroredStrategy` per device set and process: two strategies over the same devices number their
    collective ops alike, and their programs then wait on each other's all-reduces (TF aborts with a shape
    mismatch)."""
    import tensorflow as tf

    if devices not in _MIRRORED:
        _MIRRORED[devices] = tf.distribute.MirroredStrategy(list(devices))
    return _MIRRORED[devices]


def _let_keras_fit_on_several_workers():
    """Two fixes to Keras 3.15.1's TensorFlow trainer, without which `fit` fails under
    `MultiWorkerMirroredStrategy` (keras-team/keras#20585, open); patched here because no public option avoids
    them, and only when several TensorFlow workers start:

    1. `_maybe_symbolic_build` averages the first batch over the workers to learn its shapes
       (`strategy.reduce("MEAN", batch)`), which fails on a nested batch of per-replica values; the local
       replica's tensors carry the same shapes.
    2. `reduce_per_replica(reduction="mean")` reduces the scalar logs along axis 0 across workers ("Invalid
       reduction dimension 0 for input with 0 dimensions"); scalars are reduced whole.

    Measured with them: one step on two processes equals one process on the same global batch
    (`tests/test_several_hosts.py`).
    """
    import keras
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_kzoo_multi_worker_fix", False) or keras.version() != "3.15.1":
        return  # written for (and tested with) kzoo's pinned Keras; another version keeps its own code

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                batch = next(batches)
                break
            data_batch = tf.nest.map_structure(
                lambda value: self.distribute_strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues) else value, batch)
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    keras_reduce_per_replica = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            def mean(value):
                scalar = strategy.experimental_local_results(value)[0].shape.rank == 0
                return strategy.reduce("MEAN", value, axis=None if scalar else 0)
            return tf.nest.map_structure(mean, values)
        return keras_reduce_per_replica(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    trainer._kzoo_multi_worker_fix = True


def _device_kind(device):
    """"CPU" / "GPU" / "TPU" of a device name ("/job:localhost/.../device:CPU:0", "cpu:0", a jax device)."""
    text = str(device).upper()
    for kind in ("GPU", "TPU", "CUDA"):
        if kind in text:
            return "GPU" if kind == "CUDA" else kind
    return "CPU"


def tf_config(config):
    """`TF_CONFIG` for `MultiWorkerMirroredStrategy` from `coordinator` = every worker's HOST:PORT, comma
    separated, process 0 first.

    Args:
        config: an `EngineConfig` with `coordinator`, `num_processes` and `process_id`.

    Example:
    >>> tf_config(EngineConfig(coordinator="10.0.0.1:1234,10.0.0.2:1234", num_processes=2, process_id=1))
    {'cluster': {'worker': ['10.0.0.1:1234', '10.0.0.2:1234']}, 'task': {'type': 'worker', 'index': 1}}
    """
    workers = [address.strip() for address in config.coordinator.split(",") if address.strip()]
    if len(workers) != config.num_processes:
        raise ValueError(f"TensorFlow's MultiWorkerMirroredStrategy needs every process's HOST:PORT: coordinator "
                         f"{config.coordinator!r} lists {len(workers)}, num_processes is {config.num_processes}.")
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": config.process_id}}
