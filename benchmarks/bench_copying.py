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


def main(argv=None):
    import numpy as np

    from benchmarks.bench_limited_data import run_in_tempdir
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600, help="iterations per GAN run")
    p.add_argument("--evals", type=int, default=4, help="checkpoints scored per run")
    p.add_argument("--data", default="demo,ph2", help="comma-separated: demo, ph2")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--ph2", default=PH2, help="folder of the PH2 patches (default: %(default)s)")
    args = p.parse_args(argv)
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
