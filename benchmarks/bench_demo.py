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
The final grids are kept in --grids (default Results/bench_demo_grids/) to look at, with the
HELD_OUT generated images measured (run.npz).

Every checkpoint of a run (every checkpoint_every iterations) is measured too, as if the run
had ended there or its best-scoring checkpoint were shown: the monitor's figure at that
step's grid, the colours and the diversity within each class of its generator, ADA's p at
that step (with --augment ada; losses.csv), and which step the run's own quality score
(--eval-every, the SWD that picks generator_best.keras) ranked best.

--conditional and --classify also print each class's colours (skingan.colour: the mean colour
of each image's centre, inside the lesion, against PALETTE held-out real images of the class;
distance, off-palette share, hue, saturation) and whether every class passes.
"""
import argparse
import os
import shutil
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HELD_OUT = 300
PALETTE = 300      # real images per class the colours are compared with (a wide class's
                   # palette needs many: df's own 60 demo images against 300 held-out
                   # ones leave 12 % "off-palette")

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
    "cond dcgan": dict(model="dcgan", resolution=32, batch_size=64, steps=300,
                       sample_every=50, checkpoint_every=100, conditional=True),
    "cond dcgan 500": dict(model="dcgan", resolution=32, batch_size=64, steps=500,
                           sample_every=50, checkpoint_every=100, conditional=True),
}
# issue 23 item 1, third round: against DCGAN's collapse within a class, at about the same
# CPU (batch x iterations ~ 19,200 images) unless said otherwise
COND_DCGAN = COND_ARMS["cond dcgan"]
COND_ARMS.update({
    "cond dcgan b32": dict(COND_DCGAN, batch_size=32, steps=600, sample_every=100,
                           checkpoint_every=200),
    "cond dcgan b32 tc": dict(COND_DCGAN, batch_size=32, steps=600, sample_every=100,
                              checkpoint_every=200, augment="translation,cutout"),
    "cond dcgan tc": dict(COND_DCGAN, augment="translation,cutout"),
    "cond dcgan ct": dict(COND_DCGAN, augment="color,translation"),
    "cond dcgan ada": dict(COND_DCGAN, augment="ada", ada_kimg=2.0),
    "cond dcgan uniform": dict(COND_DCGAN, class_balance="uniform"),
    "cond dcgan ema": dict(COND_DCGAN, ema=0.99),
    "cond sl ema 300": dict(OLD_SL, conditional=True, ema=0.99, steps=300),
    # StyleGAN2-ADA's demo preset (families.py: 32 px, batch 16, 300 it., channel_base 1024;
    # its own EMA, ADA and minibatch-stddev), conditional (NVlabs' one-hot c, mapped)
    "cond sg2": dict(model="stylegan2", resolution=32, batch_size=16, steps=300,
                     sample_every=50, checkpoint_every=100, conditional=True),
    "cond sg2 b8": dict(model="stylegan2", resolution=32, batch_size=8, steps=600,
                        sample_every=100, checkpoint_every=200, conditional=True),
    "cond sg2 cb512": dict(model="stylegan2", resolution=32, batch_size=16, steps=500,
                           channel_base=512, sample_every=50, checkpoint_every=100,
                           conditional=True),
    # ADA's p moves by at most batch x steps / (ada_kimg x 1000): with NVlabs' ada_kimg 500
    # it stays near 0 in a demo's 8 kimg; 2 lets it act within the run
    "cond sg2 cb512 ada2": dict(model="stylegan2", resolution=32, batch_size=16, steps=500,
                                channel_base=512, ada_kimg=2.0, sample_every=50,
                                checkpoint_every=100, conditional=True),
    "cond sg2 cb512 ada10": dict(model="stylegan2", resolution=32, batch_size=16, steps=500,
                                 channel_base=512, ada_kimg=10.0, sample_every=50,
                                 checkpoint_every=100, conditional=True),
    # ADA restricted to its blit and geometric groups (--augpipe bg, NVlabs' name): no colour
    # transform, whose leak into G the ada2 arm's grid suggested
    "cond sg2 cb512 bg ada2": dict(model="stylegan2", resolution=32, batch_size=16, steps=500,
                                   channel_base=512, ada_kimg=2.0, augpipe="bg",
                                   sample_every=50, checkpoint_every=100, conditional=True),
    "cond sg2 cb512 bg ada10": dict(model="stylegan2", resolution=32, batch_size=16,
                                    steps=500, channel_base=512, ada_kimg=10.0, augpipe="bg",
                                    sample_every=50, checkpoint_every=100, conditional=True),
    # ADA with all its groups but slower: p can reach only 0.2 in the run's 8 kimg
    "cond sg2 cb512 ada40": dict(model="stylegan2", resolution=32, batch_size=16, steps=500,
                                 channel_base=512, ada_kimg=40.0, sample_every=50,
                                 checkpoint_every=100, conditional=True),
    # the pixel-exact group alone (flips, quarter turns, integer shifts: no resampling, no
    # colour), and the cb512 arm stopped where its mel row was still varied
    "cond sg2 cb512 blit ada2": dict(model="stylegan2", resolution=32, batch_size=16,
                                     steps=500, channel_base=512, ada_kimg=2.0,
                                     augpipe="blit", sample_every=50, checkpoint_every=100,
                                     conditional=True),
    # DiffAugment's colour-free transforms instead of ADA, on every image D sees
    "cond sg2 cb512 tc": dict(model="stylegan2", resolution=32, batch_size=16, steps=500,
                              channel_base=512, augment="translation,cutout",
                              sample_every=50, checkpoint_every=100, conditional=True),
    # a stronger R1 penalty than auto's 0.0064 at 32 px (NVlabs' cifar 0.01, paper256 1)
    "cond sg2 cb512 gamma0.1": dict(model="stylegan2", resolution=32, batch_size=16,
                                    steps=500, channel_base=512, gamma=0.1, sample_every=50,
                                    checkpoint_every=100, conditional=True),
    # ... stopped at 200 iterations, where its seed-0 checkpoint passed both checks
    "cond sg2 cb512 gamma0.1 200": dict(model="stylegan2", resolution=32, batch_size=16,
                                        steps=200, channel_base=512, gamma=0.1,
                                        sample_every=50, checkpoint_every=100,
                                        conditional=True),
    "cond sg2 cb512 300": dict(model="stylegan2", resolution=32, batch_size=16, steps=300,
                               channel_base=512, sample_every=50, checkpoint_every=100,
                               conditional=True),
    "cond sg2 500": dict(model="stylegan2", resolution=32, batch_size=16, steps=500,
                         sample_every=50, checkpoint_every=100, conditional=True),
})
# issue 23 item 1, fifth round: MSGAN's mode-seeking term on conditional DCGAN's G (Mao et al.
# 2019), against its collapse within a class (G ignoring z); lambda 1 is the authors'
COND_ARMS.update({
    "cond dcgan ms1": dict(COND_DCGAN, mode_seeking=1.0),
    "cond dcgan ms0.5": dict(COND_DCGAN, mode_seeking=0.5),
    "cond dcgan ms2": dict(COND_DCGAN, mode_seeking=2.0),
    "cond dcgan b32 ms1": dict(COND_DCGAN, batch_size=32, steps=600, mode_seeking=1.0),
    "cond dcgan b32 ms2": dict(COND_DCGAN, batch_size=32, steps=600, mode_seeking=2.0),
    # the weight average: DCGAN's colours were too dark and saturated, a noisy G's average
    # may settle them
    "cond dcgan ms1 ema": dict(COND_DCGAN, mode_seeking=1.0, ema=0.99),
    "cond dcgan b32 ms1 ema": dict(COND_DCGAN, batch_size=32, steps=600, mode_seeking=1.0,
                                   ema=0.99),
    # a weaker push: the term rewards any pixel gap, and dark, saturated lesions make big ones
    "cond dcgan b32 ms0.5 ema": dict(COND_DCGAN, batch_size=32, steps=600, mode_seeking=0.5,
                                     ema=0.99),
    # the rare class (df, 60 of 450 images) drawn more often: its colours were the worst
    "cond dcgan ms1 sqrt": dict(COND_DCGAN, mode_seeking=1.0, class_balance="sqrt"),
    "cond dcgan ms1 uniform": dict(COND_DCGAN, mode_seeking=1.0, class_balance="uniform"),
    "cond dcgan b32 ms1 ema sqrt": dict(COND_DCGAN, batch_size=32, steps=600,
                                        mode_seeking=1.0, ema=0.99, class_balance="sqrt"),
})
# classify.py's demo GAN (skingan.benefit.demo.DEMO_GAN then), trained by demo.train_gan on
# the rare class's training fold of classify's own split; pinned so the arm stays the old one.
OLD_CLASSIFY = dict(model="dcgan", resolution=32, steps=600, batch_size=32, channel_scale=0.5)
CLASSIFY_ARMS = {
    "classify old": OLD_CLASSIFY,
    "classify ema": dict(OLD_CLASSIFY, ema=0.99),
    "classify full": dict(OLD_CLASSIFY, channel_scale=1.0),
    "classify 300": dict(OLD_CLASSIFY, steps=300),
    "classify b64": dict(OLD_CLASSIFY, batch_size=64, steps=300, channel_scale=1.0),
}


def quiet(*_args, **_kwargs):
    pass


class DiversityLog:
    """Records the health monitor's diversity ratio at every grid, by wrapping
    HealthMonitor.check_samples (what the loop calls; the warning logic is unchanged). A
    conditional grid is judged class by class: the ratio recorded is its lowest class's,
    and `classes` holds every class's at the last grid."""

    def __init__(self):
        from skingan.monitoring import HealthMonitor
        self.ratios, self.warned, self.classes, self.by_step = [], False, {}, {}
        original = HealthMonitor.check_samples
        record = self

        def check_samples(monitor, step, fake_uint8, real_diversity, labels=None,
                          class_names=None):
            ratios = monitor.ratios(fake_uint8, real_diversity, labels)
            if ratios:
                record.ratios.append((step, min(ratios.values()),
                                      step >= monitor.warmup_steps))
                record.classes = {(class_names[c] if class_names else c): r
                                  for c, r in ratios.items()}
                record.by_step[step] = dict(record.classes)
            warning = original(monitor, step, fake_uint8, real_diversity, labels, class_names)
            record.warned = record.warned or warning is not None
            return warning
        HealthMonitor.check_samples = check_samples

    def reset(self):
        self.ratios, self.warned, self.classes, self.by_step = [], False, {}, {}


