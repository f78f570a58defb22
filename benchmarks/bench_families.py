"""The three families side by side on real dermoscopy: SL-StyleGAN, DCGAN and StyleGAN2-ADA
at the same budget in images shown (issue 21)

    python -m benchmarks.bench_families --out fam.jsonl                  # the default arms
    python -m benchmarks.bench_families --out fam.jsonl --arms all       # every arm
    python -m benchmarks.bench_families --out fam.jsonl --table          # table of what finished
    python -m benchmarks.bench_families --out fam.jsonl --families sl-stylegan --arm color
    python -m benchmarks.bench_families --steps 10 --seeds 1 --out smoke.jsonl   # a smoke run

Data: the real 32 x 32 PH2 dermoscopy patches (`python ../shared/data/get_dermoscopy_patches.py`
writes them into Datasets/ph2-patches/; --data to point elsewhere). The patches come in
pairs patchNNNa / patchNNNb cut from one lesion, so the split keeps a pair on one side: with
a fixed seed, whole pairs are drawn for a held-out set of HELD_OUT images that no run trains
on, then another HELD_OUT for the floor; every other patch is the training set.

Arms, for every family at the same number of iterations of the same batch (so the same
images shown), each family's paper optimiser settings, networks and flips otherwise, through
the real training loop (loop.train) at 32 px:
- none:        no augmentation (SL-StyleGAN's and DCGAN's faithful recipe);
- diffaugment: --augment color,translation,cutout;
- ada:         --augment ada (StyleGAN2's own default), target 0.6, with the adaptation
               speed scaled to the budget (--ada-kimg ADA_KIMG: p can go from 0 to 1 in
               ADA_KIMG thousand images; ADA's 500 kimg would move p by at most 0.01 here);
and two diagnostic arms for SL-StyleGAN (finding 2 of docs/bench-families.md):
- translation,cutout: DiffAugment without its colour transform;
- color:       DiffAugment's colour transform alone;
and three for finding 3: `ada sign`, `ada lsgan` and `ada rank`, SL-StyleGAN's ADA with
ADA's original heuristic r_t = E[sign(D(real))], with its LSGAN default r_t = E[D(real)]
named explicitly, and with the scale-free r_t = E[sign(D(real_i) - D(fake_i))]
(skingan/ada.py).
StyleGAN2 runs NVlabs' auto configuration except the batch (the common one) and a smaller
--channel-base (named in the table), so that it is CPU-sized.

Score: SWD x 10^3 (skingan.metrics.swd: ProGAN's sliced Wasserstein distance over the 32
and 16 px Laplacian levels) between HELD_OUT images of the final generator (the EMA one for
StyleGAN2) and the HELD_OUT held-out images; lower is better. References at the same n: the
floor (the other HELD_OUT fresh real images) and a copy of the training set (HELD_OUT
training images, which SWD cannot tell from new ones). Every finished run is appended to
--out as one JSON line (so a partial table can be written from what finished; a rerun with
the same --out skips the runs already there); the table gives the median and range over
seeds and the wall time of each run, which the machine's load distorts.
"""
import json
import os
import random
import re
import statistics
import time

from benchmarks.bench_limited_data import (generated, parse_bench_args, run_in_tempdir,
                                           train_run)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESOLUTION, BATCH, HELD_OUT = 32, 16, 300
ADA_KIMG = 1.0
CHANNEL_BASE = 1024            # StyleGAN2's at 32 px on the CPU (NVlabs' auto: 16384)
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "Datasets", "ph2-patches")
if not os.path.isdir(DATA):                     # a worktree without the data: main's copy
    DATA = "/work/main/Datasets/ph2-patches"
FAMILIES = ("sl-stylegan", "dcgan", "stylegan2")
ARMS = {"none": dict(augment=""),
        "diffaugment": dict(augment="color,translation,cutout"),
        "ada": dict(augment="ada", ada_kimg=ADA_KIMG),
        "translation,cutout": dict(augment="translation,cutout"),
        "color": dict(augment="color"),
        "ada sign": dict(augment="ada", ada_kimg=ADA_KIMG, ada_heuristic="sign"),
        "ada lsgan": dict(augment="ada", ada_kimg=ADA_KIMG, ada_heuristic="lsgan"),
        "ada rank": dict(augment="ada", ada_kimg=ADA_KIMG, ada_heuristic="rank")}
DEFAULT_ARM = {"sl-stylegan": "none", "dcgan": "none", "stylegan2": "ada"}
THREE = ("none", "diffaugment", "ada")
DIAGNOSTIC = {"sl-stylegan": ("translation,cutout", "color", "ada sign", "ada lsgan",
                              "ada rank")}


