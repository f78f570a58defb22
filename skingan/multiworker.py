"""Training across machines: --devices multiworker, tf.distribute.MultiWorkerMirroredStrategy.

Every worker runs the same train.py command. The cluster is read from TF_CONFIG when it is
set, else from Slurm's variables (SLURM_JOB_ID and SLURM_PROCID: the workers were started
with srun). All workers run the whole loop, events included, so every collective op (the
train step's all-reduces, the variable broadcasts, whatever saving a distributed variable
needs) is entered by all of them in the same order. Only where files go differs:

- the chief (worker 0) writes the run's folders as a single-machine run does;
- every other worker writes into a scratch folder of its own, deleted when it finishes,
  the pattern TensorFlow documents for checkpoints under this strategy. It reads the
  chief's config.json (the same data check as the chief) and restores the chief's
  checkpoint (checkpoints.restore): the chief's folder must be on storage all machines share.

The data stream and the random inputs are those of one device: each worker builds the whole
global batch of step s (a pure function of seed and s) and keeps the rows of its replicas,
replica k taking rows [k*b, (k+1)*b), b = B / replicas, the same rows _replica_slice in
steps.py gives replica k of the globally drawn latents.
"""
import contextlib
import json
import os
import shutil
import tempfile

from skingan import checkpoints
from skingan.errors import UserError
from skingan.runs import RunFolder

HOW_THE_CLUSTER_IS_READ = (
    "--devices multiworker needs a cluster: set TF_CONFIG on every worker (its 'cluster' "
    "and this worker's 'task'), or start one train.py per node with srun inside a Slurm "
    "job (SLURM_JOB_ID and SLURM_PROCID set); or give --devices auto to train on this "
    "machine alone")


def cluster_resolver():
    """The cluster this process belongs to: TF_CONFIG first, else Slurm; UserError when
    neither describes one."""
    import tensorflow as tf
    resolvers = tf.distribute.cluster_resolver
    text = os.environ.get("TF_CONFIG", "").strip()
    if text:
        try:
            doc = json.loads(text)
        except ValueError as err:
            raise UserError(f"TF_CONFIG is not valid JSON ({err})") from None
        if not isinstance(doc, dict) or not doc.get("cluster") or not doc.get("task"):
            raise UserError("TF_CONFIG must give 'cluster' (e.g. {\"worker\": [\"host1:port\", "
                            "\"host2:port\"]}) and this worker's 'task' ({\"type\": "
                            "\"worker\", \"index\": 0})")
        return resolvers.TFConfigClusterResolver()
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("SLURM_PROCID"):
        return slurm_resolver()
    raise UserError(HOW_THE_CLUSTER_IS_READ)


def slurm_resolver():
    """SlurmClusterResolver for the current srun step, holding the GPUs this process sees.

    MultiWorkerMirroredStrategy takes the number of local replicas from the resolver's
    num_accelerators(), which SlurmClusterResolver computes from gpus_per_node (via
    nvidia-smi, absent on CPU nodes) and can also "allocate" by setting CUDA_VISIBLE_DEVICES,
    too late here: TensorFlow has already looked at the GPUs. So Slurm's resolver is used
    for what it reads well (hosts, ports, this task's rank), with auto_set_gpu off and
    placeholder GPU counts, and the result is held with the true count: every GPU this
    process sees (all of the node's with one task per node, or those Slurm bound to the task
    with --gpus-per-task) is one replica."""
    import tensorflow as tf
    resolvers = tf.distribute.cluster_resolver
    try:
        # gpus_per_task=1 and a node "size" of 1024 only satisfy its bookkeeping (a GPU id
        # per task on each node); nothing reads them with auto_set_gpu=False.
        slurm = resolvers.SlurmClusterResolver(gpus_per_node=1024, gpus_per_task=1,
                                               auto_set_gpu=False)
        spec = slurm.cluster_spec()
    except (RuntimeError, ValueError) as err:   # a variable missing: not inside srun
        raise UserError(f"cannot read the cluster from Slurm ({checkpoints.one_line(err)}); "
                        f"{HOW_THE_CLUSTER_IS_READ}") from None
    gpus = len(tf.config.list_physical_devices("GPU"))
    return resolvers.SimpleClusterResolver(
        spec, task_type=slurm.task_type, task_id=slurm.task_id, rpc_layer="grpc",
        num_accelerators={"GPU": gpus} if gpus else None)


_strategy = []   # the process's one MultiWorkerMirroredStrategy, once made


def make_strategy():
    """MultiWorkerMirroredStrategy over the cluster of cluster_resolver(). Call it before
    TensorFlow runs any op: it sets up collective ops, which must happen at start-up. It
    returns once every worker has joined. A process joins one cluster once, so a program
    that trains several runs (the tests) gets the same strategy each time."""
    import tensorflow as tf
    if not _strategy:
        _strategy.append(tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=cluster_resolver()))
    return _strategy[0]


def num_workers(strategy):
    """How many processes train together: 1 except under MultiWorkerMirroredStrategy
    (whose workers each hold the same number of replicas)."""
    import tensorflow as tf
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    return strategy.num_replicas_in_sync // len(strategy.extended.worker_devices)