class Snapshots:
    """Keeps a copy of generator.keras as each checkpoint exports it (by wrapping
    checkpoints.Checkpoints.save, what the loop's events call), so that every checkpoint's
    generator can be measured after the run: {step: path} in `paths`."""

    def __init__(self, folder):
        from skingan import checkpoints
        self.folder, self.paths = folder, {}
        original = checkpoints.Checkpoints.save
        record = self

        def save(store, step):
            original(store, step)
            source = os.path.join(store.folder.run_dir, "generator.keras")
            if store.last_saved == step and os.path.isfile(source):
                os.makedirs(record.folder, exist_ok=True)
                record.paths[step] = os.path.join(record.folder, f"generator_{step:06d}.keras")
                shutil.copy(source, record.paths[step])
        checkpoints.Checkpoints.save = save

    def reset(self):
        shutil.rmtree(self.folder, ignore_errors=True)
        self.paths = {}


def held_out_images(mode):
    """({class: uint8 (n, 32, 32, 3)}): fresh demo images no run trains on; one class 'all'
    (HELD_OUT images) for the unconditional demo, each demo class (PALETTE images each) for
    --conditional, the rare class for --classify."""
    import tempfile

    import data_loader
    from skingan import demo_data
    folder = tempfile.mkdtemp(prefix="bench_demo_held_out_")
    try:
        if mode == "plain":
            demo_data.write_demo_images(folder, n=HELD_OUT, size=128, seed=1)
            return {"all": data_loader.load_data(folder, resolution=32, log=quiet)[0]}
        names = demo_data.CLASS_STYLES if mode == "conditional" else [demo_data.DEMO_RARE_CLASS]
        by_class = {}
        for name in names:      # lesions beyond the demo set's
            sub = os.path.join(folder, name)
            demo_data.write_class_images(sub, name, PALETTE, size=64, seed=0,
                                         first_lesion=100000)
            by_class[name] = data_loader.load_data(sub, resolution=32, log=quiet)[0]
        return by_class
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def generated(path, cfg, n, seed):
    """(n uint8 images of the generator saved at `path` (a run's generator.keras: the shown
    one, EMA with --ema), from fixed latents, their class indices or None); a conditional
    run's classes in turn."""
    import keras
    import numpy as np

    from skingan import images as image_io
    from skingan.conditional import with_labels
    from skingan.families import get_family, numpy_normal
    family = get_family(cfg["model"])
    family.builders()                                   # registers its custom layers
    generator = keras.models.load_model(path)
    inputs = family.draw_inputs(numpy_normal([seed, 99]), n, cfg["latent_dim"],
                                cfg["resolution"])
    labels = None
    if cfg["conditional"]:
        labels = np.arange(n, dtype=np.int32) % len(cfg["classes"])
        inputs = with_labels(inputs, labels)
    fakes = generator(inputs, training=False)
    return image_io.to_uint8(np.asarray(fakes), family.value_range), labels


