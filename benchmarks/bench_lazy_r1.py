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
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ARMS = {"r1 every 1 (paper)": {}, "r1 every 16": dict(r1_every=16)}


def main(argv=None):
    from benchmarks import bench_limited_data as bld
    steps, seeds, _ = bld.parse_bench_args(argv, __doc__.splitlines()[0], 300)
    budget = (f"SL-StyleGAN, {steps} iterations of batch {bld.BATCH} at "
              f"{bld.RESOLUTION} px on {bld.TRAIN_IMAGES} demo images, seeds {seeds}; SWD on "
              f"{bld.HELD_OUT} generated vs {bld.HELD_OUT} held-out images")
    scores, references = bld.run_in_tempdir(
        "bench_lazy_r1", budget,
        lambda root, log: bld.run_all(steps, seeds, ["sl-stylegan"], root, log, ARMS))
    print(bld.table(scores, references))


if __name__ == "__main__":
    main()