def quiet(*_args, **_kwargs):
    pass


def plan(families, seeds, which):
    """[(family, arm, seed)] in priority order: every family's default arm for each seed
    first (seed by seed, so a partial table has all families), then the other two of
    none / diffaugment / ada, then the diagnostic arms. which: 'default', 'three', 'all' or
    'diagnostic' (the diagnostic arms alone)."""
    runs = [(f, DEFAULT_ARM[f], s) for s in seeds for f in families]
    if which in ("three", "all"):
        runs += [(f, a, s) for s in seeds for f in families for a in THREE
                 if a != DEFAULT_ARM[f]]
    if which in ("all", "diagnostic"):
        diagnostic = [(f, a, s) for s in seeds for f in families for a in DIAGNOSTIC.get(f, ())]
        runs = diagnostic if which == "diagnostic" else runs + diagnostic
    return runs


def split_pairs(data, held_out=HELD_OUT, seed=0, train_images=None):
    """{'train', 'held_out', 'floor'}: lists of PNG paths in `data`, whole pairs
    patchNNNa / patchNNNb on one side (an unpaired patch is a pair of one). Pairs are
    shuffled with `seed`; the first fill held_out, the next the floor, the rest train."""
    pairs = {}
    for name in sorted(os.listdir(data)):
        match = re.fullmatch(r"(.+?)[ab]?\.png", name)
        if match:
            pairs.setdefault(match.group(1), []).append(os.path.join(data, name))
    keys = sorted(pairs)
    random.Random(seed).shuffle(keys)
    sets = {"held_out": [], "floor": [], "train": []}
    for key in keys:
        side = next((s for s in ("held_out", "floor") if len(sets[s]) < held_out), "train")
        if side == "train" and train_images is not None and len(sets["train"]) >= train_images:
            break                           # a rare class's few images, whole pairs only
        sets[side].extend(pairs[key])
    if len(sets["train"]) < BATCH:
        from skingan.errors import UserError
        raise UserError(f"{data} holds {sum(map(len, pairs.values()))} patches: too few for "
                        f"two sets of {held_out} and a training set")
    return sets


def write_sets(root, data, train_images=None):
    """Link the split into folders under root; returns the training folder and the sets as
    uint8 (N, 32, 32, 3), loaded as training loads images (held_out and floor cut to
    HELD_OUT, the copy: HELD_OUT training images)."""
    import data_loader
    folders = {}
    for name, paths in split_pairs(data, train_images=train_images).items():
        folders[name] = os.path.join(root, name)
        os.makedirs(folders[name])
        for path in paths:
            os.symlink(path, os.path.join(folders[name], os.path.basename(path)))
    loaded = {name: data_loader.load_data(folder, resolution=RESOLUTION, log=quiet)[0]
              for name, folder in folders.items()}
    counts = {name: len(x) for name, x in loaded.items()}
    return folders["train"], {k: v[:HELD_OUT] for k, v in loaded.items()}, counts


def run_settings(model, arm, channel_base):
    """The flags of one arm for one family (StyleGAN2's smaller channel_base added)."""
    settings = dict(ARMS[arm])
    if model == "stylegan2":
        settings["channel_base"] = channel_base
    if "ada_heuristic" in settings and not _knows_heuristic():
        settings.pop("ada_heuristic")
    return settings


def _knows_heuristic():
    from skingan.config import COMMON_DEFAULTS
    return "ada_heuristic" in COMMON_DEFAULTS