def classify_split(root):
    """classify.py's demo split (its default fractions and seed) of the multi-class demo set,
    written to root/split.csv: (data folder, split path)."""
    import data_loader
    from skingan import demo_data
    from skingan.benefit import experiment
    from skingan.benefit import split as split_module
    data = demo_data.ensure_multiclass_demo_data(demo_data.MULTICLASS_ROOT, log=quiet)
    defaults = experiment.Settings.__dataclass_fields__
    path = os.path.join(root, "split.csv")
    split_module.load_or_make_split(path, data_loader.list_labelled_images(data),
                                    defaults["test_fraction"].default,
                                    defaults["val_fraction"].default,
                                    defaults["seed"].default, log=quiet)
    return data, path


def train_arm(mode, flags, seed, run, models, results):
    """Train one arm as its demo does; (run folder, results folder, settings, last step)."""
    from skingan.config import resolve_config
    from skingan.loop import train
    from skingan.runs import read_config
    if mode == "classify":                 # the code classify.py's demo trains its GAN with
        from skingan import demo_data
        from skingan.benefit import demo
        data, split_path = classify_split(os.path.dirname(models))
        run_dir = demo.train_gan(data, demo_data.DEMO_RARE_CLASS, split_path, run, models,
                                 results, gan=dict(flags, seed=seed), log=quiet)
        cfg = read_config(run_dir)["settings"]
        return run_dir, os.path.join(results, run), cfg, cfg["steps"]
    explicit = dict(flags, seed=seed, run=run, log_every=flags["steps"])
    run, cfg = resolve_config(explicit, models)
    result = train(cfg, run, models, results, log=quiet, handle_signals=False)
    return result["run_dir"], result["results_dir"], cfg, result["step"]


