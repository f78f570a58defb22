"""What a training step's first call costs with and without AutoGraph (skingan.steps.AUTOGRAPH).

    python -m benchmarks.bench_trace                  # 3 families x 2 arms x 3 rounds, ~8 min on 2 cores
    python -m benchmarks.bench_trace --rounds 1 --families dcgan

The first call of a compiled step traces it (Python runs the step once to build the graph),
lets Grappler optimise the graph and executes it once: that is the start-up every run, every
resume and every test pays before its first iteration. For each family (tiny networks at
16 px, ADA on with p 0.5 so the augmentation pipeline is in the graph, as in the tests), the
components are built fresh with the same seed, and the step's first call is timed, with
AutoGraph on (tf.function's default) and off (the project's setting), each call in a fresh
interpreter as a run has it (AutoGraph caches what it has converted, so a second step in the
same process would hide its cost); the arms alternate within each round so the machine's
drift falls on both. Printed per call: wall seconds and
the process's CPU seconds (all threads), then per family the median of each arm and the
ratio off / on. Both arms must give the same losses on the same batch from the same
weights: the script checks that and says so, since a graph that AutoGraph would have
changed would show here first.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FAMILIES = {
    "dcgan": dict(model="dcgan", channel_scale=0.125),
    "sl-stylegan": dict(model="sl-stylegan", channel_scale=0.125),
    "stylegan2": dict(model="stylegan2", channel_base=256, latent_dim=32, w_dim=32),
}


def first_call(family, autograph):
    """(wall s, CPU s, d_loss, g_loss) of one freshly built step's first call."""
    import tensorflow as tf
    from skingan import steps
    from skingan.components import build_components, make_train_step
    from skingan.config import new_run_settings
    cfg = new_run_settings(dict(FAMILIES[family], data="unused", resolution=16, batch_size=4,
                                augment="ada", ada_p=0.5, seed=0))
    import keras
    keras.utils.set_random_seed(0)         # the same initial weights in both arms
    parts = build_components(cfg, tf.distribute.get_strategy(), compile_step=False)
    steps.AUTOGRAPH = autograph
    step = make_train_step(parts)
    low, high = parts.family.value_range
    real = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2), minval=low, maxval=high)
    wall, cpu = time.perf_counter(), time.process_time()
    metrics = step(real)
    d_loss, g_loss = float(metrics["d_loss"]), float(metrics["g_loss"])
    return time.perf_counter() - wall, time.process_time() - cpu, d_loss, g_loss


def in_a_fresh_interpreter(module, function, *args):
    """`module`.`function`(*args) (JSON-able arguments and result) in a fresh interpreter,
    as a run has it: nothing traced or converted before."""
    code = (f"import json; from {module} import {function}; "
            f"print('RESULT' + json.dumps({function}(*{args!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT")]
    if out.returncode or not lines:
        raise SystemExit(f"error: the measurement {function}{args!r} failed:\n"
                         f"{out.stderr[-2000:]}")
    return json.loads(lines[0][len("RESULT"):])


def families_and_rounds(argv, doc, families=",".join(FAMILIES), rounds=3):
    """(families, rounds) from the command line of a first-call benchmark."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=families,
                        help=f"comma-separated, of {', '.join(FAMILIES)} (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=rounds,
                        help="rounds of every arm (default: %(default)s)")
    args = parser.parse_args(argv)
    chosen = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(chosen) - set(FAMILIES))
    if unknown or args.rounds < 1:
        parser.error(f"unknown families {unknown}" if unknown else "--rounds: must be >= 1")
    return chosen, args.rounds


def main(argv=None):
    families, rounds = families_and_rounds(argv, __doc__)
    results = {(f, a): [] for f in families for a in (True, False)}
    losses = {}
    for r in range(rounds):
        for family in families:
            order = (True, False) if r % 2 == 0 else (False, True)
            for autograph in order:
                wall, cpu, d, g = in_a_fresh_interpreter("benchmarks.bench_trace", "first_call",
                                                          family, autograph)
                results[family, autograph].append((wall, cpu))
                losses.setdefault(family, set()).add((round(d, 5), round(g, 5)))
                print(f"round {r} {family:12s} autograph {'on ' if autograph else 'off'}"
                      f"  first call {wall:6.1f} s wall, {cpu:6.1f} s CPU  "
                      f"d_loss {d:.5f} g_loss {g:.5f}", flush=True)
    print("\nfamily        arm            median wall s  median CPU s")
    for family in families:
        med = {a: [statistics.median(x[i] for x in results[family, a]) for i in (0, 1)]
               for a in (True, False)}
        for a in (True, False):
            print(f"{family:12s}  autograph {'on ' if a else 'off'}  {med[a][0]:13.1f}"
                  f"  {med[a][1]:12.1f}")
        print(f"{family:12s}  off / on       {med[False][0] / med[True][0]:13.2f}"
              f"  {med[False][1] / med[True][1]:12.2f}")
        same = len(losses[family]) == 1
        print(f"{family:12s}  same losses in both arms: {'yes' if same else 'NO ' + str(losses[family])}")


if __name__ == "__main__":
    main()
