"""Limited data: does augmenting what D sees help a GAN trained on ~100 images? (issue 11)

    python -m benchmarks.bench_limited_data                        # ~25 min, 2 loaded CPU cores
    python -m benchmarks.bench_limited_data --steps 20 --seeds 1   # a smoke run (~5 min)

Data: the synthetic demo lesions (skingan.demo_data). The training set is 100 images of
the demo stream with seed 0; the held-out set is 300 images of the same generator with
seed 1, which no arm trains on; a third set of 300 (seed 2) gives the floor a perfect
generator would reach. All are drawn at 64 px and loaded at 32 px by data_loader, as
training loads them.

Arms, for both families at the same iteration budget (--steps, default 200: 3.2 kimg;
the real training loop, loop.train, with each family's paper optimiser settings, networks
and flips, at 32 px and batch 16):
- none:        no augmentation (the faithful recipe);
- diffaugment: --augment color,translation,cutout;
- ada:         --augment ada, adaptive p, target 0.6, --ada-kimg ADA_KIMG (ADA's 500 kimg
               would move p by at most 0.01 in a run this short, so the adaptation speed
               is scaled to the budget: p can go from 0 to 1 in ADA_KIMG thousand images);
- ada p=0.2:   --augment ada --ada-p 0.2 (fixed).
Each arm runs with seeds 0, 1, 2 (weights, data order, latents, augmentations).

Score: SWD x 10^3 (skingan.metrics.swd, ProGAN's sliced Wasserstein distance over a
Laplacian pyramid, here the 32 and 16 px levels) between 300 images of the final generator
and the 300 held-out images; lower is better. Printed: median and range over seeds, the
final p of the adaptive arm, and two references at the same n: fresh real images (the
floor) and the 100 training images each counted three times (what copying the training set
would score).
"""
import argparse
import datetime
import os
import platform
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESOLUTION, BATCH, TRAIN_IMAGES, HELD_OUT = 32, 16, 100, 300
ADA_KIMG = 2.0
ARMS = {"none": {},
        "diffaugment": dict(augment="color,translation,cutout"),
        "ada": dict(augment="ada", ada_kimg=ADA_KIMG),
        "ada p=0.2": dict(augment="ada", ada_p=0.2)}
FAMILIES = ("sl-stylegan", "dcgan")


def quiet(*_args, **_kwargs):
    pass


def write_sets(root):
    """PNG folders of the training, held-out and floor sets; returns their folders and the
    held-out and floor images as uint8 (N, 32, 32, 3)."""
    import data_loader
    from skingan.demo_data import write_demo_images
    folders = {}
    for name, n, seed in (("train", TRAIN_IMAGES, 0), ("held_out", HELD_OUT, 1),
                          ("floor", HELD_OUT, 2)):
        folders[name] = os.path.join(root, name)
        os.makedirs(folders[name])
        write_demo_images(folders[name], n=n, size=64, seed=seed)
    loaded = {name: data_loader.load_data(folders[name], resolution=RESOLUTION,
                                          log=quiet)[0]
              for name in folders}
    return folders["train"], loaded


def train_run(model, run, data, root, steps, seed, settings, log_every=None):
    """Train one benchmark run through the real loop: the shared batch, resolution and
    schedule (one grid and one checkpoint, at the end) plus `settings`; returns loop.train's
    result, the settings and losses.csv as a structured array."""
    import numpy as np

    from skingan.config import resolve_config
    from skingan.loop import train
    explicit = dict(data=data, model=model, resolution=RESOLUTION, batch_size=BATCH,
                    steps=steps, seed=seed, log_every=log_every or steps, sample_every=steps,
                    checkpoint_every=steps, keep_checkpoints=1, run=run, **settings)
    models, results = os.path.join(root, "models"), os.path.join(root, "results")
    run, cfg = resolve_config(explicit, models)
    result = train(cfg, run, models, results, log=quiet, handle_signals=False)
    log = np.genfromtxt(os.path.join(result["results_dir"], "losses.csv"), delimiter=",",
                        names=True)
    return result, cfg, np.atleast_1d(log)


def train_arm(model, arm, seed, data, root, steps, arms=None):
    """Train one arm (a name in `arms`, default ARMS); returns loop.train's result, the
    settings and the final ADA p (None without ADA)."""
    run = f"{model}-{arm.replace(' ', '').replace('=', '').replace('.', '')}-seed{seed}"
    result, cfg, log = train_run(model, run, data, root, steps, seed,
                                 (ARMS if arms is None else arms)[arm])
    p = float(log["ada_p"][-1]) if "ada_p" in log.dtype.names else None
    return result, cfg, p