def measure(path, cfg, seed, held_out):
    """The figures of one saved generator against the held-out images: (fakes, labels,
    colours per class, diversity within each class, whether every class's colours pass)."""
    from skingan import colour
    from skingan.monitoring import HealthMonitor
    fakes, labels = generated(path, cfg, HELD_OUT, seed)
    colours, within = {}, {}
    for name in held_out:
        mine = fakes if labels is None else fakes[labels == cfg["classes"].index(name)]
        colours[name] = colour.compare(mine, held_out[name])
        # the monitor's score within one class (its own score pools a conditional grid's
        # classes, so rows that each repeat one lesion still differ from one another)
        within[name] = (HealthMonitor.diversity(mine[:75])
                        / HealthMonitor.diversity(held_out[name][:75]))
    looks = all(colour.looks_like(c) for c in colours.values())
    return fakes, labels, colours, within, looks


def logged_column(results_dir, name):
    """{step: value} of one column of the run's losses.csv ({} when it has no such column)."""
    import numpy as np
    rows = np.genfromtxt(os.path.join(results_dir, "losses.csv"), delimiter=",", names=True)
    rows = np.atleast_1d(rows)
    if name not in (rows.dtype.names or ()):
        return {}
    return {int(step): float(value) for step, value in zip(rows["step"], rows[name])}


