"""The one training loop, for every family: data in, components built, checkpoint restored,
then iterations of the family's compiled step with the events (events.py) on their
schedules. train.py turns flags into settings and calls `train`.

One iteration: the tf.data stream yields the real batch of this step (a pure function of
seed and step, data_loader.py) -> train_step(real) runs one D and one G update on the
device and returns scalar tensors -> every log interval (or whenever an event is due) those
are read back, checked for NaN, logged, and the due events run.
"""
import dataclasses
import signal
import time

from skingan import checkpoints, multiworker
from skingan.components import build_components, pick_strategy
from skingan.config import total_iterations
from skingan.errors import UserError
from skingan.runs import RunFolder


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; the run stops and keeps its last good checkpoint."""


class StopRequest:
    """Ctrl-C / SIGTERM set a flag; the loop saves a checkpoint and exits at the next step.
    A second Ctrl-C aborts at once."""

    def __init__(self, strategy=None):
        self.signal = None
        self._previous = {}
        self._workers = strategy if strategy and multiworker.num_workers(strategy) > 1 else None

    def install(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        print(f"\n{signal.Signals(signum).name} received: saving a checkpoint, then stopping "
              "(Ctrl-C again to abort without saving)", flush=True)

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def requested(self):
        """Whether to stop after this iteration. Several workers decide together, every
        iteration (a signal may reach them one iteration apart, and a worker stopping alone
        would leave the others waiting in the next step's all-reduce): one asked, all stop;
        one that got no signal itself stops as for SIGTERM."""
        if self._workers is None:
            return self.signal is not None
        if multiworker.sum_over_workers(self._workers, self.signal is not None):
            self.signal = self.signal or signal.SIGTERM
        return self.signal is not None


def load_training_data(cfg, folder, cache_dir, log):
    """The run's images (uint8 (N, R, R, 3)), their class indices ((N,) int32 for a
    conditional run, else None) and the data description; on resume, refuse data that
    changed since the run began. A conditional run's class names and counts go into
    `cfg` (so into config.json): its networks' size and its class sampling depend on them."""
    import data_loader
    data_path = cfg["data"]
    if cfg["demo"]:
        from skingan import demo_data
        if cfg["conditional"]:
            data_path = demo_data.ensure_multiclass_demo_data(demo_data.MULTICLASS_ROOT, log=log)
        else:
            data_path = demo_data.ensure_demo_data(demo_data.DEMO_ROOT, log=log)
        log("no --data given: training on the built-in demo data (synthetic lesions"
            + (", several classes" if cfg["conditional"] else "") + "), short preset")
    class_ids = None
    if cfg["conditional"]:
        images, class_ids, info = data_loader.load_labelled_data(
            data_path, labels=cfg["labels"],
            classes=data_loader.parse_class_list(cfg["class_name"] or "all"),
            resolution=cfg["resolution"], crop=cfg["crop"], cache_dir=cache_dir, log=log,
            exclude=cfg.get("exclude"))
    else:
        images, info = data_loader.load_data(
            data_path, labels=cfg["labels"], class_name=cfg["class_name"],
            resolution=cfg["resolution"], crop=cfg["crop"], cache_dir=cache_dir, log=log,
            exclude=cfg.get("exclude"))
    stored = folder.read_config()
    if stored is not None:
        then = stored.get("data", {}).get("num_images")
        if then is not None and then != info["num_images"]:
            raise UserError(f"the data changed since run '{folder.run}' began: {then} images "
                            f"then, {info['num_images']} now; resume on the same data or "
                            "start a new --run")
    if cfg["conditional"]:
        now = dict(classes=info["classes"], class_counts=info["class_counts"])
        for key, value in now.items():
            if cfg.get(key) is not None and list(cfg[key]) != value:
                raise UserError(
                    f"run '{folder.run}' was trained on {describe_classes(cfg)}; the data now "
                    f"gives {describe_classes(now)}. Resume on the same classes or start a "
                    "new --run")
        cfg.update(now)
    return images, class_ids, info


