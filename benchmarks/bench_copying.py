"""Data copying: is a GAN trained on ~100 images copying them, and does that grow with
training? (issue 22)

    python -m benchmarks.bench_copying                        # ~20 min on 2 loaded CPU cores
    python -m benchmarks.bench_copying --steps 40 --data demo # a smoke run (~3 min)

Two data sets, each split three ways (no image in two parts):
- demo: the synthetic demo lesions (skingan.demo_data), 64 px drawn, loaded at 32 px; train
  100 images (seed 0), held-out 300 (seed 1), fresh 300 (seed 2);
- ph2: the real 32 x 32 dermoscopy patches of Datasets/ph2-patches (pairs a/b cut from one
  lesion kept on one side): train 50 pairs (100 images), held-out 150 pairs, fresh 150 pairs,
  drawn with seed 0.

References, with the same test: the training set itself (each training image three times,
300 "generated" images), and the fresh real images (a generator that generalises perfectly).

GAN runs: each family trains on the 100 training images through the real loop (loop.train)
with --exclude holding the 300 held-out images out and --eval-every scoring the fixed 300
latents' images at several checkpoints: SWD x 10^3 against the training images (the tracker's
reference set) and C_T / near copies against the held-out images, read back from the run's
metrics.csv. Family defaults otherwise, 32 px, batch 16, seed 0.

The test: skingan.copying, pixels-32 feature (no InceptionV3 weights on this machine),
5 cells (the default), C_T < -3 read as copying.

--long (does copying grow with training? docs/bench-copying.md):

    python -m benchmarks.bench_copying --long --data ph2 --out copying.jsonl --work runs
    python -m benchmarks.bench_copying --long --families dcgan --extra-seeds dcgan=1,2 ...
    python -m benchmarks.bench_copying --table --out a.jsonl,b.jsonl     # the table so far

The same three sets (100 training images, 300 held-out, 300 fresh; ph2 split by lesion
pair). The test needs at least MIN_HELDOUT_PER_CELL x 5 cells = 20 held-out images; 300 give
every cell about 60, and SWD its 300. Each family (SL-StyleGAN, DCGAN, StyleGAN2 with
bench_families' CHANNEL_BASE and ADA at --ada-kimg ADA_KIMG, each family's default arm there)
trains once through the real loop (loop.train, 32 px, batch 16, family defaults otherwise)
on the 100 training images alone, to the last of --points, keeping a checkpoint at every
point. Each point's shown generator (EMA for StyleGAN2) is read back from its checkpoint
and makes 300 images from fixed latents; they are scored with the cells fitted once on the
training set (pixels-32 with the training set's statistics, k-means seed 0): C_T, the
near-copy fraction, the median NN-distance ratio, SWD x 10^3 against the 300 held-out
images and against the training images x 3. Every point is one JSON line in --out as soon
as it is scored; a rerun skips those, scores the checkpoints an interrupted run left, and
resumes the run from its newest checkpoint (--no-train: score only).
"""
import argparse
import csv
import os
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESOLUTION, TRAIN_IMAGES, HELD_OUT, FRESH = 32, 100, 300, 300
PH2 = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Datasets",
                   "ph2-patches")
FAMILIES = ("sl-stylegan", "dcgan")


def quiet(*_args, **_kwargs):
    pass


def demo_sets(root):
    """{"train", "held_out", "fresh"}: lists of PNG paths of the demo images."""
    from skingan.demo_data import write_demo_images
    sets = {}
    for name, n, seed in (("train", TRAIN_IMAGES, 0), ("held_out", HELD_OUT, 1),
                          ("fresh", FRESH, 2)):
        folder = os.path.join(root, "demo_src", name)
        os.makedirs(folder)
        write_demo_images(folder, n=n, size=64, seed=seed)
        sets[name] = sorted(os.path.join(folder, f) for f in os.listdir(folder))
    return sets