def run_one(mode, name, flags, seed, root, grids, record, snapshots, held_out):
    import keras
    import numpy as np

    from skingan.checkpoints import read_best_step
    from skingan.metrics import swd
    run = f"{name.replace(' ', '-')}-seed{seed}"
    models, results = os.path.join(root, "models"), os.path.join(root, "results")
    record.reset()
    snapshots.reset()
    start, cpu = time.perf_counter(), time.process_time()
    run_dir, results_dir, cfg, step = train_arm(mode, flags, seed, run, models, results)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    final = f"samples_{step:06d}.png"
    os.makedirs(grids, exist_ok=True)
    shutil.copy(os.path.join(results_dir, final), os.path.join(grids, run + ".png"))
    fakes, labels, colours, within, looks = measure(
        os.path.join(run_dir, "generator.keras"), cfg, seed, held_out)
    np.savez_compressed(os.path.join(grids, run + ".npz"), fakes=fakes,
                        labels=np.array([]) if labels is None else labels)
    share = HELD_OUT // len(held_out)          # SWD: HELD_OUT reals, the classes in equal parts
    reals = np.concatenate([images[:share] for images in held_out.values()])
    score = swd(reals, fakes)["average"]
    ada_p = logged_column(results_dir, "ada_p")
    best_step = read_best_step(os.path.join(run_dir, "checkpoints"))
    # every checkpoint's generator, as if the run had ended there (or showed its best)
    checkpoints = {}
    for at, path in sorted(snapshots.paths.items()):
        _, _, c_colours, c_within, c_looks = measure(path, cfg, seed, held_out)
        grid = os.path.join(results_dir, f"samples_{at:06d}.png")
        if os.path.isfile(grid) and at != step:
            shutil.copy(grid, os.path.join(grids, f"{run}-step{at}.png"))
        checkpoints[at] = dict(classes=record.by_step.get(at, {}), colours=c_colours,
                               within=c_within, looks=c_looks, p=ada_p.get(at))
    checked = [r for _, r, after_warmup in record.ratios if after_warmup]
    row = dict(final=record.ratios[-1][1] if record.ratios else float("nan"),
               low=min(checked) if checked else float("nan"),
               warned=record.warned, classes=dict(record.classes), swd=score,
               seconds=seconds, cpu=cpu, colours=colours, within=within, looks=looks,
               trace=" ".join(f"{s}:{r:.2f}" for s, r, _ in record.ratios),
               p=ada_p.get(step), p_max=max(ada_p.values()) if ada_p else None,
               best_step=best_step, checkpoints=checkpoints)
    keras.backend.clear_session()
    for folder in (run_dir, results_dir):
        shutil.rmtree(folder, ignore_errors=True)
    snapshots.reset()
    return row


def passes(classes, looks):
    """The pass rule: no class of the monitor's check below its threshold, every class's
    colours passing."""
    import inspect

    from skingan.monitoring import HealthMonitor
    threshold = inspect.signature(HealthMonitor).parameters["min_diversity"].default
    return bool(classes) and min(classes.values()) >= threshold and looks


def checkpoint_line(at, figures, best_step):
    """One log line for one checkpoint's figures."""
    classes, colours = figures["classes"], figures["colours"]
    monitor = ", ".join(f"{c} {r:.2f}" for c, r in classes.items()) or "no grid"
    dists = "/".join(f"{c['distance']:.0f}" for c in colours.values())
    offs = max(100 * c["off_palette"] for c in colours.values())
    p = "" if figures["p"] is None else f"  p {figures['p']:.3f}"
    verdict = "PASS" if passes(classes, figures["looks"]) else "fail"
    return (f"      step {at:4d}{' (best by SWD)' if at == best_step else ''}: monitor "
            f"{monitor}; colour distance {'/'.join(colours)} {dists}, off-palette worst "
            f"{offs:.0f} %, colours {'pass' if figures['looks'] else 'FAIL'}; within a class "
            f"lowest {min(figures['within'].values()):.2f}{p}  -> {verdict}")