def load_heldout(cfg, data_info, train_images, cache_dir, log):
    """The run's held-out images for the data-copying test during training: the images of
    its data and class that --exclude leaves out (a classifier split's validation and test
    folds), uint8 (N, R, R, 3) as training loads them; None without --exclude, for a
    conditional run, or when none is left (one line says why)."""
    import data_loader
    from skingan import copying
    if not cfg.get("exclude"):
        return None
    if cfg["conditional"]:
        log("C_T during training is off: a conditional run's copying test is per class "
            "(evaluate.py --copying with --train/--heldout folders)")
        return None
    source = data_loader.find_images(data_info["path"], data_info["labels"], data_info["class"])
    excluded = data_loader.read_exclusions(cfg["exclude"])
    paths = [p for p in source.paths if data_loader.image_id(p) in excluded]
    if not paths:
        log(f"C_T during training is off: {cfg['exclude']} holds out no image of this data")
        return None
    heldout = dataclasses.replace(source, paths=paths)
    images = data_loader.load_images(heldout, cfg["resolution"], crop=cfg["crop"],
                                     cache_dir=cache_dir, log=log)
    try:      # ids cannot overlap (--exclude removed them); identical pixels can
        copying.check_no_overlap(data_info["image_ids"], paths, train_images, images)
    except copying.CopyingError as err:
        log(f"C_T during training is off: {err}")
        return None
    return images


def describe_classes(cfg):
    """'classes akiec 40, df 60, ...' for messages."""
    return "classes " + ", ".join(f"{n} {c}" for n, c in zip(cfg["classes"],
                                                             cfg["class_counts"]))


def make_tracker(cfg, images, class_ids, folder, log, data_info, cache_dir):
    """The quality scores during training (--eval-every), or None when they are off; with
    the held-out images of an --exclude split, the data-copying test too."""
    if not cfg["eval_every"]:
        return None
    from skingan.quality import QualityTracker
    return QualityTracker(images, cfg["eval_images"], cfg["seed"], folder.out_dir,
                          fid=cfg["eval_fid"], inception_weights=cfg["inception_weights"],
                          log=log, class_ids=class_ids,
                          heldout_uint8=load_heldout(cfg, data_info, images, cache_dir, log))


def make_events(cfg, parts, folder, store, images, class_ids, train_log, tracker, log):
    import numpy as np

    from skingan import events
    from skingan.monitoring import HealthMonitor
    health = HealthMonitor()
    if parts.classes:       # a conditional grid is judged class by class (monitoring.py)
        real_diversity = {c: HealthMonitor.diversity(images[class_ids == c][:256])
                          for c in range(len(parts.classes))
                          if np.count_nonzero(class_ids == c) >= 2}
    else:
        real_diversity = HealthMonitor.diversity(images[:256])
    found = [events.Progress(cfg["log_every"], cfg["batch_size"], log),
             events.SampleGrid(cfg["sample_every"], parts, folder, train_log, health,
                               real_diversity, log)]
    if tracker:
        found.append(events.QualityScore(cfg["eval_every"], parts, folder, tracker, store,
                                         train_log, log))
    found.append(events.Checkpoint(cfg["checkpoint_every"], store))
    return found, health


def make_stream(cfg, parts, images, step, class_ids=None):
    import data_loader
    dataset = data_loader.make_dataset(
        images, cfg["batch_size"], seed=cfg["seed"], value_range=parts.family.value_range,
        hflip=cfg["hflip"], vflip=cfg["vflip"], rot90=cfg["rot90"], start_step=step,
        partial_batches=cfg.get("epochs") is not None, class_ids=class_ids,
        class_balance=cfg["class_balance"])
    if multiworker.num_workers(parts.strategy) > 1:
        dataset = multiworker.per_replica_rows(parts.strategy, dataset)
    elif parts.strategy.num_replicas_in_sync > 1:
        dataset = parts.strategy.experimental_distribute_dataset(dataset)
    return dataset


