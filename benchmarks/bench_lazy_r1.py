"""Lazy R1 (--r1-every K): SWD at equal iterations, K = 1 (the paper) against K = 16
(StyleGAN2's value).

    python -m benchmarks.bench_lazy_r1                        # ~15-30 min on 2 loaded CPU cores
    python -m benchmarks.bench_lazy_r1 --steps 20 --seeds 1   # a smoke run

The setting of benchmarks/bench_limited_data.py (its helpers are reused): SL-StyleGAN on
100 synthetic demo images at 32 px, batch 16, the authors' networks and optimiser, no
augmentation, --steps iterations (default 300); SWD x 10^3 of 300 generated images against
300 held-out demo images (lower is better), seeds 0..--seeds - 1, median and range.
What it can show: whether lazy R1 visibly hurts (or helps) this early in training on this
small setting. A few hundred iterations at 32 px are far from the paper's 20,000 at 256 px;
seed-to-seed spread is large (see the ranges), so only a gap well beyond it means anything.
Its speed is bench_train's business (and README "Measured figures").
"""
import argparse
import datetime
import os
import platform
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ARMS = {"r1 every 1 (paper)": {}, "r1 every 16": dict(r1_every=16)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="iterations (default: 300)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (default: 3)")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from benchmarks import bench_limited_data as bld
    from benchmarks.bench_train import cpu_model, load_text
    tf.get_logger().setLevel("ERROR")
    log = lambda text: print(text, flush=True)   # noqa: E731
    seeds = list(range(args.seeds))
    log(f"bench_lazy_r1  {datetime.datetime.now().astimezone().isoformat('T', 'seconds')}")
    log(f"machine: {cpu_model()[0]}, {os.cpu_count()} cores, {platform.platform()}; "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}; at start: {load_text()}")
    budget = (f"SL-StyleGAN, {args.steps} iterations of batch {bld.BATCH} at "
              f"{bld.RESOLUTION} px on {bld.TRAIN_IMAGES} demo images, seeds {seeds}; SWD on "
              f"{bld.HELD_OUT} generated vs {bld.HELD_OUT} held-out images")
    log(f"budget: {budget}")
    start = time.perf_counter()
    root = tempfile.mkdtemp(prefix="bench_lazy_r1_")
    try:
        scores, references = bld.run_all(args.steps, seeds, ["sl-stylegan"], root, log, ARMS)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log(f"\n{budget}; {time.perf_counter() - start:.0f} s in all; at end: {load_text()}\n")
    log(bld.table(scores, references))


if __name__ == "__main__":
    main()