def table(rows):
    classes = list(next(iter(rows.values()))[0]["colours"])
    lines = ["| arm | final diversity, each seed | min after warm-up | warned | "
             "SWD x 10^3, median (range) | colour distance per class "
             f"({', '.join(classes)}), each seed | off-palette %, worst class | colours pass | "
             "diversity within a class, lowest | ADA p at the end (max) | passes at the end | "
             "best step by SWD: passes | wall s, median | CPU s, median |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---:|---:|"]
    for arm, runs in rows.items():
        swds = [r["swd"] for r in runs]
        finals = ", ".join(f"{r['final']:.2f}" for r in runs)
        lows = ", ".join(f"{r['low']:.2f}" for r in runs)
        warned = sum(r["warned"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        dists = "; ".join("/".join(f"{c['distance']:.0f}" for c in r["colours"].values())
                          for r in runs)
        offs = ", ".join(f"{100 * max(c['off_palette'] for c in r['colours'].values()):.0f}"
                         for r in runs)
        looks = sum(r["looks"] for r in runs)
        within = ", ".join(f"{min(r['within'].values()):.2f}" for r in runs)
        ps = ", ".join("-" if r["p"] is None else f"{r['p']:.2f} ({r['p_max']:.2f})"
                       for r in runs)
        at_end = sum(passes(r["classes"], r["looks"]) for r in runs)
        best = ", ".join(
            "-" if r["best_step"] not in r["checkpoints"] else
            f"{r['best_step']}: "
            + ("yes" if passes(r["checkpoints"][r["best_step"]]["classes"],
                                r["checkpoints"][r["best_step"]]["looks"]) else "no")
            for r in runs)
        lines.append(f"| {arm} | {finals} | {lows} | {warned}/{len(runs)} | "
                     f"{statistics.median(swds):.0f} ({min(swds):.0f} - {max(swds):.0f}) | "
                     f"{dists} | {offs} | {looks}/{len(runs)} | {within} | {ps} | "
                     f"{at_end}/{len(runs)} | {best} | {seconds:.0f} | {cpu:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    from benchmarks import bench_limited_data as bld
    from skingan import colour
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2",
                        help="comma-separated seeds (default: %(default)s)")
    parser.add_argument("--arms", help="comma-separated arm names (default: all of the set)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--conditional", action="store_true",
                       help="the multi-class demo's arms (train.py --conditional)")
    group.add_argument("--classify", action="store_true",
                       help="classify.py's demo GAN (the rare class's training fold)")
    parser.add_argument("--grids", default=os.path.join("Results", "bench_demo_grids"),
                        help="where the final grids are copied (default: %(default)s)")
    args = parser.parse_args(argv)
    mode = "conditional" if args.conditional else "classify" if args.classify else "plain"
    arms = dict(plain=ARMS, conditional=COND_ARMS, classify=CLASSIFY_ARMS)[mode]
    chosen = [a.strip() for a in args.arms.split(",")] if args.arms else list(arms)
    unknown = [a for a in chosen if a not in arms]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {list(arms)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    budget = f"arms {chosen}, seeds {seeds}, the built-in demo data ({mode})"
    grids = os.path.abspath(args.grids)

    def body(root, log):
        record = DiversityLog()
        snapshots = Snapshots(os.path.join(root, "snapshots"))
        held_out = held_out_images(mode)
        rows = {}
        for seed in seeds:
            for arm in chosen:
                row = run_one(mode, arm, arms[arm], seed, root, grids, record, snapshots,
                              held_out)
                rows.setdefault(arm, []).append(row)
                log(f"  {arm:14s} seed {seed}: diversity {row['final']:.2f} (min "
                    f"{row['low']:.2f}{', warned' if row['warned'] else ''})  SWD "
                    f"{row['swd']:6.1f}  colours {'pass' if row['looks'] else 'FAIL'}  "
                    f"{row['seconds']:.0f} s ({row['cpu']:.0f} CPU s)"
                    + ("" if row["p"] is None else
                       f"  ADA p {row['p']:.3f} at the end, max {row['p_max']:.3f}")
                    + f"   [{row['trace']}]")
                if mode == "conditional":
                    log("      the monitor per class at the last grid: " + ", ".join(
                        f"{c} {r:.2f}" for c, r in row["classes"].items()))
                for name, figures in row["colours"].items():
                    log(f"      {name:4s} {colour.describe(figures)}; diversity within the "
                        f"class {row['within'][name]:.2f}")
                log("      every checkpoint's generator, as if the run ended there:")
                for at, figures in row["checkpoints"].items():
                    log(checkpoint_line(at, figures, row["best_step"]))
        return rows
    rows = bld.run_in_tempdir("bench_demo", budget, body)
    print(table(rows))


if __name__ == "__main__":
    main()
