"""--devices multiworker: two worker processes on 127.0.0.1 (TF_CONFIG per process, CPU
only) train as one device would, only the chief writes the run's files, and a rerun resumes
every worker from the chief's checkpoint.

Each worker process runs train.py's main twice (a run started, then resumed): a process
joins its cluster once, and starting TensorFlow twice per run would make the file too slow
for a two-core machine. The single-device reference runs in this process while the workers
train. One family (DCGAN, the cheaper step) is enough here: what is multi-worker (the
cluster, the chief's writes, every worker's rows of the global batch, the restore on every
worker) is in the loop, checkpoints.py and multiworker.py, the same for every family; each
family's step on two replicas is test_mirrored.py's."""
import glob
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import train
from conftest import ROOT  # conftest also keeps TensorFlow on the CPU
from skingan.errors import run_cli

tf.config.experimental.enable_op_determinism()

WORKER = r"""
import json, sys
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
import train
from skingan.errors import run_cli
for argv in json.loads(sys.argv[1]):
    run_cli(train.main, argv)
"""

# DCGAN with DiffAugment, whose per-image parameters are drawn for the global batch, so the
# losses only match if each replica gets the real rows its parameters were drawn for; scored
# during training (every worker runs the generator; the chief keeps generator_best.keras).
RUNS = {"dc": ["--model", "dcgan", "--augment", "color,translation,cutout", "--eval-every",
               "3", "--eval-images", "16"]}
COMMON = ["--resolution", "16", "--batch-size", "4", "--channel-scale", "0.125",
          "--sample-every", "3", "--checkpoint-every", "3", "--cache-dir", "none"]
TIMEOUT_S = 480   # generous: a shared machine may be busy; alone the workers take ~40 s


def free_ports(n):
    """n ports free on 127.0.0.1 now (the OS picks them; the sockets close before use)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def invocations(data, models, results, devices, lengths):
    """train.py argument lists: each run for each of `lengths` (iterations) in turn."""
    return [["--data", data, "--run", run, "--models-dir", models, "--results-dir", results,
             "--devices", devices, *flags, *COMMON, "--steps", str(steps)]
            for run, flags in RUNS.items() for steps in lengths]


def losses(results, run):
    with open(os.path.join(results, run, "losses.csv")) as f:
        header = f.readline().strip().split(",")
    return header, np.loadtxt(os.path.join(results, run, "losses.csv"), delimiter=",",
                              skiprows=1, ndmin=2)


def start_workers(tmp_path, argvs, n=2):
    """n worker processes on 127.0.0.1, each running train.py's main with each of `argvs`
    in turn; their output goes to tmp_path/worker<i>.log."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(n)]}
    workers, logs = [], []
    for index in range(n):
        scratch = tmp_path / f"tmp-worker{index}"     # where a worker's copies go
        scratch.mkdir()
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TMPDIR=str(scratch),
                   PYTHONPATH=ROOT, TF_CONFIG=json.dumps(
                       {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        env.pop("SLURM_JOB_ID", None)
        logs.append(open(tmp_path / f"worker{index}.log", "w+"))
        workers.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(argvs)], cwd=ROOT, env=env,
            stdout=logs[-1], stderr=subprocess.STDOUT))
    return workers, logs


def finish_workers(workers, logs):
    """(exit codes, output texts) of the workers, once they end (killed after TIMEOUT_S)."""
    try:
        codes = [w.wait(timeout=TIMEOUT_S) for w in workers]
    finally:
        for w in workers:                           # a failure or timeout: no orphans
            if w.poll() is None:
                w.kill()
                w.wait()
    text = []
    for log in logs:
        log.seek(0)
        text.append(log.read())
        log.close()
    return codes, text


