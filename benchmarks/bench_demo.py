"""The demo's preset: does `python train.py` end on a varied grid? (issue 23, item 1)

    python -m benchmarks.bench_demo       # 6 arms x 3 seeds, each run 3-6 CPU minutes: hours
    python -m benchmarks.bench_demo --arms "sl old,dcgan demo" --seeds 0   # some arms, one seed
    python -m benchmarks.bench_demo --conditional            # the multi-class demo's arms

Each arm is a set of flags over `python train.py` with no --data: the built-in demo data
(skingan.demo_data, 300 images, the same folder train.py writes), the real training loop
(loop.train) with its sample grids and its health monitor. Run with --seeds (default 0, 1, 2),
seed-major (every arm's seed 0 first), so a partial log already compares the arms.

Printed per run, and as a table at the end:
- diversity: the health monitor's own score (skingan.monitoring.HealthMonitor: the median
  pairwise distance of the grid's samples as 8 x 8 thumbnails over that of the real images)
  on the final grid, the one the demo leaves; the monitor warns below 0.5. Also its minimum
  over the run's grids after the monitor's warm-up, and whether it warned;
- SWD x 10^3 (lower is better) of 300 images of the final generator.keras against 300
  held-out demo images (the demo generator with seed 1, which no run trains on);
- wall time of the run (training, grids, checkpoints; TensorFlow already imported) and the
  CPU seconds the process used meanwhile (all threads). On a shared machine the wall time
  says little; the CPU seconds, halved, roughly bound what two idle cores would take.
The final grids are kept in --grids (default Results/bench_demo_grids/) to look at.
"""
import argparse
import os
import shutil
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HELD_OUT = 300

# The preset before issue 23 (families.py's sl-stylegan demo then), pinned here so the arm
# stays the old one whatever the preset is now.
OLD_SL = dict(model="sl-stylegan", resolution=32, batch_size=16, steps=500,
              sample_every=50, checkpoint_every=100)
ARMS = {
    "sl old": OLD_SL,
    "sl ema": dict(OLD_SL, ema=0.99),
    "sl ema flips": dict(OLD_SL, ema=0.99, vflip=True, rot90=True),
    "sl diffaug": dict(OLD_SL, ema=0.99, augment="color,translation,cutout"),
    "sl ada": dict(OLD_SL, ema=0.99, augment="ada", ada_kimg=2.0),
    "dcgan demo": dict(model="dcgan", resolution=32, batch_size=64, steps=300,
                       sample_every=50, checkpoint_every=100),
}
COND_ARMS = {
    "cond sl old": dict(OLD_SL, conditional=True),
    "cond sl ema": dict(OLD_SL, conditional=True, ema=0.99),
}


def quiet(*_args, **_kwargs):
    pass


class DiversityLog:
    """Records the health monitor's diversity ratio at every grid, by wrapping
    HealthMonitor.check_samples (what the loop calls; the warning logic is unchanged)."""

    def __init__(self):
        from skingan.monitoring import HealthMonitor
        self.ratios, self.warned = [], False
        original = HealthMonitor.check_samples
        record = self

        def check_samples(monitor, step, fake_uint8, real_diversity):
            if real_diversity > 0:
                record.ratios.append((step, monitor.diversity(fake_uint8) / real_diversity,
                                      step >= monitor.warmup_steps))
            warning = original(monitor, step, fake_uint8, real_diversity)
            record.warned = record.warned or warning is not None
            return warning
        HealthMonitor.check_samples = check_samples

    def reset(self):
        self.ratios, self.warned = [], False


def held_out_images(conditional):
    """uint8 (HELD_OUT, 32, 32, 3): fresh demo images no run trains on."""
    import tempfile

    import data_loader
    from skingan import demo_data
    folder = tempfile.mkdtemp(prefix="bench_demo_held_out_")
    try:
        if conditional:
            per_class = HELD_OUT // len(demo_data.CLASS_STYLES)
            for name in demo_data.CLASS_STYLES:      # lesions beyond the demo set's
                demo_data.write_class_images(folder, name, per_class, size=64, seed=0,
                                             first_lesion=100000)
        else:
            demo_data.write_demo_images(folder, n=HELD_OUT, size=128, seed=1)
        return data_loader.load_data(folder, resolution=32, log=quiet)[0]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def generated(result, cfg, n, seed):
    """n uint8 images of the run's final generator.keras (the shown one: EMA with --ema),
    from fixed latents; a conditional run's classes in turn."""
    import keras
    import numpy as np

    from skingan import images as image_io
    from skingan.conditional import with_labels
    from skingan.families import get_family, numpy_normal
    family = get_family(cfg["model"])
    family.builders()                                   # registers its custom layers
    generator = keras.models.load_model(os.path.join(result["run_dir"], "generator.keras"))
    inputs = family.draw_inputs(numpy_normal([seed, 99]), n, cfg["latent_dim"],
                                cfg["resolution"])
    if cfg["conditional"]:
        inputs = with_labels(inputs, np.arange(n, dtype=np.int32) % len(cfg["classes"]))
    fakes = generator(inputs, training=False)
    return image_io.to_uint8(np.asarray(fakes), family.value_range)