def check_replicas(cfg, replicas, num_images):
    """Every batch, an epoch's partial last one included, must split evenly over devices."""
    sizes = {cfg["batch_size"]}
    if cfg.get("epochs") is not None and num_images % cfg["batch_size"]:
        sizes.add(num_images % cfg["batch_size"])
    for size in sorted(sizes):
        if size % replicas:
            raise UserError(f"a batch of {size} images does not split evenly over "
                            f"{replicas} devices; choose another --batch-size")


def train(cfg, run, models_dir, results_dir, strategy=None, log=print, handle_signals=True,
          cache_dir=None):
    """Train (or resume) run `run` with settings `cfg` up to its length (--steps or --epochs).

    cache_dir: where decoded images are cached between runs (None: decode every time).
    Returns a dict with the final step, the paths, why it stopped and the training
    throughput (images/s over the intervals after the first, which holds the tf.function
    tracing; time spent on samples and checkpoints excluded). Raises UserError for bad
    input and NonFiniteLossError when a loss diverges.

    Under several workers (--devices multiworker) every worker calls this; only the chief
    writes the run's folders (multiworker.py).
    """
    # First: MultiWorkerMirroredStrategy must be set up before TensorFlow runs any op.
    strategy = strategy or pick_strategy(cfg["devices"])
    with multiworker.worker_folder(strategy, RunFolder(models_dir, results_dir, run),
                                   log) as (folder, log):
        return _train(cfg, run, folder, strategy, log, handle_signals, cache_dir)


def _train(cfg, run, folder, strategy, log, handle_signals, cache_dir):
    from skingan.monitoring import TrainingLog
    # Under several workers, one that fails in these blocks (its data, the chief's folder)
    # stops them all, each with one line, rather than leaving the others in a collective op.
    with multiworker.together(strategy, "before training"):
        if not folder.exists():
            folder.check_can_start()
        images, class_ids, data_info = load_training_data(cfg, folder, cache_dir, log)
        replicas = strategy.num_replicas_in_sync
        check_replicas(cfg, replicas, len(images))
        tracker = make_tracker(cfg, images, class_ids, folder, log, data_info, cache_dir)
    parts = build_components(cfg, strategy)
    total = total_iterations(cfg, len(images))
    store = checkpoints.Checkpoints(checkpoints.RunCheckpoint(parts, tracker), folder,
                                    cfg["keep_checkpoints"], log)
    # Restored before anything is written: when no checkpoint restores, the folder is left
    # exactly as it was.
    step = store.restore()
    with multiworker.together(strategy, "before training"):
        image_ids = data_info.pop("image_ids")
        folder.write_config(cfg, data_info, parts.family.value_range)
        folder.write_trained_images(image_ids)
        if tracker:
            tracker.start_log(step)

    log(f"run '{run}': {cfg['model']} {cfg['resolution']}px, batch {cfg['batch_size']}, "
        + (f"{cfg['epochs']} epochs = " if cfg.get("epochs") is not None else "")
        + f"{total} iterations, {replicas} device(s)"
        f"{', XLA' if cfg['xla'] else ''}{', bf16' if cfg['mixed_precision'] else ''}; "
        + (f"resuming from step {step}" if step else "starting from step 0"))
    log(f"  checkpoints: {folder.run_dir}\n  samples and logs: {folder.out_dir}")
    if step >= total:
        log(f"run '{run}' is already at step {step} of {total}: nothing to do (pass a larger "
            f"--{'epochs' if cfg.get('epochs') is not None else 'steps'} to continue it)")
        return {"step": step, "run_dir": folder.run_dir, "results_dir": folder.out_dir,
                "stopped": "done"}

    train_log = TrainingLog(folder.out_dir, list(parts.metric_names), resume_step=step)
    events, health = make_events(cfg, parts, folder, store, images, class_ids, train_log,
                                 tracker, log)
    stop = StopRequest(parts.strategy)
    if handle_signals:
        stop.install()
    try:
        stream = make_stream(cfg, parts, images, step, class_ids)
        result = run_iterations(cfg, parts, stream, step, total, len(images), events, health,
                                train_log, stop, store, log)
    finally:
        stop.restore()
        train_log.close()
    if result["stopped"] == "done":
        log(f"done: step {result['step']}. Samples and loss curve in {folder.out_dir}; "
            f"generate images with python generate.py --run {run} --n 500"
            + (" --class all" if cfg["conditional"] else ""))
        log(folder.disk_usage_text())
    return dict(result, run_dir=folder.run_dir, results_dir=folder.out_dir)