def generated(result, cfg, n, seed):
    """n uint8 images (n, R, R, 3) of the run's final generator, from fixed latents."""
    import keras
    import numpy as np

    from skingan import images as image_io
    from skingan.families import get_family, numpy_normal
    family = get_family(cfg["model"])
    family.builders()                                   # registers its custom layers
    generator = keras.models.load_model(os.path.join(result["run_dir"], "generator.keras"))
    inputs = family.draw_inputs(numpy_normal([seed, 99]), n, cfg["latent_dim"], RESOLUTION)
    fakes = generator(inputs, training=False)                # (n, R, R, 3) in value_range
    return image_io.to_uint8(np.asarray(fakes), family.value_range)


def run_all(steps, seeds, families, root, log, arms=None):
    """{(family, arm): [(swd, final p, seconds) per seed]} and the reference scores, for
    `arms` (default ARMS)."""
    import keras
    import numpy as np

    from skingan.metrics import swd
    train_dir, sets = write_sets(root)
    train_images = sets["train"]
    references = {
        "fresh real images (floor)": swd(sets["held_out"], sets["floor"])["average"],
        "the training images x3 (a copy)": swd(
            sets["held_out"], np.concatenate([train_images] * 3))["average"]}
    scores = {}
    for model in families:
        for arm in (ARMS if arms is None else arms):
            for seed in seeds:
                start = time.perf_counter()
                result, cfg, p = train_arm(model, arm, seed, train_dir, root, steps, arms)
                score = swd(sets["held_out"], generated(result, cfg, HELD_OUT, seed))["average"]
                seconds = time.perf_counter() - start
                scores.setdefault((model, arm), []).append((score, p, seconds))
                log(f"  {model:12s} {arm:12s} seed {seed}: SWD {score:7.1f}"
                    + (f"  final p {p:.3f}" if p is not None else "") + f"  ({seconds:.0f} s)")
                keras.backend.clear_session()
                for folder in (result["run_dir"], result["results_dir"]):
                    shutil.rmtree(folder, ignore_errors=True)
    return scores, references


def table(scores, references):
    """The markdown table: one row per family and arm."""
    lines = ["| family | arm | SWD x 10^3, median | range | final p (ADA) |",
             "|---|---|---:|---|---|"]
    for (model, arm), rows in scores.items():
        values = [r[0] for r in rows]
        ps = [r[1] for r in rows if r[1] is not None]
        p_text = ", ".join(f"{p:.2f}" for p in ps) if ps else ""
        lines.append(f"| {model} | {arm} | {statistics.median(values):.0f} | "
                     f"{min(values):.0f} - {max(values):.0f} | {p_text} |")
    for name, value in references.items():
        lines.append(f"| reference | {name} | {value:.0f} | | |")
    return "\n".join(lines)


def run_in_tempdir(name, budget, body):
    """The frame both quality benchmarks share: print the date, machine, load and budget,
    run body(root, log) in a temporary folder removed afterwards, print the budget again
    with the time taken and the load at the end; returns body's result."""
    import keras
    import tensorflow as tf

    from benchmarks.bench_train import cpu_model, load_text
    tf.get_logger().setLevel("ERROR")      # the per-run retracing notes of the log writer
    log = lambda text: print(text, flush=True)   # noqa: E731
    log(f"{name}  {datetime.datetime.now().astimezone().isoformat('T', 'seconds')}")
    log(f"machine: {cpu_model()[0]}, {os.cpu_count()} cores, {platform.platform()}; "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}; at start: {load_text()}")
    log(f"budget: {budget}")
    start = time.perf_counter()
    root = tempfile.mkdtemp(prefix=f"{name}_")
    try:
        result = body(root, log)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log(f"\n{budget}; {time.perf_counter() - start:.0f} s in all; at end: {load_text()}\n")
    return result


def parse_bench_args(argv, description, default_steps, parents=(), families=FAMILIES):
    """(steps, seeds, families) from the flags the quality benchmarks take. parents: a
    benchmark's own parsers (add_help=False), so that --help lists their flags too;
    families: the --families default."""
    parser = argparse.ArgumentParser(description=description, parents=list(parents))
    parser.add_argument("--steps", type=int, default=default_steps,
                        help="iterations per run, every arm (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (default: 3)")
    parser.add_argument("--families", default=",".join(families),
                        help="comma-separated (default: %(default)s)")
    args = parser.parse_args(argv)
    return args.steps, list(range(args.seeds)), [f for f in args.families.split(",") if f]


def main(argv=None):
    steps, seeds, families = parse_bench_args(argv, __doc__.splitlines()[0], 200)
    budget = (f"{steps} iterations of batch {BATCH} ({steps * BATCH / 1000:g} kimg) "
              f"at {RESOLUTION} px on {TRAIN_IMAGES} training images, seeds {seeds}; SWD on "
              f"{HELD_OUT} generated vs {HELD_OUT} held-out images")
    scores, references = run_in_tempdir(
        "bench_limited_data", budget,
        lambda root, log: run_all(steps, seeds, families, root, log))
    print(table(scores, references))


if __name__ == "__main__":
    main()