def is_chief(strategy):
    """Whether this process writes the run's files. should_checkpoint is True for every
    other strategy and, under MultiWorkerMirroredStrategy, for the chief only."""
    return strategy.extended.should_checkpoint


def sum_over_workers(strategy, value):
    """The sum over workers of a number (or a NumPy array, the same shape on every worker)
    each gives. A collective op: every worker must call it, at the same point of the
    program."""
    import numpy as np
    import tensorflow as tf
    mine = np.asarray(value, np.float64)
    given = []

    def per_replica(_context):
        # Called once per local replica; the first carries this worker's value.
        given.append(True)
        return tf.constant(mine if len(given) == 1 else np.zeros_like(mine))
    values = strategy.experimental_distribute_values_from_function(per_replica)
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None).numpy()
    return float(total) if mine.ndim == 0 else total


def worker_index(strategy):
    """This worker's place among the workers, 0 for the chief (a 'chief' task, or worker 0
    of a cluster without one)."""
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return int(resolver.task_id) + (1 if has_chief else 0)


MESSAGE_BYTES = 400   # the most of one worker's error message the others are told


@contextlib.contextmanager
def together(strategy, when):
    """Run a block that a worker may fail alone (reading the data, writing the run's files)
    so that all workers leave it together: each tells the others, in a collective op at the
    block's end, whether and why it failed. A worker that failed raises its own error; the
    others raise one UserError naming the failed worker and its message, instead of waiting
    in the next collective op until gRPC gives up. The block itself must hold no collective
    op. Without several workers, the block as it is."""
    n = num_workers(strategy)
    if n == 1:
        yield
        return
    import numpy as np
    failure = None
    try:
        yield
    except Exception as err:  # noqa: BLE001  (told to the others, then raised again)
        failure = err
    codes = np.zeros((n, MESSAGE_BYTES))
    if failure is not None:
        text = str(failure) if isinstance(failure, UserError) else checkpoints.one_line(failure)
        data = text.encode("utf-8")[:MESSAGE_BYTES] or b"?"   # no zero byte in UTF-8 text
        codes[worker_index(strategy), :len(data)] = list(data)
    told = sum_over_workers(strategy, codes)
    if failure is not None:
        raise failure
    for index, row in enumerate(told):
        if row.any():
            text = bytes(row[row > 0].astype(np.uint8)).decode("utf-8", errors="replace")
            who = "the chief (worker 0)" if index == 0 else f"worker {index}"
            raise UserError(f"{who} stopped {when}: {text}")


def chief_says(strategy, verdict):
    """The chief's yes/no, on every worker (a collective op under several workers, so every
    worker must call it at the same point); `verdict` itself without several workers."""
    if num_workers(strategy) == 1:
        return verdict
    return sum_over_workers(strategy, bool(verdict) and is_chief(strategy)) > 0


class ScratchFolder(RunFolder):
    """A non-chief worker's run folder: everything it writes goes into `scratch`; the
    config (for the data check) is read from the chief's folder."""

    def __init__(self, scratch, chief):
        super().__init__(os.path.join(scratch, "models"), os.path.join(scratch, "results"),
                         chief.run)
        self.chief = chief

    def read_config(self):
        return self.chief.read_config()


@contextlib.contextmanager
def worker_folder(strategy, folder, log):
    """(folder, log) for this process: the run's own with the caller's log on the chief
    (and without several workers); on another worker a ScratchFolder, removed on the way
    out however training ends, and a log that prints only its first line (the chief
    reports for the run)."""
    if is_chief(strategy):
        yield folder, log
        return
    scratch = tempfile.mkdtemp(prefix="skingan-worker-")
    task = strategy.cluster_resolver
    log(f"{task.task_type} {task.task_id} (one of {num_workers(strategy)} workers): training "
        "along with the chief, which writes the run's files; this worker's copies go to "
        f"{scratch} (removed at the end)")
    try:
        yield ScratchFolder(scratch, folder), (lambda *_args, **_kwargs: None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def per_replica_rows(strategy, dataset):
    """The stream of global batches as each replica's share under several workers (see the
    module docstring), via distribute_datasets_from_function, which prefetches to devices.

    A worker with L local replicas keeps rows [w*L*b, (w+1)*L*b) of each global batch
    (w: its index among the workers) and hands them out as L batches of b rows, which that
    function gives to its local replicas in order: local replica i is replica w*L + i."""
    import tensorflow as tf
    replicas = strategy.num_replicas_in_sync

    def worker_rows(context):
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local      # this worker's first replica

        def split(*batch):
            # batch: the global batch, (B, R, R, 3) (and whatever else the stream yields
            # per image); -> (L, b, ...) with b = B / replicas (an even split: check_replicas)
            def rows(t):
                b = tf.shape(t)[0] // replicas
                mine = t[first * b:(first + local) * b]
                # static sizes past the batch axis (the step reads the resolution from them)
                return tf.reshape(mine, [local, -1] + t.shape[1:].as_list())
            parts = tf.nest.map_structure(rows, batch)
            return tf.data.Dataset.from_tensor_slices(parts[0] if len(parts) == 1 else parts)
        return dataset.flat_map(split)

    return strategy.distribute_datasets_from_function(worker_rows)
