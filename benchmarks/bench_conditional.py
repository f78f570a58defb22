"""Does one conditional GAN on all classes give a rare class better images than a GAN
trained on that class alone? (issue 12)

    python -m benchmarks.bench_conditional                        # ~40 min, 2 loaded CPU cores
    python -m benchmarks.bench_conditional --steps 20 --seeds 1   # a smoke run

Data: the multi-class demo lesions (skingan.demo_data), written at 64 px and loaded at 32 px
as training loads them: nv 150, mel 120, bkl 120 and the rare class df with RARE images.
Held out: 300 df images of other lesions (lesion numbers from 10,000 on) that no arm trains
on, and 300 more (from 20,000 on) for the floor a perfect generator would reach.

Arms, for both families at the same number of iterations (--steps, batch 16, 32 px, each
family's paper optimiser settings and flips, the real training loop):
- alone:             the papers' recipe: an unconditional GAN on the RARE df images only;
- conditional:       --conditional --class all: one GAN on every class, df drawn as often as
                     the data holds it (about 9 % of the real and fake batches);
- conditional sqrt:  the same with --class-balance sqrt (df about 16 %; flips and 90-degree
                     rotations on, as that balance turns them on).
The same iterations is the usual equal budget: the same compute, while the conditional
runs see df in only a share of each batch. Each arm runs with seeds 0, 1, 2.

Score: SWD x 10^3 (skingan.metrics.swd, 32 and 16 px levels) between 300 df images of the
final generator and the 300 held-out df images; lower is better. Printed: median and range
over seeds, and two references: fresh real df images (the floor) and the training df images
repeated to 300 (what copying the training set would score).
"""
import os
import shutil
import statistics
import time

from benchmarks.bench_limited_data import parse_bench_args, run_in_tempdir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESOLUTION, BATCH, RARE, HELD_OUT = 32, 16, 40, 300
COUNTS = {"nv": 150, "mel": 120, "bkl": 120, "df": RARE}
ARMS = {"alone": dict(class_name="df"),
        "conditional": dict(conditional=True, class_name="all"),
        "conditional sqrt": dict(conditional=True, class_name="all", class_balance="sqrt")}


def quiet(*_args, **_kwargs):
    pass


def write_sets(root):
    """The multi-class training set (its folder) and the held-out and floor df images as
    uint8 (300, 32, 32, 3), loaded as training loads images."""
    import data_loader
    from skingan import demo_data
    data = demo_data.ensure_multiclass_demo_data(os.path.join(root, "train"), counts=COUNTS,
                                                 size=64, log=quiet)
    sets = {}
    for name, first_lesion in (("held_out", 10000), ("floor", 20000)):
        folder = os.path.join(root, name)
        demo_data.write_class_images(folder, "df", HELD_OUT, size=64, first_lesion=first_lesion)
        sets[name] = data_loader.load_data(folder, resolution=RESOLUTION, log=quiet)[0]
    sets["train_df"] = data_loader.load_data(data, class_name="df", resolution=RESOLUTION,
                                             log=quiet)[0]
    return data, sets


def train_arm(model, arm, seed, data, root, steps):
    """Train one arm; returns loop.train's result."""
    from skingan.config import resolve_config
    from skingan.loop import train
    run = f"{model}-{arm.replace(' ', '-')}-seed{seed}"
    explicit = dict(data=data, model=model, resolution=RESOLUTION, batch_size=BATCH,
                    steps=steps, seed=seed, log_every=steps, sample_every=steps,
                    checkpoint_every=steps, keep_checkpoints=1, run=run, **ARMS[arm])
    models, results = os.path.join(root, "models"), os.path.join(root, "results")
    run, cfg = resolve_config(explicit, models)
    return train(cfg, run, models, results, log=quiet, handle_signals=False)


def generated_df(result, n, seed):
    """n df images (n, R, R, 3) uint8 of the run's final generator (class df of a
    conditional one), through generate.py's code."""
    import numpy as np

    from skingan.sampling import generate_images, load_generator
    bundle = load_generator(result["run_dir"])
    label = bundle.class_index("df") if bundle.classes else None
    return np.concatenate([images for _, images in generate_images(
        bundle, n, seed=1000 * seed, batch_size=100, label=label)])


def run_all(steps, seeds, families, root, log):
    """{(family, arm): [(swd, seconds) per seed]} and the reference scores."""
    import keras
    import numpy as np

    from skingan.metrics import swd
    data, sets = write_sets(root)
    copies = np.resize(sets["train_df"], (HELD_OUT,) + sets["train_df"].shape[1:])
    references = {
        "fresh real df images (floor)": swd(sets["held_out"], sets["floor"])["average"],
        f"the {RARE} training df images, repeated (a copy)": swd(sets["held_out"],
                                                               copies)["average"]}
    scores = {}
    for model in families:
        for arm in ARMS:
            for seed in seeds:
                start = time.perf_counter()
                result = train_arm(model, arm, seed, data, root, steps)
                score = swd(sets["held_out"], generated_df(result, HELD_OUT, seed))["average"]
                seconds = time.perf_counter() - start
                scores.setdefault((model, arm), []).append((score, seconds))
                log(f"  {model:12s} {arm:17s} seed {seed}: SWD {score:7.1f}  ({seconds:.0f} s)")
                keras.backend.clear_session()
                for folder in (result["run_dir"], result["results_dir"]):
                    shutil.rmtree(folder, ignore_errors=True)
    return scores, references


def table(scores, references):
    """The markdown table: one row per family and arm."""
    lines = ["| family | arm | df SWD x 10^3, median | range (seeds) |", "|---|---|---:|---|"]
    for (model, arm), rows in scores.items():
        values = [r[0] for r in rows]
        lines.append(f"| {model} | {arm} | {statistics.median(values):.0f} | "
                     + ", ".join(f"{v:.0f}" for v in values) + " |")
    for name, value in references.items():
        lines.append(f"| reference | {name} | {value:.0f} | |")
    return "\n".join(lines)


def main(argv=None):
    steps, seeds, families = parse_bench_args(argv, __doc__.splitlines()[0], 300)
    budget = (f"{steps} iterations of batch {BATCH} ({steps * BATCH / 1000:g} kimg) "
              f"at {RESOLUTION} px, seeds {seeds}; data {COUNTS}; SWD on {HELD_OUT} generated "
              f"vs {HELD_OUT} held-out df images")
    scores, references = run_in_tempdir(
        "bench_conditional", budget,
        lambda root, log: run_all(steps, seeds, families, root, log))
    print(table(scores, references))


if __name__ == "__main__":
    main()