@pytest.mark.slow
def test_two_workers_train_as_one_device_and_only_the_chief_writes(tmp_path, tiny_images):
    shared = tmp_path / "shared"                    # the "shared storage" of both workers
    models, results = str(shared / "models"), str(shared / "results")
    # 3 iterations, then a rerun resuming up to 5
    workers, logs = start_workers(
        tmp_path, invocations(tiny_images, models, results, "multiworker", (3, 5)))
    try:
        # Meanwhile, the same runs on one device in this process, without the break
        # (resuming is exact, test_training.py).
        one = tmp_path / "one"
        for argv in invocations(tiny_images, str(one / "models"), str(one / "results"),
                                "one", (5,)):
            train.main(argv)
    finally:
        codes, text = finish_workers(workers, logs)
    assert codes == [0, 0], "\n".join(text[i][-3000:] for i in range(2))
    chief, other = text

    for run in RUNS:
        header, expected = losses(str(one / "results"), run)
        header_mw, got = losses(results, run)
        assert header_mw == header
        assert got[:, 0].tolist() == [1, 2, 3, 4, 5]     # steps 4 and 5 from the resume
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=run)
    # Every worker resumed from the chief's step-3 checkpoint (a worker that did not would
    # have trained from fresh weights and the losses of steps 4 and 5 would differ).
    assert chief.count("resuming from step 3") == len(RUNS), chief

    # Only the chief wrote: one run folder per run, one TensorBoard writer (the chief's),
    # and the other worker's scratch copies are gone; it printed one line per run.
    assert sorted(os.listdir(models)) == sorted(os.listdir(results)) == sorted(RUNS)
    assert os.path.isfile(os.path.join(models, "dc", "generator_best.keras"))
    with open(os.path.join(results, "dc", "metrics.csv")) as f:
        assert [line.split(",")[0] for line in f.read().split()] == ["step", "3", "5"]
    for run in RUNS:
        assert len(glob.glob(os.path.join(results, run, "tensorboard", "*tfevents*"))) == 2
        assert sorted(os.listdir(os.path.join(models, run, "checkpoints"))) == [
            "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index",
            "ckpt-5.data-00000-of-00001", "ckpt-5.index"]
    assert os.listdir(tmp_path / "tmp-worker1") == []
    lines = other.splitlines()
    assert len([line for line in lines if line.startswith("worker 1 ")]) == 2 * len(RUNS), other
    assert not [line for line in lines if line.startswith(("run '", "step ", "done"))], other


