"""Train SL-StyleGAN or DCGAN on one class of skin-lesion images; rerun to resume.

    python train.py                                   # built-in demo data, short preset
    python train.py --data Datasets/ISIC2018 --class DF
    python train.py --data Datasets/HAM10000 --class df --model dcgan
    python train.py --data Datasets/ISIC2018 --class DF --steps 40000   # continue further

Everything a run needs to continue lives in SavedModels/<run>/ (config.json, checkpoints,
generator.keras); what it produces to look at lives in Results/<run>/ (sample grids,
losses.csv, losses.png, TensorBoard). Ctrl-C or SIGTERM saves a checkpoint first.
"""
import argparse
import functools
import json
import os
import platform
import signal
import sys
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from skingan.errors import UserError, run_cli  # noqa: E402

# Settings every run has whatever its family; family defaults (families.py) add the rest.
COMMON_DEFAULTS = dict(model="sl-stylegan", latent_dim=100, channel_scale=1.0, seed=0,
                       data=None, labels=None, class_name=None, crop="resize", hflip=True,
                       vflip=False, rot90=False, log_every=10, xla=False,
                       mixed_precision=False, devices="auto", keep_checkpoints=3,
                       eval_every=0, eval_images=500, eval_fid=False, inception_weights=None,
                       augment="", ema=0.0)
# A resumed run must keep these: they define the model and the data it learns.
IDENTITY_KEYS = ("model", "resolution", "latent_dim", "channel_scale", "data", "labels",
                 "class_name", "crop")
# Changing these would make the continued run a different experiment from the one begun.
FIXED_KEYS = ("batch_size", "lr", "beta1", "beta2", "lr_decay", "seed", "hflip", "vflip",
              "rot90", "augment", "ema")
GRID_COLS, GRID_ROWS = 8, 4  # the authors' 8 x 4 grid; the bottom row uses fixed latents


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; the run stops and keeps its last good checkpoint."""


# ----------------------------------------------------------------------------- config

def resolve_config(explicit, models_dir):
    """(run name, config) from the flags given on the command line.

    `explicit` holds only flags the user gave. A new run fills the rest from the family's
    paper defaults (or the demo preset when no --data is given); an existing run takes its
    stored config and accepts changes only to how long and how it is run (steps,
    intervals, XLA, precision, devices).
    """
    from skingan.families import get_family

    explicit = dict(explicit)
    run = explicit.pop("run", None)
    if explicit.get("data") is not None:
        explicit["data"] = os.path.abspath(explicit["data"])
    if explicit.get("labels") is not None:
        explicit["labels"] = os.path.abspath(explicit["labels"])

    model = explicit.get("model", COMMON_DEFAULTS["model"])
    family = get_family(model)
    is_demo = explicit.get("data") is None
    cfg = dict(COMMON_DEFAULTS)
    cfg.update(family.defaults)
    if is_demo:
        cfg.update(family.demo)
    cfg.update(explicit)
    cfg["demo"] = is_demo
    run = run or default_run_name(cfg)

    stored_path = os.path.join(models_dir, run, "config.json")
    if not os.path.exists(stored_path):
        return run, cfg
    with open(stored_path) as f:
        stored = json.load(f)["settings"]
    differences = [
        f"--{key.replace('_', '-')} was {stored.get(key)!r}, now {explicit[key]!r}"
        for key in IDENTITY_KEYS + FIXED_KEYS
        if key in explicit and explicit[key] != stored.get(key)]
    if differences:
        raise UserError(
            f"run '{run}' exists with other settings ({'; '.join(differences)}); rerun with "
            f"its settings to resume it, or give --run NEW_NAME to start a new run")
    stored.update({k: v for k, v in explicit.items()
                   if k not in IDENTITY_KEYS + FIXED_KEYS})
    return run, stored


def default_run_name(cfg):
    """<model>-<data>-<resolution>px, so that rerunning the same command finds its run."""
    if cfg["demo"]:
        tag = "demo"
    elif cfg.get("class_name"):
        tag = cfg["class_name"].lower()
    else:
        tag = os.path.basename(os.path.normpath(cfg["data"])).lower() or "data"
    return f"{cfg['model']}-{tag}-{cfg['resolution']}px"


def package_versions():
    import keras
    import numpy
    import tensorflow as tf
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__,
            "platform": platform.platform()}


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- signals

class StopRequest:
    """Ctrl-C / SIGTERM set a flag; the loop saves a checkpoint and exits at the next step.
    A second Ctrl-C aborts at once."""

    def __init__(self):
        self.signal = None
        self._previous = {}

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


# ----------------------------------------------------------------------------- training

def pick_strategy(devices):
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if devices == "mirrored" or (devices == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def make_optimizer(cfg):
    """Adam with Keras 2's `decay`: lr_t = lr / (1 + decay * t), t = updates so far."""
    import keras
    lr = cfg["lr"]
    if cfg["lr_decay"]:
        lr = keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1,
                                                         decay_rate=cfg["lr_decay"])
    return keras.optimizers.Adam(learning_rate=lr, beta_1=cfg["beta1"], beta_2=cfg["beta2"])


