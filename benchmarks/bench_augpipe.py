"""What ADA's transform groups cost a training step's first call, per --augpipe.

    python -m benchmarks.bench_augpipe                         # StyleGAN2, 2 rounds, ~4 min on 2 cores
    python -m benchmarks.bench_augpipe --families sl-stylegan,stylegan2 --rounds 3

The first call traces the step, lets Grappler optimise it and runs it once: what every run,
resume and test pays before its first iteration. A group the pipe leaves out is left out of
the graph (skingan/ada.py's apply), so a smaller pipe starts faster. Tiny networks at 16 px
(bench_trace's), ADA at a fixed p of 0.5, each call in a fresh interpreter; the arms
alternate within each round, so the machine's drift falls on all of them. Printed per call:
wall and CPU seconds (all threads); then per family each arm's median CPU seconds and its
ratio to 'off' (no augmentation).
"""
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.bench_trace import (FAMILIES, families_and_rounds,  # noqa: E402
                                    in_a_fresh_interpreter)

ARMS = ("bgc", "bg", "blit", "off")


def first_call(family, pipe):
    """(wall s, CPU s) of one freshly built step's first call with ADA on `pipe` ('off':
    no augmentation)."""
    import tensorflow as tf
    from skingan.components import build_components
    from skingan.config import new_run_settings
    ada = dict(augment="ada", ada_p=0.5, augpipe=pipe) if pipe != "off" else dict(augment="")
    cfg = new_run_settings(dict(FAMILIES[family], data="unused", resolution=16, batch_size=4,
                                seed=0, **ada))
    parts = build_components(cfg, tf.distribute.get_strategy())
    low, high = parts.family.value_range
    real = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2), minval=low, maxval=high)
    wall, cpu = time.perf_counter(), time.process_time()
    float(parts.train_step(real)["d_loss"])
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    families, rounds = families_and_rounds(argv, __doc__, families="stylegan2", rounds=2)
    cpu = {(f, a): [] for f in families for a in ARMS}
    for r in range(rounds):
        for family in families:
            for pipe in ARMS:
                wall, seconds = in_a_fresh_interpreter("benchmarks.bench_augpipe",
                                                       "first_call", family, pipe)
                cpu[family, pipe].append(seconds)
                print(f"round {r + 1} {family:12s} {pipe:5s} wall {wall:6.1f} s  "
                      f"CPU {seconds:6.1f} s", flush=True)
    for family in families:
        median = {a: statistics.median(cpu[family, a]) for a in ARMS}
        print(f"{family}: median CPU s of the first call: " + ", ".join(
            f"{a} {median[a]:.1f} ({median[a] / median['off']:.2f}x off)" for a in ARMS))


if __name__ == "__main__":
    main()
