"""The three families side by side on real dermoscopy (issue 21): SL-StyleGAN, DCGAN and
StyleGAN2-ADA at the same budget in images shown.

    python -m benchmarks.bench_families                          # ~25 min on 2 loaded cores
    python -m benchmarks.bench_families --steps 20 --seeds 1     # a smoke run

Data: the real 32 x 32 PH2 dermoscopy patches in Datasets/ph2-patches (written by
../shared/data/get_dermoscopy_patches.py; 1,985 PNGs in a/b pairs cut from one lesion). The
pairs are shuffled with a fixed seed and split whole: HELD_OUT images are held out for
scoring, as many again are the floor set (fresh real images), the rest (~985) are the
training set. No run sees the held-out or floor images.

Each family trains with the real training loop (loop.train) at its paper settings, except
what a CPU budget forces, the same for every family: 32 px, batch BATCH, --steps
iterations (default 200: 3.2 kimg shown). Per family:
- sl-stylegan: its paper recipe (least squares, R1 5, Adam 1e-4 (0, 0.99), flips);
- dcgan:       its paper recipe (BCE, Adam 2e-4 (0.5, 0.999));
- stylegan2:   NVlabs' --config auto at 32 px (gamma 0.0064, mapping 2, EMA with ramp-up,
               lazy R1 / path length, style mixing) with ADA on (its default), except
               --channel-base CHANNEL_BASE (channels 512/256/128/64 at 4/8/16/32 px, where
               auto's 16384 gives 512 everywhere: ~10x the compute) and --ada-kimg ADA_KIMG
               (NVlabs' 500 kimg could move p by at most 0.006 in 3.2 kimg; scaled to the
               budget as in bench_limited_data), and batch BATCH instead of auto's 32.
The arms none / DiffAugment / ADA for every family would need 27 runs, which does not fit
the budget under the shared machine's load: each family runs its paper setting only.
Seeds 0, 1, 2 (weights, data order, latents, augmentations).

Score: SWD x 10^3 (skingan.metrics.swd, the 32 and 16 px levels) between HELD_OUT images of
the final generator (the EMA one for StyleGAN2, as NVlabs scores G_ema) and the HELD_OUT
held-out images; lower is better. References at the same n: the floor set against the
held-out set, and HELD_OUT training images (what copying the training set would score).
Wall time per run includes tracing the compiled step.
"""
import os
import random
import shutil
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.bench_limited_data import (generated, parse_bench_args, run_in_tempdir,
                                           train_arm)
from benchmarks import bench_limited_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATCHES = os.path.join(ROOT, "Datasets", "ph2-patches")
if not os.path.isdir(PATCHES):
    PATCHES = "/work/main/Datasets/ph2-patches"
RESOLUTION, BATCH, HELD_OUT = bench_limited_data.RESOLUTION, bench_limited_data.BATCH, 500
CHANNEL_BASE, ADA_KIMG = 2048, 2.0
ARMS = {"sl-stylegan": ("paper: no augmentation", {}),
        "dcgan": ("paper: no augmentation", {}),
        "stylegan2": (f"auto + ADA, channel_base {CHANNEL_BASE}",
                      dict(augment="ada", ada_kimg=ADA_KIMG, channel_base=CHANNEL_BASE))}
FAMILIES = tuple(ARMS)


def split_pairs(folder, held_out, seed=0):
    """(train, held_out, floor) lists of file names; a/b pairs never split."""
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    pairs = {}
    for name in names:
        pairs.setdefault(name[:-5], []).append(name)          # patch123a.png -> patch123
    keys = sorted(pairs)
    random.Random(seed).shuffle(keys)
    sets, current = {"held_out": [], "floor": [], "train": []}, "held_out"
    for key in keys:
        if current != "train" and len(sets[current]) >= held_out:
            current = "floor" if current == "held_out" else "train"
        sets[current].extend(pairs[key])
    return sets["train"], sets["held_out"], sets["floor"]


def write_sets(root, held_out=HELD_OUT):
    """The training folder and the held-out, floor and training images as uint8."""
    import data_loader
    train, held, floor = split_pairs(PATCHES, held_out)
    folders = {}
    for name, files in (("train", train), ("held_out", held), ("floor", floor)):
        folders[name] = os.path.join(root, name)
        os.makedirs(folders[name])
        for f in files:
            shutil.copy(os.path.join(PATCHES, f), folders[name])
    quiet = lambda *a, **k: None   # noqa: E731
    loaded = {name: data_loader.load_data(folders[name], resolution=RESOLUTION, log=quiet)[0]
              for name in folders}
    return folders["train"], loaded


def run_all(steps, seeds, families, root, log):
    import keras
    import numpy as np

    from skingan.metrics import swd
    train_dir, sets = write_sets(root)
    n = min(HELD_OUT, len(sets["held_out"]), len(sets["floor"]))
    held = sets["held_out"][:n]
    rs = np.random.RandomState(0)
    copy = sets["train"][rs.choice(len(sets["train"]), n, replace=False)]
    log(f"training images {len(sets['train'])}, held out {n}, floor {n}")
    references = {"fresh real images (floor)": swd(held, sets["floor"][:n])["average"],
                  f"{n} training images (a copy)": swd(held, copy)["average"]}
    scores = {}
    for model in families:
        arm, options = ARMS[model]
        for seed in seeds:
            start = time.perf_counter()
            result, cfg, p = train_arm(model, "paper", seed, train_dir, root, steps,
                                       {"paper": options})
            score = swd(held, generated(result, cfg, n, seed))["average"]
            seconds = time.perf_counter() - start
            scores.setdefault((model, arm), []).append((score, p, seconds))
            log(f"  {model:12s} seed {seed}: SWD {score:7.1f}"
                + (f"  final p {p:.3f}" if p is not None else "") + f"  ({seconds:.0f} s)")
            keras.backend.clear_session()
            for folder in (result["run_dir"], result["results_dir"]):
                shutil.rmtree(folder, ignore_errors=True)
    return scores, references


def table(scores, references):
    lines = ["| family | setting | SWD x 10^3, median | range | final p (ADA) | wall s per run "
             "(median) |", "|---|---|---:|---|---|---:|"]
    for (model, arm), rows in scores.items():
        values = [r[0] for r in rows]
        ps = [r[1] for r in rows if r[1] is not None]
        lines.append(f"| {model} | {arm} | {statistics.median(values):.0f} | "
                     f"{min(values):.0f} - {max(values):.0f} | "
                     f"{', '.join(f'{p:.2f}' for p in ps)} | "
                     f"{statistics.median([r[2] for r in rows]):.0f} |")
    for name, value in references.items():
        lines.append(f"| reference | {name} | {value:.0f} | | | |")
    return "\n".join(lines)


def main(argv=None):
    import sys
    argv = sys.argv[1:] if argv is None else argv
    steps, seeds, families = parse_bench_args(argv, __doc__.splitlines()[0], 200)
    if "--families" not in " ".join(argv):
        families = list(FAMILIES)
    unknown = [f for f in families if f not in ARMS]
    if unknown:
        raise SystemExit(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    budget = (f"{steps} iterations of batch {BATCH} ({steps * BATCH / 1000:g} kimg) at "
              f"{RESOLUTION} px on the PH2 patches' training split, seeds {seeds}; SWD on "
              f"{HELD_OUT} generated vs {HELD_OUT} held-out real images")
    scores, references = run_in_tempdir(
        "bench_families", budget, lambda root, log: run_all(steps, seeds, families, root, log))
    print(table(scores, references))


if __name__ == "__main__":
    main()