def train(cfg, run, models_dir, results_dir, strategy=None, log=print, handle_signals=True,
          cache_dir=None):
    """Train (or resume) run `run` with settings `cfg` up to cfg['steps'] iterations.

    cache_dir: where decoded images are cached between runs (None: decode every time).
    Returns a dict with the final step, the paths, why it stopped and the training
    throughput (images/s over the steps after the first log interval, which holds the
    tf.function tracing; time spent writing samples and checkpoints excluded). Raises
    UserError for bad input and NonFiniteLossError when a loss diverges.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from skingan import augment
    import data_loader
    from skingan import images as image_io
    from skingan import steps
    from skingan.families import get_family
    from skingan.monitoring import HealthMonitor, TrainingLog, first_non_finite

    family = get_family(cfg["model"])
    run_dir = os.path.join(models_dir, run)
    out_dir = os.path.join(results_dir, run)
    config_path = os.path.join(run_dir, "config.json")
    resuming = os.path.exists(config_path)
    if not resuming:
        for folder in (run_dir, out_dir):
            if os.path.isdir(folder) and os.listdir(folder):
                raise UserError(f"{folder} already holds files but no run config; move it "
                                "away or choose another --run name (nothing was overwritten)")

    # ---- data: one class, decoded once, streamed as a pure function of (seed, step)
    data_path = cfg["data"]
    if cfg["demo"]:
        from skingan.demo_data import ensure_demo_data
        data_path = ensure_demo_data(os.path.join(ROOT, "Datasets", "demo"), log=log)
        log("no --data given: training on the built-in demo data (synthetic lesions), "
            "short preset")
    images, data_info = data_loader.load_data(
        data_path, labels=cfg["labels"], class_name=cfg["class_name"],
        resolution=cfg["resolution"], crop=cfg["crop"], cache_dir=cache_dir, log=log)
    if resuming:
        with open(config_path) as f:
            before = json.load(f)
        then = before.get("data", {}).get("num_images")
        if then is not None and then != data_info["num_images"]:
            raise UserError(f"the data changed since run '{run}' began: {then} images then, "
                            f"{data_info['num_images']} now; resume on the same data or "
                            "start a new --run")

    # ---- models, optimizers and everything the checkpoint holds
    strategy = strategy or pick_strategy(cfg["devices"])
    replicas = strategy.num_replicas_in_sync
    if cfg["batch_size"] % replicas:
        raise UserError(f"--batch-size {cfg['batch_size']} does not split evenly over "
                        f"{replicas} devices")
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if cfg["mixed_precision"] else "float32")
    keras.utils.set_random_seed(cfg["seed"])
    with strategy.scope():
        try:  # the layers keep the policy they were built with
            generator, discriminator = family.build(cfg, replicas)
            ema_generator = None
            if cfg["ema"]:
                ema_generator = keras.models.clone_model(generator)
                ema_generator.set_weights(generator.get_weights())
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
        g_optimizer, d_optimizer = make_optimizer(cfg), make_optimizer(cfg)
        # Keras 3 optimizers must be built inside the strategy scope before the first step.
        g_optimizer.build(generator.trainable_variables)
        d_optimizer.build(discriminator.trainable_variables)
    res, latent = cfg["resolution"], cfg["latent_dim"]
    rng = tf.random.Generator.from_seed(cfg["seed"])
    fixed = np.random.RandomState(cfg["seed"])
    sample_z = tf.Variable(fixed.standard_normal((GRID_COLS, latent)).astype("float32"),
                           trainable=False)
    sample_noise = tf.Variable(fixed.standard_normal((GRID_COLS, res, res, 1)).astype("float32"),
                               trainable=False)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    os.makedirs(run_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    # The config goes first, so that whatever is written next belongs to a known run.
    write_json(config_path, {"run": run, "settings": cfg, "data": data_info,
                             "versions": package_versions(), "command": sys.argv,
                             "value_range": list(family.value_range)})
    tracker = None
    if cfg["eval_every"]:
        if res < 16:
            raise UserError("--eval-every needs --resolution 16 or more (SWD's coarsest "
                            "level is 16 px)")
        from skingan.quality import QualityTracker
        tracker = QualityTracker(images, cfg["eval_images"], cfg["seed"], out_dir,
                                 fid=cfg["eval_fid"],
                                 inception_weights=cfg["inception_weights"], log=log)
    # Keras 3 models are not traversed by tf.train.Checkpoint, so their variables go in
    # as lists: weights, BatchNorm statistics and Dropout's random state alike.
    checkpoint = tf.train.Checkpoint(
        generator=list(generator.variables), discriminator=list(discriminator.variables),
        g_optimizer=g_optimizer, d_optimizer=d_optimizer, step=step_var, rng=rng,
        sample_z=sample_z, sample_noise=sample_noise)
    if ema_generator is not None:
        checkpoint.ema_generator = list(ema_generator.variables)
    if tracker:
        checkpoint.best_score = tracker.best
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(run_dir, "checkpoints"),
                                         max_to_keep=cfg["keep_checkpoints"])
    if manager.latest_checkpoint:
        try:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as err:
            raise UserError(f"checkpoint {manager.latest_checkpoint} does not fit the model "
                            f"these settings build ({str(err).splitlines()[0]})") from None
    start = step = int(step_var.numpy())
    if tracker:
        tracker.start_log(step)

    log(f"run '{run}': {cfg['model']} {res}px, batch {cfg['batch_size']}, "
        f"{cfg['steps']} iterations, {replicas} device(s)"
        f"{', XLA' if cfg['xla'] else ''}{', bf16' if cfg['mixed_precision'] else ''}; "
        + (f"resuming from step {step}" if step else "starting from step 0"))
    log(f"  checkpoints: {run_dir}\n  samples and logs: {out_dir}")
    if step >= cfg["steps"]:
        log(f"run '{run}' is already at step {step} >= --steps {cfg['steps']}: nothing to do "
            "(pass a larger --steps to continue it)")
        return {"step": step, "run_dir": run_dir, "results_dir": out_dir, "stopped": "done"}

    dataset = data_loader.make_dataset(
        images, cfg["batch_size"], seed=cfg["seed"], value_range=family.value_range,
        hflip=cfg["hflip"], vflip=cfg["vflip"], rot90=cfg["rot90"], start_step=step)
    if replicas > 1:
        dataset = strategy.experimental_distribute_dataset(dataset)
    train_step = family.make_step(
        generator, discriminator, g_optimizer, d_optimizer, rng,
        global_batch=cfg["batch_size"], latent_dim=latent, resolution=res,
        strategy=strategy, jit_compile=cfg["xla"],
        augment_policy=augment.parse_policy(cfg["augment"]), value_range=family.value_range,
        ema_update=steps.make_ema_update(generator, ema_generator, cfg["ema"])
        if ema_generator is not None else None)
    # what is sampled, scored and exported: the weight average when there is one
    shown = ema_generator if ema_generator is not None else generator

    metric_names = ["d_loss", "g_loss", "acc_real", "acc_fake", "d_real", "d_fake"]
    if family.uses_noise:
        metric_names.insert(2, "r1")
    train_log = TrainingLog(out_dir, metric_names, resume_step=step)
    health = HealthMonitor()
    real_diversity = HealthMonitor.diversity(images[:256])

    def generate(z, noise):
        inputs = [z, noise] if family.uses_noise else z
        return image_io.to_uint8(shown(inputs, training=False).numpy(), family.value_range)

    def write_samples():
        # Rows 1-3: latents drawn for this snapshot; bottom row: the run's fixed latents.
        draw = np.random.RandomState([cfg["seed"], step])
        n = GRID_COLS * (GRID_ROWS - 1)
        z = draw.standard_normal((n, latent)).astype("float32")
        noise = draw.standard_normal((n, res, res, 1)).astype("float32")
        fakes = np.concatenate([generate(z, noise), generate(sample_z, sample_noise)])
        grid = image_io.make_grid(fakes, GRID_ROWS, GRID_COLS)
        image_io.save_png(grid, os.path.join(out_dir, f"samples_{step:06d}.png"))
        train_log.add_image("samples", grid, step)
        warning = health.check_samples(step, fakes, real_diversity)
        if warning:
            log(warning)

    def evaluate_quality():
        scores, improved = tracker.evaluate(step, generate, latent, res)
        train_log.scalars(step, {k: v for k, v in scores.items() if v is not None})
        text = "  ".join(f"{k} {v:.4g}" for k, v in scores.items() if v is not None)
        log(f"quality at step {step}: {text}" + ("  (best so far: saved as generator_best.keras)"
                                                 if improved else ""))
        if improved:
            tmp = os.path.join(run_dir, "generator_best.tmp.keras")
            shown.save(tmp)
            os.replace(tmp, os.path.join(run_dir, "generator_best.keras"))

    def save_checkpoint():
        step_var.assign(step)
        manager.save(checkpoint_number=step)
        tmp = os.path.join(run_dir, "generator.tmp.keras")
        shown.save(tmp)
        os.replace(tmp, os.path.join(run_dir, "generator.keras"))

    stop = StopRequest()
    if handle_signals:
        stop.install()
    pending = []          # (step, dict of scalar tensors) not yet read back from the device
    last_saved = step
    timer_start, timer_step = time.perf_counter(), step
    stopped = "done"
    steady_steps, steady_seconds = 0, 0.0
    try:
        for real in dataset:
            pending.append((step + 1, train_step(real)))
            step += 1
            at_sample = step % cfg["sample_every"] == 0
            at_checkpoint = step % cfg["checkpoint_every"] == 0
            last = step >= cfg["steps"] or stop.signal is not None
            if not (step % cfg["log_every"] == 0 or at_sample or at_checkpoint or last):
                continue
            # Reading the metrics back waits for the device: done every log_every steps
            # only, so the host never stalls the accelerator between steps.
            rows = [(s, {k: float(v) for k, v in m.items()}) for s, m in pending]
            pending = []
            bad = first_non_finite(rows)
            if bad:
                raise NonFiniteLossError(
                    f"{bad[1]} became {bad[2]} at step {bad[0]}; training stopped, the last "
                    f"good checkpoint (step {last_saved}) is kept. Try a lower --lr or "
                    "--mixed-precision off")
            train_log.add_rows(rows)
            for s, metrics in rows:
                warning = health.update(s, metrics)
                if warning:
                    log(warning)
            elapsed = time.perf_counter() - timer_start
            if timer_step > start:  # the first interval holds tracing and compilation
                steady_steps += step - timer_step
                steady_seconds += elapsed
            rate = (step - timer_step) * cfg["batch_size"] / max(elapsed, 1e-9)
            eta = (cfg["steps"] - step) * cfg["batch_size"] / max(rate, 1e-9)
            m = rows[-1][1]
            log(f"step {step}/{cfg['steps']}  d {m['d_loss']:.4f}  g {m['g_loss']:.4f}  "
                f"D acc real {m['acc_real']:.2f} fake {m['acc_fake']:.2f}  "
                f"{rate:.1f} img/s  ETA {format_seconds(eta)}")
            if at_sample or last:
                write_samples()
                train_log.plot(f"{run}: {cfg['model']} {res}px")
            if tracker and (step % cfg["eval_every"] == 0 or step >= cfg["steps"]):
                evaluate_quality()
            if at_checkpoint or last:
                save_checkpoint()
                last_saved = step
            train_log.flush()
            # the next rate excludes the time spent on samples and checkpoints here
            timer_start, timer_step = time.perf_counter(), step
            if stop.signal is not None:
                if last_saved != step:  # the signal came after this step's checks
                    save_checkpoint()
                    last_saved = step
                stopped = signal.Signals(stop.signal).name
                log(f"stopped at step {step}; checkpoint saved. Rerun the same command to "
                    "resume.")
                break
            if step >= cfg["steps"]:
                break
    finally:
        stop.restore()
        train_log.close()
    if stopped == "done":
        log(f"done: step {step}. Samples and loss curve in {out_dir}; generate images with "
            f"python generate.py --run {run} --n 500 --out {os.path.join(out_dir, 'generated')}")
    return {"step": step, "run_dir": run_dir, "results_dir": out_dir, "stopped": stopped,
            "images_per_sec": steady_steps * cfg["batch_size"] / steady_seconds
            if steady_seconds else None}


def format_seconds(seconds):
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


# ----------------------------------------------------------------------------- CLI

def build_parser():
    p = argparse.ArgumentParser(
        description="Train SL-StyleGAN (Qin et al. 2020) or DCGAN (Bhavsar et al. 2021) on "
                    "one class of skin-lesion images. Rerun the same command to resume.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Defaults for real data are the papers' settings: sl-stylegan 256 px, batch 16, "
               "20000 iterations, Adam 1e-4 (0, 0.99) with time decay 1e-5; dcgan 64 px, "
               "batch 128, 2000 iterations, Adam 2e-4 (0.5, 0.999). Without --data the "
               "built-in demo data is used with a short preset (32 px; 500 iterations for "
               "sl-stylegan, 300 for dcgan).")
    g = p.add_argument_group("data")
    g.add_argument("--data", help="image folder, class-folder root, ISIC 2018 or HAM10000 "
                                  "download (default: built-in demo data)")
    g.add_argument("--labels", help="ground-truth CSV (ISIC 2018) or HAM10000_metadata.csv, "
                                    "if not found inside --data")
    g.add_argument("--class", dest="class_name",
                   help="class to train on, e.g. DF, mel, akiec (case-insensitive)")
    g.add_argument("--crop", choices=["resize", "center"],
                   help="'resize' squashes the whole image (the papers' way, default); "
                        "'center' crops the centre square first")
    g.add_argument("--no-hflip", dest="hflip", action="store_false", default=None,
                   help="turn off random horizontal flips (on by default, as in both papers)")
    g.add_argument("--vflip", action="store_true", default=None,
                   help="also flip vertically (dermoscopy has no up)")
    g.add_argument("--rot90", action="store_true", default=None,
                   help="also rotate by random multiples of 90 degrees")
    g = p.add_argument_group("model and optimisation")
    g.add_argument("--model", choices=["sl-stylegan", "dcgan"],
                   help="GAN family (default: sl-stylegan)")
    g.add_argument("--resolution", type=int, help="square image size, a power of two "
                                                  "(default: 256 sl-stylegan, 64 dcgan)")
    g.add_argument("--batch-size", type=int, help="global batch (default: 16 / 128)")
    g.add_argument("--steps", type=int, help="total iterations of the run, one D and one G "
                                             "update each (default: 20000 / 2000)")
    g.add_argument("--lr", type=float, help="Adam learning rate (default: 1e-4 / 2e-4)")
    g.add_argument("--beta1", type=float, help="Adam beta1 (default: 0 / 0.5)")
    g.add_argument("--beta2", type=float, help="Adam beta2 (default: 0.99 / 0.999)")
    g.add_argument("--lr-decay", type=float,
                   help="time decay: lr / (1 + decay * t) (default: 1e-5 / 0)")
    g.add_argument("--latent-dim", type=int, help="latent size (default: 100)")
    g.add_argument("--channel-scale", type=float,
                   help="multiply every layer's channels (default: 1, the authors' networks)")
    g.add_argument("--seed", type=int, help="seed for weights, data order and latents "
                                            "(default: 0)")
    g = p.add_argument_group("beyond the papers (off by default)")
    g.add_argument("--augment", help="DiffAugment before D, for small classes: any of "
                                     "color,translation,cutout (e.g. "
                                     "'color,translation,cutout'; default: none)")
    g.add_argument("--ema", type=float,
                   help="keep an exponential moving average of G's weights with this decay "
                        "(e.g. 0.999) and sample/export it (default: 0, off)")
    g = p.add_argument_group("run")
    g.add_argument("--run", help="run name (default: <model>-<class>-<resolution>px)")
    g.add_argument("--sample-every", type=int,
                   help="iterations between sample grids (default: 500 / 100)")
    g.add_argument("--checkpoint-every", type=int,
                   help="iterations between checkpoints (default: 500)")
    g.add_argument("--log-every", type=int, help="iterations between progress lines "
                                                 "(default: 10)")
    g.add_argument("--keep-checkpoints", type=int, help="checkpoints kept (default: 3)")
    g.add_argument("--models-dir", default=os.path.join(ROOT, "SavedModels"),
                   help="where run folders with checkpoints go (default: %(default)s)")
    g.add_argument("--results-dir", default=os.path.join(ROOT, "Results"),
                   help="where samples and logs go (default: %(default)s)")
    g.add_argument("--cache-dir", default=os.path.join(ROOT, "Datasets", ".cache"),
                   help="decoded images are cached here so later runs skip JPEG decoding; "
                        "'none' turns the cache off (default: %(default)s)")
    g = p.add_argument_group("quality during training")
    g.add_argument("--eval-every", type=int,
                   help="iterations between quality scores (SWD, FID with --eval-fid) on fixed "
                        "latents; the best generator is kept as generator_best.keras "
                        "(default: 0, off)")
    g.add_argument("--eval-images", type=int, help="images per score (default: 500)")
    g.add_argument("--eval-fid", action="store_true", default=None,
                   help="also compute FID (needs InceptionV3 weights; see evaluate.py --help)")
    g.add_argument("--inception-weights", help="InceptionV3 notop .h5 file for --eval-fid "
                                               "(default: Keras' cache)")
    g = p.add_argument_group("hardware")
    g.add_argument("--xla", action="store_true", default=None,
                   help="compile the train step with XLA (single device)")
    g.add_argument("--mixed-precision", action="store_true", default=None,
                   help="bfloat16 compute with float32 weights (GPUs from Ampere on)")
    g.add_argument("--devices", choices=["auto", "one", "mirrored"],
                   help="'auto' (default) mirrors over all GPUs when there are several; "
                        "'mirrored' forces tf.distribute.MirroredStrategy")
    return p


def check_positive(explicit):
    for key in ("resolution", "batch_size", "steps", "sample_every", "checkpoint_every",
                "log_every", "keep_checkpoints", "latent_dim", "eval_images"):
        if key in explicit and explicit[key] <= 0:
            raise UserError(f"--{key.replace('_', '-')} must be positive, got {explicit[key]}")
    for key in ("lr", "channel_scale"):
        if key in explicit and not explicit[key] > 0:
            raise UserError(f"--{key.replace('_', '-')} must be positive, got {explicit[key]}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    models_dir, results_dir = args.models_dir, args.results_dir
    cache_dir = None if args.cache_dir.lower() == "none" else args.cache_dir
    explicit = {k: v for k, v in vars(args).items()
                if v is not None and k not in ("models_dir", "results_dir", "cache_dir")}
    check_positive(explicit)
    if "augment" in explicit:
        from skingan import augment
        augment.parse_policy(explicit["augment"])
    if not 0.0 <= explicit.get("ema", 0.0) < 1.0:
        raise UserError(f"--ema must be in [0, 1), got {explicit['ema']}")
    if explicit.get("eval_every", 0) < 0:
        raise UserError(f"--eval-every must be 0 (off) or positive, got {explicit['eval_every']}")
    run, cfg = resolve_config(explicit, models_dir)
    try:
        result = train(cfg, run, models_dir, results_dir, cache_dir=cache_dir,
                       log=functools.partial(print, flush=True))
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(3)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training began
        print("\ninterrupted; nothing saved since the last checkpoint", file=sys.stderr)
        sys.exit(130)
    if result["stopped"] != "done":
        sys.exit(128 + getattr(signal, result["stopped"]))
    return result


if __name__ == "__main__":
    run_cli(main)