def read_back(pending, last_saved):
    """Metrics of the steps since the last read, as floats; stop on a NaN or Inf."""
    from skingan.monitoring import first_non_finite
    rows = [(s, {k: float(v) for k, v in m.items()}) for s, m in pending]
    bad = first_non_finite(rows)
    if bad:
        raise NonFiniteLossError(
            f"{bad[1]} became {bad[2]} at step {bad[0]}; training stopped, the last good "
            f"checkpoint (step {last_saved}) is kept. Try a lower --lr or --mixed-precision "
            "off")
    return rows


def run_iterations(cfg, parts, dataset, step, total, num_images, events, health, train_log,
                   stop, store, log):
    """Iterate the step over the stream until `total` or a stop request, running the due
    events. `store` (checkpoints.Checkpoints) says which step was saved last, and saves
    on a stop request that came during the events. Returns {"step", "stopped",
    "images_per_sec"}."""
    from skingan.checkpoints import disk_full_stops, last_good
    from skingan.events import LoopState
    from data_loader import iterations_per_epoch
    start = step
    per_epoch = iterations_per_epoch(num_images, cfg["batch_size"])
    state = LoopState(step=step, total=total)
    pending, timer = [], (time.perf_counter(), step)
    steady = [0, 0.0]                               # images and seconds after tracing
    for real in dataset:
        pending.append((step + 1, parts.train_step(real)))
        step += 1
        state.step, state.stopping = step, stop.requested()
        due = [event for event in events if event.due(state)]
        if not due:
            continue
        # Reading the metrics back waits for the device: only when an event needs them,
        # so the host never stalls the accelerator between steps.
        state.rows, pending = read_back(pending, store.last_saved), []
        train_log.add_rows(state.rows)
        for s, metrics in state.rows:
            warning = health.update(s, metrics)
            if warning:
                log(warning)
        seconds = time.perf_counter() - timer[0]
        images_done = images_between(cfg, timer[1], step, num_images)
        if timer[1] > start:                        # the first interval holds tracing
            steady[0] += images_done
            steady[1] += seconds
        state.rate = images_done / max(seconds, 1e-9)
        if cfg.get("epochs") is not None:
            state.epoch = f" (epoch {-(-step // per_epoch)}/{cfg['epochs']})"
        # a full disk while writing samples, scores or logs stops the run in one line too
        with disk_full_stops(None, last_good(store.last_saved)):
            for event in due:
                event(state)
            train_log.flush()
        timer = (time.perf_counter(), step)         # the next rate excludes the events
        if stop.signal is not None:
            store.save(step)                        # done already unless the signal
                                                    # came during the events
            log(f"stopped at step {step}; checkpoint saved. Rerun the same command to resume.")
            return {"step": step, "stopped": signal.Signals(stop.signal).name,
                    "images_per_sec": None}
        if state.finished:
            break
    return {"step": step, "stopped": "done",
            "images_per_sec": steady[0] / steady[1] if steady[1] else None}


def images_between(cfg, first, last, num_images):
    """Real images trained on in iterations first+1 .. last: B each, except that in an
    epoch-based run the last batch of each epoch holds only N - (K - 1) * B (K batches
    per epoch)."""
    batch = cfg["batch_size"]
    if cfg.get("epochs") is None:
        return (last - first) * batch
    from data_loader import iterations_per_epoch
    per_epoch = iterations_per_epoch(num_images, batch)
    partial = num_images - (per_epoch - 1) * batch
    return sum(partial if s % per_epoch == per_epoch - 1 else batch for s in range(first, last))