@pytest.mark.slow
def test_a_chief_that_fails_before_training_stops_every_worker_in_one_line(tmp_path,
                                                                          tiny_images):
    """The chief refuses to write into a results folder holding someone else's files; the
    other worker, whose own (scratch) folders are empty, must not wait for it in a
    collective op until gRPC gives up, but end with the chief's reason, exit 2."""
    models, results = tmp_path / "models", tmp_path / "results"
    (results / "r").mkdir(parents=True)
    (results / "r" / "notes.txt").write_text("not a run's file")
    argv = ["--data", tiny_images, "--run", "r", "--models-dir", str(models),
            "--results-dir", str(results), "--devices", "multiworker", "--model", "dcgan",
            *COMMON, "--steps", "1"]
    codes, (chief, other) = finish_workers(*start_workers(tmp_path, [argv]))
    assert codes == [2, 2], chief[-3000:] + other[-3000:]
    reason = f"{results / 'r'} already holds files but no run config"
    for text, prefix in ((chief, "error: "),
                         (other, "error: the chief (worker 0) stopped before training: ")):
        assert "Traceback" not in text, text[-3000:]
        errors = [line for line in text.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(prefix + reason), text[-3000:]
    assert not models.exists()                          # nothing was written


def test_no_cluster_is_one_line_and_exit_2(tmp_path, tiny_images, monkeypatch, capsys):
    for name in ("TF_CONFIG", "SLURM_JOB_ID", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    argv = ["--data", tiny_images, "--models-dir", str(tmp_path / "m"), "--results-dir",
            str(tmp_path / "r"), "--devices", "multiworker"]
    with pytest.raises(SystemExit) as exit_:
        run_cli(train.main, argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --devices multiworker needs a cluster") and "\n" not in err
    assert not os.path.exists(tmp_path / "m")           # nothing was written

    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(SystemExit):
        run_cli(train.main, argv)
    assert capsys.readouterr().err.startswith("error: TF_CONFIG is not valid JSON")


def test_cluster_is_read_from_tf_config_first_then_slurm(monkeypatch):
    from skingan import multiworker
    from skingan.errors import UserError
    monkeypatch.delenv("TF_CONFIG", raising=False)
    slurm = dict(SLURM_JOB_ID="77", SLURM_PROCID="1", SLURM_STEP_NUM_TASKS="2",
                 SLURM_STEP_NODELIST="gpu[07-08]", SLURM_STEP_TASKS_PER_NODE="1(x2)")
    for name, value in slurm.items():
        monkeypatch.setenv(name, value)
    resolver = multiworker.cluster_resolver()
    assert resolver.cluster_spec().as_dict() == {"worker": ["gpu07:8888", "gpu08:8888"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert resolver.num_accelerators() == {}            # this CPU-only process: no GPU
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""     # left as it was

    tf_config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    resolver = multiworker.cluster_resolver()
    assert resolver.cluster_spec().as_dict() == tf_config["cluster"]
    assert (resolver.task_type, resolver.task_id) == ("worker", 0)

    # SLURM_JOB_ID and SLURM_PROCID without srun's step variables: a batch script's own
    # shell ran train.py
    monkeypatch.delenv("TF_CONFIG")
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS")
    with pytest.raises(UserError, match="cannot read the cluster from Slurm.*srun"):
        multiworker.cluster_resolver()


def test_a_signal_to_one_worker_stops_all_at_the_same_iteration(monkeypatch):
    """Each iteration the workers add up who got a signal (the sum is a collective op,
    exercised for real in the two-process test; here it reports the other worker's)."""
    import signal

    from skingan import loop, multiworker
    monkeypatch.setattr(multiworker, "num_workers", lambda strategy: 2)
    told = []
    monkeypatch.setattr(multiworker, "sum_over_workers",
                        lambda strategy, mine: told.append(mine) or (1 if len(told) == 3 else 0))
    stop = loop.StopRequest(tf.distribute.get_strategy())
    assert [stop.requested() for _ in range(3)] == [False, False, True]
    assert told == [False, False, False]                # this worker got none itself
    assert stop.signal == signal.SIGTERM                # so it stops as for SIGTERM


GATHER = r"""
import json, sys
import tensorflow as tf
from skingan.stylegan2_step import _strided_reals
strategy = tf.distribute.MultiWorkerMirroredStrategy()
rows = tf.reshape(tf.range(4 * 3, dtype=tf.float32), [4, 3])      # a global batch of 4
# replica k holds the contiguous rows [2k, 2k + 2), as the data stream hands them out
local = strategy.experimental_distribute_values_from_function(
    lambda ctx: rows[2 * ctx.replica_id_in_sync_group:2 * ctx.replica_id_in_sync_group + 2])
got = tf.function(lambda x: strategy.run(_strided_reals, args=(x,)))(local)
print("ROWS" + json.dumps(strategy.experimental_local_results(got)[0][:, 0].numpy().tolist()))
"""


@pytest.mark.slow
def test_stylegan2s_strided_rows_are_gathered_across_two_workers(tmp_path):
    """StyleGAN2's step gathers the real rows over the replicas and takes every R-th
    (stylegan2_step._strided_reals). With one device per worker the replica function has
    no device scope, which all_gather once refused ("destinations can not be empty"):
    worker k must get rows k and k + 2 of the global batch."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = [subprocess.Popen(
        [sys.executable, "-c", GATHER], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})))
        for index in range(2)]
    try:
        out = [w.communicate(timeout=TIMEOUT_S)[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    rows = [json.loads(next(line[4:] for line in text.splitlines() if line.startswith("ROWS")))
            if "ROWS" in text else text[-2000:] for text in out]
    assert rows == [[0.0, 6.0], [3.0, 9.0]], rows   # rows 0, 2 and 1, 3 (first column: 3 r)