def ph2_sets(ph2=PH2, seed=0):
    """The patches split by lesion pair: {"train", "held_out", "fresh"} lists of paths."""
    import numpy as np
    names = sorted(f for f in os.listdir(ph2) if f.endswith(".png"))
    pairs = {}
    for name in names:
        pairs.setdefault(name[:-5], []).append(os.path.join(ph2, name))   # patch12a -> patch12
    whole = sorted(k for k, v in pairs.items() if len(v) == 2)
    order = np.random.default_rng(seed).permutation(len(whole))
    cut = np.cumsum([TRAIN_IMAGES // 2, HELD_OUT // 2, FRESH // 2])
    parts = np.split(order, cut)[:3]
    return {name: [p for i in idx for p in pairs[whole[i]]]
            for name, idx in zip(("train", "held_out", "fresh"), parts)}


def prepare(sets, root, tag):
    """The run's data folder (training and held-out images, renamed with their part so ids
    never collide), the exclusion CSV of the held-out ids, and the three sets as uint8."""
    import data_loader
    data = os.path.join(root, f"{tag}_data")
    os.makedirs(data)
    ids = {}
    for part in ("train", "held_out"):
        ids[part] = []
        for i, path in enumerate(sets[part]):
            image = f"{part}_{i:04d}"
            shutil.copyfile(path, os.path.join(data, image + ".png"))
            ids[part].append(image)
    exclude = os.path.join(root, f"{tag}_heldout.csv")
    with open(exclude, "w", newline="") as f:
        csv.writer(f).writerows([["image"]] + [[i] for i in ids["held_out"]])
    loaded = {}
    for part, paths in sets.items():
        source = data_loader.ImageSource(paths, "folder", None, os.path.dirname(paths[0]))
        loaded[part] = data_loader.load_images(source, RESOLUTION, log=quiet)
    return data, exclude, loaded


def copying_scores(train, heldout, generated):
    """(C_T, near-copy fraction, cells used) with the pixels-32 feature, 5 cells."""
    from skingan import copying
    feats = copying.pixel_features(train, heldout, generated)
    result, _ = copying.run_test(*feats, feature=copying.PIXEL_FEATURE)
    return result["C_T"], result["near_copy_fraction"], result["cells_used"]


def train_run(model, data, exclude, root, steps, every, tag):
    """Train one family with the copying test during training -> metrics.csv rows."""
    from skingan.config import resolve_config
    from skingan.loop import train
    explicit = dict(data=data, model=model, resolution=RESOLUTION, batch_size=16, steps=steps,
                    seed=0, log_every=steps, sample_every=steps, checkpoint_every=every,
                    keep_checkpoints=1, run=f"{tag}-{model}", exclude=exclude,
                    eval_every=every, eval_images=HELD_OUT)
    models, results = os.path.join(root, "models"), os.path.join(root, "results")
    run, cfg = resolve_config(explicit, models)
    lines = []
    result = train(cfg, run, models, results, log=lines.append, handle_signals=False)
    with open(os.path.join(result["results_dir"], "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    best = [line for line in lines if "best so far" in line]
    return rows, best[-1].split(":")[0] if best else "none"


# ----------------------------------------------------------------------------------------------
# --long: does copying grow with training? (issue 22, "Measured")
# ----------------------------------------------------------------------------------------------

LONG_POINTS = (50, 100, 150, 200, 250, 300)     # iterations of batch 16 at which runs are scored
GENERATED = 300                                  # generated images per point (> 20 x 5 cells)


def long_sets(tag, root, ph2):
    """The three sets of one data set for --long: {"train", "held_out", "fresh"} as uint8,
    and the training folder (the only images the runs see). ph2: split by lesion pair
    (ph2_sets); demo: seeds 0, 1, 2 of the demo stream (demo_sets)."""
    import data_loader
    folder = os.path.join(root, f"{tag}_train")
    if tag == "demo":
        src = os.path.join(root, "demo_src")
        if os.path.isdir(src):                       # a rerun: the same images again
            shutil.rmtree(src)
        sets = demo_sets(root)
    else:
        sets = ph2_sets(ph2)
    if not os.path.isdir(folder):
        os.makedirs(folder)
        for path in sets["train"]:
            shutil.copyfile(path, os.path.join(folder, os.path.basename(path)))
    loaded = {}
    for part, paths in sets.items():
        source = data_loader.ImageSource(paths, "folder", None, os.path.dirname(paths[0]))
        loaded[part] = data_loader.load_images(source, RESOLUTION, log=quiet)
    return folder, loaded


def parse_extra_seeds(text):
    """'sl-stylegan=1,2;dcgan=1' -> [("sl-stylegan", [1, 2]), ("dcgan", [1])]."""
    out = []
    for part in [t for t in (text or "").split(";") if t.strip()]:
        family, _, seeds = part.partition("=")
        out.append((family.strip(), [int(s) for s in seeds.split(",") if s.strip()]))
    return out


def read_jsonl(path):
    import json
    rows = []
    for one in path.split(","):
        if os.path.exists(one):
            with open(one) as f:
                rows += [json.loads(line) for line in f if line.strip()]
    return rows


def append_jsonl(path, row):
    import json
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def point_scores(sets, generated_uint8, kmeans, stats):
    """C_T, near-copy fraction, median NN-distance ratio (pixels-32 with the training set's
    statistics, the fixed cells `kmeans`) and SWD x 10^3 against the held-out images and
    against the training images x 3 of one generated set."""
    import numpy as np

    from skingan import copying
    from skingan.metrics import swd
    feats = [copying.pixel_project(x, stats)
             for x in (sets["train"], sets["held_out"], generated_uint8)]
    result, _ = copying.run_test(*feats, feature=copying.PIXEL_FEATURE, kmeans=kmeans)
    return dict(c_t=result["C_T"], near_copies=result["near_copy_fraction"],
                nn_ratio=result["median_relative_distance"], cells_used=result["cells_used"],
                feature=result["feature"], cells=result["cells"],
                swd_heldout=swd(sets["held_out"], generated_uint8, seed=0)["average"],
                swd_train=swd(np.concatenate([sets["train"]] * 3), generated_uint8,
                              seed=0)["average"])


def checkpoint_images(cfg, run_dir, steps, n, seed):
    """{step: n uint8 images} of the shown generator (the EMA one where the family has it)
    of each kept checkpoint ckpt-<step> in run_dir, from the fixed latents generated() uses
    (numpy_normal([seed, 99])). The networks are built once (no train step is traced) and
    only the generator's variables are read from each checkpoint."""
    import numpy as np
    import tensorflow as tf

    from skingan import images as image_io
    from skingan.components import build_components
    from skingan.families import numpy_normal
    parts = build_components(cfg, compile_step=False)
    key = "ema_generator" if parts.ema_generator is not None else "generator"
    reader = tf.train.Checkpoint(**{key: list(parts.shown.variables)})
    inputs = parts.family.draw_inputs(numpy_normal([seed, 99]), n, cfg["latent_dim"],
                                      RESOLUTION)
    out = {}
    for step in steps:
        prefix = os.path.join(run_dir, "checkpoints", f"ckpt-{step}")
        if not os.path.exists(prefix + ".index"):
            continue
        reader.restore(prefix).expect_partial().assert_existing_objects_matched()
        fakes = parts.shown(inputs, training=False)         # (n, R, R, 3) in value_range
        out[step] = image_io.to_uint8(np.asarray(fakes), parts.family.value_range)
    return out


def long_run(model, seed, tag, train_dir, work, points):
    """Train one run through the real loop (loop.train) to the last point, checkpointing at
    every point and keeping them all; a rerun resumes it from its newest checkpoint."""
    import math

    from benchmarks.bench_families import CHANNEL_BASE, DEFAULT_ARM, run_settings
    from skingan.config import resolve_config
    from skingan.loop import train
    every = math.gcd(*points)
    explicit = dict(data=train_dir, model=model, resolution=RESOLUTION, batch_size=16,
                    steps=max(points), seed=seed, log_every=every, sample_every=max(points),
                    checkpoint_every=every, keep_checkpoints=0, run=f"{tag}-{model}-seed{seed}",
                    **run_settings(model, DEFAULT_ARM[model], CHANNEL_BASE))
    models, results = os.path.join(work, "models"), os.path.join(work, "results")
    run, cfg = resolve_config(explicit, models)
    result = train(cfg, run, models, results, log=quiet, handle_signals=False)
    return cfg, result["run_dir"]


def long_main(args):
    """--long: references once per data set, then every run (family, seed) trained to the
    last point and each point not yet in --out scored from its checkpoint and appended to
    --out. The runs live in --work: a rerun first scores the checkpoints an interrupted
    run left, then resumes it (the loop's own resume)."""
    import time as _time

    import keras
    import numpy as np

    from benchmarks.bench_families import DEFAULT_ARM
    from benchmarks.bench_train import load_text
    from skingan import copying
    points = sorted(int(s) for s in args.points.split(","))
    families = [f for f in args.families.split(",") if f]
    extra = parse_extra_seeds(args.extra_seeds)
    os.makedirs(args.work, exist_ok=True)
    done = {(r["data"], r["family"], r["seed"], r.get("step"))
            for r in read_jsonl(args.out)}
    log = lambda text: print(text, flush=True)   # noqa: E731
    log(f"bench_copying --long  {_time.strftime('%Y-%m-%dT%H:%M:%SZ', _time.gmtime())}; "
        f"{os.cpu_count()} cores; {load_text()}; points {points}; out {args.out}")
    runs = [(f, 0) for f in families] + [(f, s) for f, seeds in extra for s in seeds]
    for tag in [d for d in args.data.split(",") if d]:
        train_dir, sets = long_sets(tag, args.work, args.ph2)
        stats = copying.pixel_stats(sets["train"])
        kmeans = copying.fit_cells(copying.pixel_project(sets["train"], stats),
                                   copying.DEFAULT_CELLS, seed=0)
        counts = {k: len(v) for k, v in sets.items()}
        log(f"{tag}: {counts} images; cells: {copying.DEFAULT_CELLS}, the test needs at least "
            f"{copying.MIN_HELDOUT_PER_CELL * copying.DEFAULT_CELLS} held-out images")
        for name, gen in (("training set x3", np.concatenate([sets["train"]] * 3)),
                          ("fresh real", sets["fresh"])):
            if (tag, "reference", 0, name) in done or args.skip_references:
                continue
            row = dict(data=tag, family="reference", seed=0, step=name, counts=counts,
                       **point_scores(sets, gen, kmeans, stats))
            append_jsonl(args.out, row)
            log(f"  {tag} {name}: C_T {row['c_t']:.2f}, near copies "
                f"{row['near_copies']:.3f}, SWD(held-out) {row['swd_heldout']:.1f}")
        for model, seed in runs:
            todo = [s for s in points if (tag, model, seed, s) not in done]
            if not todo:
                continue
            run_dir = os.path.join(args.work, "models", f"{tag}-{model}-seed{seed}")
            load_start, start = load_text(), _time.perf_counter()
            for attempt in ("left", "trained"):
                if attempt == "trained" and args.no_train:
                    break
                if attempt == "trained":
                    cfg, run_dir = long_run(model, seed, tag, train_dir, args.work, points)
                    log(f"  {tag} {model} seed {seed}: trained to {max(points)} in "
                        f"{_time.perf_counter() - start:.0f} s ({load_start} -> {load_text()})")
                elif os.path.exists(os.path.join(run_dir, "config.json")):
                    from skingan.runs import read_config
                    cfg = read_config(run_dir)["settings"]
                else:
                    continue
                for step, fakes in checkpoint_images(cfg, run_dir, todo, GENERATED,
                                                     seed).items():
                    row = dict(data=tag, family=model, seed=seed, step=step,
                               kimg=step * 16 / 1000,
                               epochs=round(step * 16 / len(sets["train"]), 1),
                               arm=DEFAULT_ARM[model], channel_base=cfg.get("channel_base"),
                               augment=cfg["augment"],
                               **point_scores(sets, fakes, kmeans, stats),
                               train_seconds_to_here=round(_time.perf_counter() - start, 1),
                               load_start=load_start, load_end=load_text(),
                               time=_time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime()))
                    append_jsonl(args.out, row)
                    todo.remove(step)
                    log(f"  {tag} {model} seed {seed} step {step} ({row['epochs']} epochs): "
                        f"C_T {row['c_t']:.2f}, near {row['near_copies']:.3f}, NN ratio "
                        f"{row['nn_ratio']:.3f}, SWD(held-out) {row['swd_heldout']:.1f}, "
                        f"SWD(train) {row['swd_train']:.1f}")
                keras.backend.clear_session()
                if not todo:
                    break
    print("\n".join(long_table(read_jsonl(args.out))))


def long_table(rows):
    """The markdown table of --long's JSON lines: the references, then each run's points."""
    lines = ["| data | generated images | seed | step | kimg | epochs | C_T | cells used | "
             "near copies | NN ratio | SWD x 10^3 vs held-out | vs train x3 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    refs = [r for r in rows if r["family"] == "reference"]
    runs = sorted((r for r in rows if r["family"] != "reference"),
                  key=lambda r: (r["data"], r["family"], r["seed"], r["step"]))
    for r in refs + runs:
        name = r["step"] if r["family"] == "reference" else (
            r["family"] + (f" (channel_base {r['channel_base']})"
                           if r.get("channel_base") else ""))
        step = "" if r["family"] == "reference" else r["step"]
        kimg = "" if r["family"] == "reference" else f"{r['kimg']:g}"
        epochs = "" if r["family"] == "reference" else f"{r['epochs']:g}"
        lines.append(f"| {r['data']} | {name} | {r['seed'] if step != '' else ''} | {step} | "
                     f"{kimg} | {epochs} | {r['c_t']:.2f} | {r['cells_used']}/{r['cells']} | "
                     f"{r['near_copies']:.3f} | "
                     f"{r['nn_ratio']:.3f} | {r['swd_heldout']:.1f} | {r['swd_train']:.1f} |")
    return lines


def main(argv=None):
    import numpy as np

    from benchmarks.bench_limited_data import run_in_tempdir
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--long", action="store_true",
                   help="score runs at --points iterations (JSON lines in --out; see docs)")
    p.add_argument("--points", default=",".join(map(str, LONG_POINTS)),
                   help="--long: iterations at which each run is scored (default: %(default)s)")
    p.add_argument("--extra-seeds", default="",
                   help="--long: more seeds, e.g. 'sl-stylegan=1,2' (seed 0 always runs)")
    p.add_argument("--out", default="copying_long.jsonl", help="--long: JSON lines file")
    p.add_argument("--work", default="copying_long_work",
                   help="--long: folder of the runs (kept, so a rerun resumes them)")
    p.add_argument("--table", action="store_true", help="--long: print --out's table only")
    p.add_argument("--no-train", action="store_true",
                   help="--long: only score the checkpoints the runs in --work already have")
    p.add_argument("--skip-references", action="store_true",
                   help="--long: leave out the two reference rows (another process scores them)")
    p.add_argument("--steps", type=int, default=600, help="iterations per GAN run")
    p.add_argument("--evals", type=int, default=4, help="checkpoints scored per run")
    p.add_argument("--data", default="demo,ph2", help="comma-separated: demo, ph2")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--ph2", default=PH2, help="folder of the PH2 patches (default: %(default)s)")
    args = p.parse_args(argv)
    if args.table:
        print("\n".join(long_table(read_jsonl(args.out))))
        return
    if args.long:
        if args.families == ",".join(FAMILIES):
            args.families = ",".join(FAMILIES + ("stylegan2",))
        long_main(args)
        return
    every = max(1, args.steps // args.evals)
    budget = (f"{args.steps} iterations of batch 16 ({args.steps * 16 / 1000:g} kimg) at "
              f"{RESOLUTION} px on {TRAIN_IMAGES} training images, seed 0, scored every "
              f"{every}; C_T with 5 cells, pixels-32, on {HELD_OUT} generated vs {HELD_OUT} "
              "held-out images")

    def body(root, log):
        table = ["| data | generated images | step | SWD x 10^3 | C_T | near copies |",
                 "|---|---|---:|---:|---:|---:|"]
        for tag in [d for d in args.data.split(",") if d]:
            sets = demo_sets(root) if tag == "demo" else ph2_sets(args.ph2)
            data, exclude, imgs = prepare(sets, root, tag)
            from skingan.metrics import swd
            refs = {"the training set itself (x3)": np.concatenate([imgs["train"]] * 3),
                    "fresh real images": imgs["fresh"]}
            for name, gen in refs.items():
                c_t, near, used = copying_scores(imgs["train"], imgs["held_out"], gen)
                s = swd(np.concatenate([imgs["train"]] * 3), gen, seed=0)["average"]
                row = f"| {tag} | {name} | | {s:.1f} | {c_t:.2f} | {near:.3f} |"
                table.append(row)
                log(row)
            for model in [f for f in args.families.split(",") if f]:
                start = time.perf_counter()
                rows, best = train_run(model, data, exclude, root, args.steps, every, tag)
                for r in rows:
                    row = (f"| {tag} | {model} | {r['step']} | {float(r['swd']):.1f} | "
                           f"{float(r['c_t']):.2f} | {float(r['near_copies']):.3f} |"
                           if r.get("c_t") else f"| {tag} | {model} | {r['step']} | "
                           f"{float(r['swd']):.1f} | n/a | n/a |")
                    table.append(row)
                    log(row)
                log(f"  {tag} {model}: {time.perf_counter() - start:.0f} s; "
                    f"generator_best.keras from: {best}")
                import keras
                keras.backend.clear_session()
        return table

    table = run_in_tempdir("bench_copying", budget, body)
    print("\n".join(table))


if __name__ == "__main__":
    main()