def train_one(model, arm, seed, train_dir, root, steps, channel_base):
    """Train one run; returns (loop.train's result, its settings, the losses.csv log)."""
    run = f"{model}-{re.sub('[^a-z0-9]+', '-', arm)}-seed{seed}"
    return train_run(model, run, train_dir, root, steps, seed,
                     run_settings(model, arm, channel_base), log_every=max(1, steps // 20))


def d_probe(result, cfg, sets, fakes):
    """What the final discriminator says about the training reals, the held-out reals and
    the generated images, in inference mode and in training mode (SL-StyleGAN's D has
    dropout 0.6 before its logit, so the two differ): per set the mean logit and the
    mean sign, and ADA's validation heuristic r_v = (E[D(train)] - E[D(held out)]) /
    (E[D(train)] - E[D(fake)]) (Karras et al. 2020, eq. 1: 0 = no overfitting,
    1 = complete), which needs the held-out set a run does not have."""
    import numpy as np
    import tensorflow as tf

    from skingan.checkpoints import RunCheckpoint, restore_newest
    from skingan.components import build_for_reading
    from skingan.runs import RunFolder
    parts = build_for_reading(dict(cfg, mixed_precision=False))
    folder = RunFolder(os.path.dirname(result["run_dir"]), "",
                       os.path.basename(result["run_dir"]))
    restore_newest(RunCheckpoint(parts), folder.checkpoint_dir, quiet)
    low, high = parts.family.value_range
    probe = {}
    for mode, training in (("eval", False), ("train", True)):
        means = {}
        for name, images in (("train", sets["train"]), ("held_out", sets["held_out"]),
                             ("fake", fakes)):
            x = tf.constant(images.astype("float32") / 255.0 * (high - low) + low)
            logits = np.concatenate([np.asarray(parts.discriminator(
                x[i:i + 100], training=training), "float32").ravel()
                for i in range(0, len(x), 100)])
            means[name] = float(logits.mean())
            probe[f"{mode}_{name}_mean"] = means[name]
            probe[f"{mode}_{name}_std"] = float(logits.std())
            probe[f"{mode}_{name}_sign"] = float(np.sign(logits).mean())
        spread = means["train"] - means["fake"]
        probe[f"{mode}_rv"] = (means["train"] - means["held_out"]) / spread if spread else None
    return probe


def _column(log, name):
    return [float(v) for v in log[name]] if name in log.dtype.names else None


def record(model, arm, seed, steps, cfg, log, score, seconds, load_start):
    """One JSON line's dict: the run, its budget, score, wall time and D / ADA traces."""
    from benchmarks.bench_train import load_text
    row = dict(family=model, arm=arm, seed=seed, steps=steps, batch=BATCH,
               kimg=steps * BATCH / 1000, resolution=RESOLUTION, augment=cfg["augment"],
               swd=score["average"], swd_levels=score["levels"], seconds=round(seconds, 1),
               load_start=load_start, load_end=load_text(),
               time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    for key in ("channel_base", "ada_kimg", "ada_heuristic", "config", "gamma"):
        if key in cfg and (key != "ada_kimg" or cfg["augment"] == "ada"):
            row[key] = cfg[key]
    for name in ("ada_p", "ada_rt", "d_real", "d_fake", "acc_real", "acc_fake"):
        values = _column(log, name)
        if values is not None:
            row[name] = values[-1]
            row[name + "_trace"] = [round(v, 4) for v in values]
    return row


def done_runs(path):
    """{(family, arm, seed)} already in the JSON lines file at path."""
    if not path or not os.path.exists(path):
        return set()
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {(r["family"], r["arm"], r["seed"]) for r in rows if "family" in r}


def run_all(runs, steps, channel_base, data, out, root, log, train_images=None):
    """Train and score every (family, arm, seed) in runs not yet in `out`, appending each
    result there as it finishes; the references are appended once."""
    import keras
    import shutil

    from benchmarks.bench_train import load_text
    from skingan.metrics import swd
    train_dir, sets, counts = write_sets(root, data, train_images)
    log(f"split: {counts} images (pairs kept on one side)")
    finished = done_runs(out)
    if ("reference", "floor", 0) not in finished:
        floor = swd(sets["held_out"], sets["floor"])["average"]
        copy = swd(sets["held_out"], sets["train"])["average"]
        for name, value in (("floor", floor), ("copy", copy)):
            _append(out, dict(family="reference", arm=name, seed=0, swd=value, counts=counts,
                              colour=colour_stats(sets["floor" if name == "floor" else
                                                       "train"])))
        log(f"  floor (fresh real) SWD {floor:.1f}; a copy of the training set {copy:.1f}")
    for model, arm, seed in runs:
        if (model, arm, seed) in finished:
            continue
        load_start, start = load_text(), time.perf_counter()
        result, cfg, history = train_one(model, arm, seed, train_dir, root, steps,
                                         channel_base)
        fakes = generated(result, cfg, HELD_OUT, seed)
        score = swd(sets["held_out"], fakes)
        row = record(model, arm, seed, steps, cfg, history, score,
                     time.perf_counter() - start, load_start)
        row["colour"] = colour_stats(fakes)
        if model != "stylegan2":      # StyleGAN2's D is probed by its own r_t (logistic)
            try:                      # the score is kept whatever happens to the probe
                row["d_probe"] = d_probe(result, cfg, sets, fakes)
            except Exception as err:  # noqa: BLE001
                row["d_probe_error"] = f"{type(err).__name__}: {err}"
        _append(out, row)
        p = f"  final p {row['ada_p']:.3f} r_t {row['ada_rt']:.3f}" if "ada_p" in row else ""
        log(f"  {model:12s} {arm:18s} seed {seed}: SWD {row['swd']:7.1f}{p}  "
            f"({row['seconds']:.0f} s)")
        keras.backend.clear_session()
        for folder in (result["run_dir"], result["results_dir"]):
            shutil.rmtree(folder, ignore_errors=True)


def colour_stats(images):
    """Mean RGB (0-255) and mean saturation (per-pixel max - min over RGB, 0-255) of uint8
    images: how grey a set is."""
    import numpy as np
    x = np.asarray(images, "float32")
    return dict(rgb=[round(float(v), 1) for v in x.mean(axis=(0, 1, 2))],
                saturation=round(float((x.max(axis=3) - x.min(axis=3)).mean()), 1))


def _append(path, row):
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def read_rows(paths):
    """The JSON lines of every file in paths (a comma-separated string or a list)."""
    paths = paths.split(",") if isinstance(paths, str) else paths
    rows = []
    for path in paths:
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def heuristic(row):
    """The ADA heuristic a row ran with: runs from before --ada-heuristic existed used
    ADA's sign."""
    return row.get("ada_heuristic", "sign")


def table(paths):
    """The markdown tables of the JSON lines in paths: one row per family and arm, in the
    order they first finished, then the references; then what D said at the end of each
    SL-StyleGAN and DCGAN run (d_probe)."""
    rows = read_rows(paths)
    groups, refs = {}, {}
    for r in rows:
        if r["family"] == "reference":
            refs[r["arm"]] = r
        else:
            arm = r["arm"] + (f" (r_t: {heuristic(r)})" if r.get("augment") == "ada"
                              and not r["arm"].startswith("ada ") else "")
            groups.setdefault((r["family"], arm), []).append(r)
    lines = ["| family | arm | SWD x 10^3, median | range | seeds | kimg | wall s / run, "
             "median (range), loaded | sample saturation | final p (ADA) |",
             "|---|---|---:|---|---|---:|---|---:|---|"]
    for (model, arm), group in groups.items():
        values = [r["swd"] for r in group]
        seconds = [r["seconds"] for r in group if r.get("seconds") is not None] or [0.0]
        name = model + (f" (channel_base {group[0]['channel_base']})"
                        if "channel_base" in group[0] else "")
        ps = [r["ada_p"] for r in group if "ada_p" in r]
        saturation = [r["colour"]["saturation"] for r in group if "colour" in r]
        lines.append(
            f"| {name} | {arm} | {statistics.median(values):.0f} | {min(values):.0f} - "
            f"{max(values):.0f} | {','.join(str(r['seed']) for r in group)} | "
            f"{group[0]['kimg']:g} | {statistics.median(seconds):.0f} ({min(seconds):.0f} - "
            f"{max(seconds):.0f}) | "
            + (f"{statistics.median(saturation):.0f}" if saturation else "") + " | "
            + (", ".join(f"{p:.3f}" for p in ps) if ps else "") + " |")
    names = {"floor": "fresh real images (floor)", "copy": "training images (a copy)"}
    for name, r in refs.items():
        saturation = r["colour"]["saturation"] if "colour" in r else ""
        lines.append(f"| reference | {names.get(name, name)} | {r['swd']:.0f} | | | | | "
                     f"{saturation} | |")
    probes = [(r, r["d_probe"]) for r in rows if "d_probe" in r]
    if probes:
        lines += ["", "| family | arm | seed | mode | D(train reals): mean, E[sign] | "
                  "D(held-out reals) | D(fakes) | r_v | final r_t in training |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r, d in probes:
            for mode in ("eval", "train"):
                rv = d[f"{mode}_rv"]
                lines.append(
                    f"| {r['family']} | {r['arm']} | {r['seed']} | {mode} | "
                    + " | ".join(f"{d[f'{mode}_{s}_mean']:+.2f}, {d[f'{mode}_{s}_sign']:+.2f}"
                                 for s in ("train", "held_out", "fake"))
                    + (f" | {rv:+.2f} | " if rv is not None else " | | "))
                lines[-1] += (f"{r['ada_rt']:+.3f} ({heuristic(r)}) |" if "ada_rt" in r
                              and mode == "train" else " |")
    return "\n".join(lines)


def transform_stats(data, out, log):
    """How far each DiffAugment transform moves real patches, in the table's units: SWD of
    the held-out images against the floor images as they are, and against the floor images
    through 'color', 'translation,cutout' and all three, each on [0, 1] (SL-StyleGAN's
    range) and on [-1, 1] (DCGAN's and StyleGAN2's; mapped back for scoring), one draw of
    the transforms with a fixed seed; and the images' mean saturation. Appended to out."""
    import tempfile

    import numpy as np
    import tensorflow as tf

    from skingan import augment
    from skingan import images as image_io
    from skingan.metrics import swd
    with tempfile.TemporaryDirectory() as root:
        _, sets, _ = write_sets(root, data)
    held, floor = sets["held_out"], sets["floor"]
    row = dict(family="reference", arm="transforms", seed=0,
               floor=swd(held, floor)["average"], colour_floor=colour_stats(floor))
    for policy in ("color", "translation,cutout", "color,translation,cutout"):
        names = augment.parse_policy(policy)
        params = augment.draw_params(tf.random.Generator.from_seed(0), len(floor), names)
        for value_range in ((0.0, 1.0), (-1.0, 1.0)):
            low, high = value_range
            x = floor.astype("float32") / 255.0 * (high - low) + low
            y = image_io.to_uint8(augment.apply(x, params, value_range).numpy(), value_range)
            key = f"{policy} on [{low:g}, {high:g}]"
            row[key] = dict(swd=swd(held, y)["average"], colour=colour_stats(y))
            log(f"  floor images through {key}: SWD {row[key]['swd']:.1f}, "
                f"saturation {row[key]['colour']['saturation']}")
    _append(out, row)
    return row


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--out", default="bench_families.jsonl",
                        help="JSON lines file of finished runs (appended; finished runs skip)")
    parser.add_argument("--arms", choices=("default", "three", "all", "diagnostic"),
                        default="default",
                        help="default: each family's own default arm; three: none, "
                             "diffaugment and ada; all: and the diagnostic arms; "
                             "diagnostic: those alone")
    parser.add_argument("--arm", choices=tuple(ARMS),
                        help="run only this arm, for every family given (overrides --arms)")
    parser.add_argument("--channel-base", type=int, default=CHANNEL_BASE,
                        help="StyleGAN2's channel_base (default: %(default)s)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start at this seed (another process runs the ones before)")
    parser.add_argument("--data", default=DATA, help="the PH2 patches folder")
    parser.add_argument("--train-images", type=int,
                        help="train on only this many patches (whole pairs; the held-out and "
                             "floor sets unchanged): a rare class's few images. Use another "
                             "--out: finished runs are keyed by family, arm and seed only")
    parser.add_argument("--table", action="store_true",
                        help="only print the table of what --out holds (several files: "
                             "comma-separated)")
    parser.add_argument("--transform-stats", action="store_true",
                        help="only measure how far each DiffAugment transform moves real "
                             "patches (SWD and saturation, on both value ranges)")
    own, rest = parser.parse_known_args(argv)
    if own.transform_stats:
        print(transform_stats(own.data, os.path.abspath(own.out),
                              lambda text: print(text, flush=True)))
        return
    if own.table:
        print(table(own.out))
        return
    # the parents' flags are already out of `rest`; with them --help lists every flag
    steps, seeds, families = parse_bench_args(rest, __doc__.splitlines()[0], 300,
                                              parents=[parser], families=FAMILIES)
    seeds = [s for s in seeds if s >= own.first_seed]
    if not os.path.isdir(own.data):
        raise SystemExit(f"error: no patches in {own.data}; run "
                         "python ../shared/data/get_dermoscopy_patches.py")
    runs = plan(families, seeds, own.arms) if own.arm is None else \
        [(f, own.arm, s) for s in seeds for f in families]
    few = "" if own.train_images is None else f" (its first {own.train_images} patches)"
    arms = f"arms '{own.arms}'" if own.arm is None else f"arm '{own.arm}'"
    budget = (f"{steps} iterations of batch {BATCH} ({steps * BATCH / 1000:g} kimg) at "
              f"{RESOLUTION} px on the PH2 patches' training split{few}, seeds {seeds}, "
              f"{arms} ({len(runs)} runs), StyleGAN2 channel_base {own.channel_base}, "
              f"ADA speed {ADA_KIMG:g} kimg; SWD on {HELD_OUT} generated vs {HELD_OUT} "
              f"held-out images")
    run_in_tempdir("bench_families", budget,
                   lambda root, log: run_all(runs, steps, own.channel_base, own.data,
                                             os.path.abspath(own.out), root, log,
                                             own.train_images))
    print(table(own.out))


if __name__ == "__main__":
    main()