def run_one(name, flags, seed, root, grids, record, held_out):
    import keras

    from skingan.config import resolve_config
    from skingan.loop import train
    from skingan.metrics import swd
    run = f"{name.replace(' ', '-')}-seed{seed}"
    models, results = os.path.join(root, "models"), os.path.join(root, "results")
    explicit = dict(flags, seed=seed, run=run, log_every=flags["steps"])
    run, cfg = resolve_config(explicit, models)
    record.reset()
    start, cpu = time.perf_counter(), time.process_time()
    result = train(cfg, run, models, results, log=quiet, handle_signals=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    final = f"samples_{result['step']:06d}.png"
    os.makedirs(grids, exist_ok=True)
    shutil.copy(os.path.join(result["results_dir"], final), os.path.join(grids, run + ".png"))
    score = swd(held_out, generated(result, cfg, HELD_OUT, seed))["average"]
    checked = [r for _, r, after_warmup in record.ratios if after_warmup]
    row = dict(final=record.ratios[-1][1], low=min(checked) if checked else float("nan"),
               warned=record.warned, swd=score, seconds=seconds, cpu=cpu,
               trace=" ".join(f"{s}:{r:.2f}" for s, r, _ in record.ratios))
    keras.backend.clear_session()
    for folder in (result["run_dir"], result["results_dir"]):
        shutil.rmtree(folder, ignore_errors=True)
    return row


def table(rows):
    lines = ["| arm | final diversity, each seed | min after warm-up | warned | "
             "SWD x 10^3, median (range) | wall s, median | CPU s, median |",
             "|---|---|---|---|---|---:|---:|"]
    for arm, runs in rows.items():
        swds = [r["swd"] for r in runs]
        finals = ", ".join(f"{r['final']:.2f}" for r in runs)
        lows = ", ".join(f"{r['low']:.2f}" for r in runs)
        warned = sum(r["warned"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        lines.append(f"| {arm} | {finals} | {lows} | {warned}/{len(runs)} | "
                     f"{statistics.median(swds):.0f} ({min(swds):.0f} - {max(swds):.0f}) | "
                     f"{seconds:.0f} | {cpu:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    from benchmarks import bench_limited_data as bld
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2",
                        help="comma-separated seeds (default: %(default)s)")
    parser.add_argument("--arms", help="comma-separated arm names (default: all of the set)")
    parser.add_argument("--conditional", action="store_true",
                        help="the multi-class demo's arms (train.py --conditional)")
    parser.add_argument("--grids", default=os.path.join("Results", "bench_demo_grids"),
                        help="where the final grids are copied (default: %(default)s)")
    args = parser.parse_args(argv)
    arms = COND_ARMS if args.conditional else ARMS
    chosen = [a.strip() for a in args.arms.split(",")] if args.arms else list(arms)
    unknown = [a for a in chosen if a not in arms]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {list(arms)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    budget = f"arms {chosen}, seeds {seeds}, the built-in demo data"
    grids = os.path.abspath(args.grids)

    def body(root, log):
        record = DiversityLog()
        held_out = held_out_images(args.conditional)
        rows = {}
        for seed in seeds:
            for arm in chosen:
                row = run_one(arm, arms[arm], seed, root, grids, record, held_out)
                rows.setdefault(arm, []).append(row)
                log(f"  {arm:14s} seed {seed}: diversity {row['final']:.2f} (min "
                    f"{row['low']:.2f}{', warned' if row['warned'] else ''})  SWD "
                    f"{row['swd']:6.1f}  {row['seconds']:.0f} s ({row['cpu']:.0f} CPU s)   "
                    f"[{row['trace']}]")
        return rows
    rows = bld.run_in_tempdir("bench_demo", budget, body)
    print(table(rows))


if __name__ == "__main__":
    main()
