"""What a quality score during training (--eval-every) costs, against the iterations between
two scores: the figure behind --eval-every's defaults.

    python -m benchmarks.bench_eval_cost                 # real-data and demo settings, ~10-20 min
    python -m benchmarks.bench_eval_cost --only demo     # the demo presets alone, ~2 min

For each family at its real-data defaults (the papers' networks, resolution and batch) and at
its demo preset: the compiled train step is timed over --steps iterations after two warm-up
ones (tracing), then one score as training takes it (QualityTracker.evaluate: --eval-images
images of the shown generator on the evaluation's fixed latents, SWD against the reals: 300
for the demo, as many as it has, --eval-images for real data, the most SWD compares; random
reals here, which cost the same), after one warm-up score. --images N scores N images
instead and scales the time up linearly (for 256 px on a CPU). The cost is
score seconds / (eval_every x seconds per iteration), eval_every being the family's default.
What it can show: the ratio, which is what --eval-every's default is chosen on. Absolute
seconds on a loaded 2-core CPU are far from a GPU's; the ratio moves less (both sides are
the same networks' convolutions), but a GPU speeds up training more than SWD's NumPy part,
so the ratio there is larger than here.
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(model, demo, steps, images=None, log=print):
    import numpy as np
    import tensorflow as tf

    from skingan.components import build_components
    from skingan.config import new_run_settings
    from skingan.events import generate_uint8
    from skingan.quality import QualityTracker
    explicit = dict(model=model) if demo else dict(model=model, data="unused")
    cfg = new_run_settings(explicit)
    parts = build_components(cfg)
    r, b = cfg["resolution"], cfg["batch_size"]
    low, high = parts.family.value_range
    real = tf.random.uniform((b, r, r, 3), low, high, seed=1)
    for _ in range(2):                                      # tracing
        parts.train_step(real)["d_loss"].numpy()
    start = time.perf_counter()
    for _ in range(steps):
        out = parts.train_step(real)
    out["d_loss"].numpy()                                    # waits for the last step
    per_step = (time.perf_counter() - start) / steps
    # SWD compares min(reals, fakes) images: the demo has 300 images, real data at most
    # --eval-images count (a larger set is subsampled)
    n = images or cfg["eval_images"]
    reals = np.random.RandomState(0).randint(0, 256, (min(n, 300) if demo else n, r, r, 3),
                                             np.uint8)
    with tempfile.TemporaryDirectory() as results:
        tracker = QualityTracker(reals, n, cfg["seed"], results, log=log)
        generate = lambda inputs: generate_uint8(parts, inputs)      # noqa: E731
        tracker.evaluate(1, generate, parts.draw_inputs)             # warm-up
        start = time.perf_counter()
        tracker.evaluate(2, generate, parts.draw_inputs)
        per_score = time.perf_counter() - start
    # with fewer images than --eval-images, the score's time is scaled up linearly (both
    # the generator's forward passes and SWD's descriptors grow with the image count)
    per_score *= cfg["eval_images"] / n
    every = cfg["eval_every"]
    return dict(setting=f"{model} {'demo' if demo else 'real data'}", resolution=r, batch=b,
                per_step=per_step, per_score=per_score, eval_every=every, measured=n,
                images=cfg["eval_images"], ratio=per_score / (every * per_step))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("real", "demo"), help="one kind of setting only")
    p.add_argument("--steps", type=int, default=5, help="timed iterations (default 5)")
    p.add_argument("--images", type=int, help="images per score actually generated and "
                   "scored (default: --eval-images' default, 500); fewer are scaled up")
    args = p.parse_args(argv)
    import keras
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} CPUs", flush=True)
    rows = []
    for demo in (False, True):
        if args.only and args.only != ("demo" if demo else "real"):
            continue
        for model in ("sl-stylegan", "dcgan"):
            rows.append(measure(model, demo, args.steps, args.images))
            row = rows[-1]
            print(f"{row['setting']}: {row['per_step']:.3f} s/iteration (batch "
                  f"{row['batch']}, {row['resolution']} px); a score of {row['images']} "
                  f"images {row['per_score']:.1f} s (measured on {row['measured']}); every {row['eval_every']} iterations: "
                  f"{100 * row['ratio']:.1f}% of training time", flush=True)
            keras.backend.clear_session()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n| setting | s / iteration | s / score | --eval-every | cost |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['setting']} ({row['resolution']} px, batch {row['batch']}) | "
              f"{row['per_step']:.3f} | {row['per_score']:.1f} ({row['images']} images) | "
              f"{row['eval_every']} | {100 * row['ratio']:.1f}% |")


if __name__ == "__main__":
    main()
