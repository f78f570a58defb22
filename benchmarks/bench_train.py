"""Benchmark of training and generation speed: the real training loop, plain / XLA / bf16.

    python -m benchmarks.bench_train                       # full run (~10-15 min on 2 CPU cores)
    python -m benchmarks.bench_train --quick               # ~3 min, SMALLER resolutions, labelled
    python -m benchmarks.bench_train --configs dcgan       # one family, all three variants
    python -m benchmarks.bench_train --configs dcgan:plain --repeat 5

For DCGAN (64 px, batch 64) and SL-StyleGAN (256 px, batch 16), the authors' full-size
networks (channel_scale 1), each plain, with XLA (xla=True) and with bf16 mixed precision
(mixed_precision=True), it prints:

- training images/s through the real loop, ``skingan.loop.train`` (data pipeline, metric read-back,
  logging and checkpoint checks included; the first log interval, which holds tracing and
  compilation, and the time spent writing samples and checkpoints excluded), on synthetic
  demo images written to a temporary folder at the training resolution; --repeat N runs the
  loop N times and reports the median;
- the loop's Python-side overhead, measured directly: the step function is wrapped so that
  each call's start and end are recorded, and the overhead is the time between calls (data
  hand-off, metric read-back, logging, checkpoint checks) as a share of the loop's time, over
  the steady calls (target < 2 %). Both parts are timed in the same seconds, so the machine's
  drift cancels. (On CPU a step call returns when the step is done; on a GPU it may return
  earlier, and this share would then be the host's, not the device's, idle time.);
- the same compiled step called N times on one pre-made batch (a bare loop built from the same
  pieces: skingan.components.build_components),
  for comparison; its ratio to the loop is only as good as the drift allows;
- generation images/s (skingan.sampling.generate_images on the generator.keras each family's first
  trained variant saved);
- a 4096 x 4096 fp32 tf.matmul (GFLOP/s = 2 * 4096^3 / s, best of 3 after a warm-up), timed
  right before and right after every measurement. These machines' speed drifts 2-3x over
  minutes, so each figure is also printed normalised: images/s per matmul-GFLOP/s, the
  matmul being the mean of the two timings around it. The DCGAN figure is compared with the
  PyTorch reference (0.235, i.e. ~47 images/s at ~200 GFLOP/s) and the target (>= 0.28,
  1.2x PyTorch);
- utilisation: the training FLOPs per image of each family's step (the analytic counter
  skingan.model_summary.count_flops on G and D, combined by train_step_flops, which states
  the convention: backward = 2 x forward, 1 x where only activation or only input
  gradients are taken, R1's backward-of-backward 2 x its input-gradient pass; the
  accounting is printed), times images/s = achieved GFLOP/s, and its share of the matmul
  GFLOP/s timed around the measurement; for generation rows, G's forward pass only;
- which variant is fastest per family on this device (by the normalised figure).
"""
import argparse
import contextlib
import datetime
import gc
import os
import platform
import re
import shutil
import statistics
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MATMUL_N = 4096
PYTORCH_DCGAN_REF = 0.235     # PyTorch DCGAN: ~47 images/s at ~200 matmul-GFLOP/s (issue)
DCGAN_TARGET = 0.28           # 1.2x PyTorch
OVERHEAD_TARGET = 0.02
VARIANTS = {"plain": dict(xla=False, mixed_precision=False),
            "xla": dict(xla=True, mixed_precision=False),
            "bf16": dict(xla=False, mixed_precision=True),
            "remapper": dict(xla=False, mixed_precision=False)}
DEFAULT_VARIANTS = ("plain", "xla", "bf16")
# Variants whose step runs with other Grappler options than steps.R1_GRAPPLER_OPTIONS:
# 'remapper' is plain with TensorFlow's own options (the remapper on), as the R1 steps ran
# before docs/bench-remapper.md; compare it with plain in the same run.
STEP_GRAPPLER_OPTIONS = {"remapper": {}}

# Per family: training resolution, batch, loop steps / log interval, bare-loop steps,
# generation images and batch. Full = the settings; quick = smaller, labelled so.
# steps = k * log_every + 1: the gaps between steady calls (before calls log_every + 2 ..
# steps) then hold exactly one metric read-back and log line per log_every gaps.
SETTINGS = {
    "full": {
        "dcgan": dict(resolution=64, batch_size=64, steps=21, log_every=4, bare_steps=10,
                      gen_images=320, gen_batch=64),
        "sl-stylegan": dict(resolution=256, batch_size=16, steps=5, log_every=1,
                            bare_steps=3, gen_images=64, gen_batch=16),
    },
    "quick": {
        "dcgan": dict(resolution=32, batch_size=64, steps=10, log_every=3, bare_steps=4,
                      gen_images=256, gen_batch=64),
        "sl-stylegan": dict(resolution=64, batch_size=16, steps=7, log_every=2,
                            bare_steps=3, gen_images=48, gen_batch=16),
    },
}
NUM_IMAGES = 64               # synthetic training images per resolution


# ----------------------------------------------------------------------------- helpers

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor() or "unknown", set()
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return (model.group(1).strip() if model else "unknown",
            set(flags.group(1).split()) if flags else set())


def load_text():
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


class Matmul:
    """4096 x 4096 fp32 tf.matmul GFLOP/s: a warm-up, then the best of `repeats`."""

    def __init__(self, repeats=3):
        import tensorflow as tf
        self.tf = tf
        self.repeats = repeats
        self.a = tf.random.normal([MATMUL_N, MATMUL_N], seed=1)
        self.b = tf.random.normal([MATMUL_N, MATMUL_N], seed=2)
        self.history = []

    def __call__(self, label):
        tf = self.tf
        tf.matmul(self.a, self.b).numpy()                         # warm-up
        best = float("inf")
        for _ in range(self.repeats):
            start = time.perf_counter()
            tf.matmul(self.a, self.b).numpy()                     # .numpy() waits for it
            best = min(best, time.perf_counter() - start)
        gflops = 2 * MATMUL_N ** 3 / best / 1e9
        self.history.append(gflops)
        print(f"  [matmul before {label}: {gflops:.0f} GFLOP/s; {load_text()}]", flush=True)
        return gflops


def reset_keras():
    import keras
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    gc.collect()


def flops_accounting(model, s):
    """(training FLOPs per image, generation FLOPs per image, [(what, FLOPs)]) of the
    family's authors' networks at the benchmark's resolution."""
    from skingan.config import new_run_settings
    from skingan.families import get_family
    from skingan.model_summary import count_flops, train_step_flops
    cfg = new_run_settings(dict(model=model, data="unused", resolution=s["resolution"],
                                batch_size=s["batch_size"], channel_scale=1.0))
    generator, discriminator = get_family(model).build_models(cfg)
    parts = train_step_flops(model, generator, discriminator, cfg.get("r1_every"))
    gen = count_flops(generator)
    reset_keras()
    return sum(f for _, f in parts), gen, parts


def make_cfg(model, variant, s, data_dir, models_dir):
    from skingan.config import resolve_config
    explicit = dict(model=model, data=data_dir, resolution=s["resolution"],
                    batch_size=s["batch_size"], steps=s["steps"], log_every=s["log_every"],
                    # no sample grid or checkpoint before the last step (which train()
                    # excludes from images_per_sec anyway)
                    sample_every=s["steps"] + 1000, checkpoint_every=s["steps"] + 1000,
                    channel_scale=1.0, run=f"{model}-{variant}", **VARIANTS[variant])
    return resolve_config(explicit, models_dir)


@contextlib.contextmanager
def step_grappler_options(variant):
    """steps.R1_GRAPPLER_OPTIONS as the variant has them, while its step is built."""
    from skingan import steps
    saved = steps.R1_GRAPPLER_OPTIONS
    steps.R1_GRAPPLER_OPTIONS = STEP_GRAPPLER_OPTIONS.get(variant, saved)
    try:
        yield
    finally:
        steps.R1_GRAPPLER_OPTIONS = saved


def bench_loop(model, variant, s, data_dir, models_dir, results_dir, verbose):
    """The training loop (steady images/s, per-interval rates from its log) with its step
    calls timed: returns (result, rates, wall, calls), calls = [(start, end) of each call]."""
    from skingan import steps
    from skingan.families import get_family
    from skingan.loop import train
    run, cfg = make_cfg(model, variant, s, data_dir, models_dir)
    lines = []
    calls = []

    def log(msg):
        lines.append(str(msg))
        if verbose:
            print("    | " + str(msg).replace("\n", "\n    | "), flush=True)

    name = get_family(model).step_factory
    factory = getattr(steps, name)

    def timed_factory(*args, **kwargs):
        step = factory(*args, **kwargs)

        def timed_step(real):
            start = time.perf_counter()
            out = step(real)
            calls.append((start, time.perf_counter()))
            return out
        return timed_step

    setattr(steps, name, timed_factory)
    start = time.perf_counter()
    try:
        with step_grappler_options(variant):
            result = train(cfg, run, models_dir, results_dir, log=log, handle_signals=False,
                           cache_dir=None)
    finally:
        setattr(steps, name, factory)
    wall = time.perf_counter() - start
    rates = [float(m.group(1)) for line in lines if line.startswith("step ")
             for m in [re.search(r"([0-9.]+) img/s", line)] if m]
    return result, rates, wall, calls


def python_overhead(calls, log_every):
    """Share of the steady loop's time spent between step calls.

    Over calls log_every + 2 .. end (the first log interval holds tracing): the gaps before
    them (next batch from tf.data, appending the outputs, interval checks and, once per
    log_every gaps, the metric read-back, log line, health checks and CSV flush) against
    gaps + the calls themselves. Returns (share, mean gap in ms, mean call in ms).
    """
    steady = range(log_every + 1, len(calls))
    gaps = [calls[k][0] - calls[k - 1][1] for k in steady]
    inside = [calls[k][1] - calls[k][0] for k in steady]
    if not gaps:
        return None, None, None
    return (sum(gaps) / (sum(gaps) + sum(inside)), 1000 * statistics.mean(gaps),
            1000 * statistics.mean(inside))


def build_train_step(model, cfg):
    """The compiled train step the loop would make for `cfg` (a resolved config), built by
    the loop's own build_components."""
    import tensorflow as tf

    from skingan.components import build_components
    return build_components(cfg, tf.distribute.get_strategy()).train_step


def bench_bare(model, variant, s, data_dir, models_dir):
    """images/s of the same compiled step called bare_steps times on one pre-made batch."""
    import data_loader
    from skingan.families import get_family
    _, cfg = make_cfg(model, variant, s, data_dir, models_dir + "-bare")
    family = get_family(model)
    images, _ = data_loader.load_data(cfg["data"], resolution=cfg["resolution"],
                                      crop=cfg["crop"], log=lambda *_: None)
    real = next(iter(data_loader.make_dataset(images, cfg["batch_size"], seed=cfg["seed"],
                                              value_range=family.value_range)))
    with step_grappler_options(variant):
        step = build_train_step(model, cfg)
    t0 = time.perf_counter()
    float(step(real)["d_loss"])                                   # trace / compile
    warm = time.perf_counter() - t0
    float(step(real)["d_loss"])                                   # one more warm step
    n = s["bare_steps"]
    start = time.perf_counter()
    out = None
    for _ in range(n):
        out = step(real)
    float(out["d_loss"])                                          # sync once at the end
    bare = n * cfg["batch_size"] / (time.perf_counter() - start)
    # The same step fed by the training stream (prefetching tf.data, as in train()), still
    # without any logging: splits the loop's overhead into data hand-off and the rest.
    iterator = iter(data_loader.make_dataset(images, cfg["batch_size"], seed=cfg["seed"],
                                             value_range=family.value_range))
    next(iterator)                                                # start the pipeline
    start = time.perf_counter()
    for _ in range(n):
        out = step(next(iterator))
    float(out["d_loss"])
    fed = n * cfg["batch_size"] / (time.perf_counter() - start)
    return bare, fed, warm


def bench_generation(run_dir, s):
    from skingan.sampling import generate_images, load_generator
    bundle = load_generator(os.path.join(run_dir, "generator.keras"))
    for _ in generate_images(bundle, s["gen_batch"], seed=0,
                                      batch_size=s["gen_batch"]):
        pass                                                      # warm-up batch
    start = time.perf_counter()
    done = 0
    for seeds, batch in generate_images(bundle, s["gen_images"], seed=1000,
                                                 batch_size=s["gen_batch"]):
        done += len(batch)
    return done / (time.perf_counter() - start)


def parse_configs(items, parser):
    chosen = []
    for item in items:
        for part in item.split(","):
            part = part.strip().lower()
            if not part:
                continue
            model, _, variant = part.partition(":")
            model = {"sl": "sl-stylegan", "stylegan": "sl-stylegan"}.get(model, model)
            if model not in ("dcgan", "sl-stylegan"):
                parser.error(f"unknown family in --configs: {part!r} (dcgan, sl-stylegan)")
            variants = [variant] if variant else list(DEFAULT_VARIANTS)
            for v in variants:
                if v not in VARIANTS:
                    parser.error(f"unknown variant in --configs: {part!r} "
                                 f"({', '.join(VARIANTS)})")
                if (model, v) not in chosen:
                    chosen.append((model, v))
    return chosen


# ----------------------------------------------------------------------------- main

def main(argv=None):
    p = argparse.ArgumentParser(
        description="Training / generation images/s of DCGAN and SL-StyleGAN through the real "
                    "training loop, plain / XLA / bf16, normalised by a matmul GFLOP/s.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="configs: FAMILY[:VARIANT], FAMILY in dcgan, sl-stylegan (or sl); VARIANT in "
               "plain, xla, bf16 (default: all three), or remapper (plain with TensorFlow's "
               "own Grappler options in the step). Comma- or space-separated.")
    p.add_argument("--quick", action="store_true",
                   help="short version (~3 min): DCGAN 32 px and SL-StyleGAN 64 px instead of "
                        "64 / 256 px, fewer steps")
    p.add_argument("--configs", nargs="+", default=["dcgan", "sl-stylegan"],
                   help="which family:variant pairs to run (default: all six)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run each training loop this many times and report the median "
                        "(default 1)")
    p.add_argument("--no-bare", action="store_true",
                   help="skip the bare-step loop (the loop-vs-bare comparison)")
    p.add_argument("--no-generation", action="store_true", help="skip generation timing")
    p.add_argument("--verbose", action="store_true", help="show train()'s own log lines")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary folder (data, runs) and print its path")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    configs = parse_configs(args.configs, p)
    mode = "quick" if args.quick else "full"
    settings = SETTINGS[mode]

    import keras
    import tensorflow as tf

    from skingan.demo_data import write_demo_images

    model_name, flags = cpu_model()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    print("=" * 88)
    print(f"bench_train.py ({mode}{': REDUCED resolutions/steps, not the issue figures' if args.quick else ''})"
          f"  {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"machine: {model_name}, {os.cpu_count()} cores ({', '.join(isa) or 'no avx flags'}); "
          f"{platform.platform()}")
    print(f"python {platform.python_version()}, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}; GPUs visible: {len(tf.config.list_physical_devices('GPU'))}; "
          f"intra/inter-op threads {tf.config.threading.get_intra_op_parallelism_threads()}/"
          f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = all cores)")
    print(f"at start: {load_text()}")
    for model in dict.fromkeys(m for m, _ in configs):
        s = settings[model]
        print(f"{model}: {s['resolution']} px, batch {s['batch_size']}, channel_scale 1; loop "
              f"{s['steps']} steps, log_every {s['log_every']} (steady = steps "
              f"{s['log_every'] + 1}..{s['steps']}); bare loop {s['bare_steps']} steps")

    flops = {}
    for model in dict.fromkeys(m for m, _ in configs):
        train_f, gen_f, parts = flops_accounting(model, settings[model])
        flops[model] = dict(train=train_f, gen=gen_f)
        print(f"FLOPs per image, {model} {settings[model]['resolution']} px (analytic, "
              f"skingan.model_summary.train_step_flops; multiply-add = 2):")
        for what, f in parts:
            print(f"  {f / 1e9:8.3f} GFLOP  {what}")
        print(f"  {train_f / 1e9:8.3f} GFLOP  training iteration, per image; generation "
              f"(G forward) {gen_f / 1e9:.3f} GFLOP")
    print("=" * 88, flush=True)

    tmp = tempfile.mkdtemp(prefix="bench_train-")
    models_dir = os.path.join(tmp, "models")
    results_dir = os.path.join(tmp, "results")
    matmul = Matmul()
    start_gflops = matmul("everything (start)")

    def timed(label, fn):
        """fn() between two matmul timings: (its result, mean matmul GFLOP/s around it)."""
        before = matmul(label)
        value = fn()
        after = matmul(f"-- after {label}")
        return value, (before + after) / 2

    rows = {}                 # (model, variant) -> dict of figures
    gen_rows = {}
    total_start = time.perf_counter()
    try:
        data_dirs = {}
        for model in dict.fromkeys(m for m, _ in configs):
            res = settings[model]["resolution"]
            if res not in data_dirs:
                folder = os.path.join(tmp, f"data{res}")
                os.makedirs(folder)
                write_demo_images(folder, NUM_IMAGES, res, seed=0)
                data_dirs[res] = folder

        for model, variant in configs:
            s = settings[model]
            label = f"{model} {variant}"
            print(f"\n--- {label}: {s['resolution']} px, batch {s['batch_size']}", flush=True)
            loops = []
            for i in range(args.repeat):
                reset_keras()
                # a fresh run each repeat (the same folders would resume the finished one)
                runs_dir = models_dir if i == 0 else f"{models_dir}-repeat{i}"
                (result, rates, wall, calls), gf = timed(
                    f"{label} loop {i + 1}/{args.repeat}",
                    lambda: bench_loop(model, variant, s, data_dirs[s["resolution"]],
                                       runs_dir, f"{results_dir}-repeat{i}", args.verbose))
                share, gap_ms, call_ms = python_overhead(calls, s["log_every"])
                rate = result["images_per_sec"]
                achieved = rate * flops[model]["train"] / 1e9
                loops.append(dict(rate=rate, gf=gf, norm=rate / gf, overhead=share,
                                  util=achieved / gf))
                print(f"  train loop: {rate:.2f} images/s steady ({rate / gf:.3f} per "
                      f"GFLOP/s; {achieved:.0f} GFLOP/s achieved, {achieved / gf:.2f} of the "
                      f"matmul's {gf:.0f}); per-interval img/s {', '.join(f'{r:.1f}' for r in rates)} "
                      f"(first = tracing, excluded); train() wall {wall:.0f} s", flush=True)
                print(f"  Python-side overhead: {100 * share:.2f} % of the loop's time "
                      f"(mean gap between step calls {gap_ms:.2f} ms, mean call "
                      f"{call_ms:.1f} ms; target < {100 * OVERHEAD_TARGET:.0f} %)", flush=True)
            row = dict(loops=loops, run_dir=result["run_dir"],
                       loop=statistics.median(l["rate"] for l in loops),
                       norm=statistics.median(l["norm"] for l in loops),
                       util=statistics.median(l["util"] for l in loops),
                       overhead=statistics.median(l["overhead"] for l in loops))
            if not args.no_bare:
                reset_keras()
                (bare, fed, warm), gf = timed(
                    f"{label} bare loop",
                    lambda: bench_bare(model, variant, s, data_dirs[s["resolution"]],
                                       models_dir))
                bare_util = bare * flops[model]["train"] / 1e9 / gf
                row.update(bare=bare, fed=fed, bare_norm=bare / gf, bare_util=bare_util)
                print(f"  bare step:  {bare:.2f} images/s on one pre-made batch ({bare / gf:.3f}"
                      f" per GFLOP/s, {bare_util:.2f} of the matmul rate; first call {warm:.1f} s); {fed:.2f} images/s fed by "
                      f"the tf.data stream, no logging", flush=True)
            rows[(model, variant)] = row

        if not args.no_generation:
            for model in dict.fromkeys(m for m, _ in configs):
                # the first trained variant of the family (plain when it was run)
                variant = next(v for m, v in configs if m == model)
                s = settings[model]
                reset_keras()
                label = f"{model} generation ({variant} run's generator.keras)"
                print(f"\n--- {label}", flush=True)
                rate, gf = timed(label, lambda: bench_generation(
                    rows[(model, variant)]["run_dir"], s))
                achieved = rate * flops[model]["gen"] / 1e9
                gen_rows[model] = dict(rate=rate, gf=gf, norm=rate / gf, util=achieved / gf)
                print(f"  generate_images: {rate:.2f} images/s at batch {s['gen_batch']} "
                      f"({rate / gf:.4f} per GFLOP/s; {achieved:.0f} GFLOP/s achieved, "
                      f"{achieved / gf:.2f} of the matmul rate; {s['gen_images']} images "
                      f"after a warm-up batch)", flush=True)
    finally:
        if args.keep:
            print(f"\n(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- summary
    print("\n" + "=" * 88)
    print(f"SUMMARY ({mode}{', REDUCED sizes' if args.quick else ''}); matmul 4096^2 fp32: "
          f"start {start_gflops:.0f}, range {min(matmul.history):.0f}-"
          f"{max(matmul.history):.0f} GFLOP/s; total {time.perf_counter() - total_start:.0f} s;"
          f" {load_text()}")
    print("img/s/GF = images/s per matmul-GFLOP/s, the matmul being the mean of the timings "
          "just before and just after the measurement; loop figures are medians over "
          f"{args.repeat} run(s); overhead = time between step calls / loop time; GF/img = "
          "FLOPs per image (training iteration or G forward), util = images/s x GF/img / "
          "matmul GFLOP/s")
    print(f"{'config':<20}{'px':>4}{'batch':>6}{'loop img/s':>11}{'img/s/GF':>9}"
          f"{'GF/img':>8}{'util':>6}{'overhead':>9}{'bare img/s':>11}{'bare /GF':>9}"
          f"{'bare util':>10}{'fed img/s':>10}")
    for (model, variant), r in rows.items():
        s = settings[model]
        bare = (f"{r['bare']:11.2f}{r['bare_norm']:9.3f}{r['bare_util']:10.2f}"
                f"{r['fed']:10.2f}" if "bare" in r else f"{'-':>11}{'-':>9}{'-':>10}{'-':>10}")
        print(f"{model + ' ' + variant:<20}{s['resolution']:>4}{s['batch_size']:>6}"
              f"{r['loop']:>11.2f}{r['norm']:>9.3f}{flops[model]['train'] / 1e9:>8.2f}"
              f"{r['util']:>6.2f}{100 * r['overhead']:>8.2f}%{bare}")
        if len(r["loops"]) > 1:
            each = ", ".join(f"{run['norm']:.3f}" for run in r["loops"])
            utils = ", ".join(f"{run['util']:.2f}" for run in r["loops"])
            print(f"{'':<30}each run img/s/GF: {each}; util: {utils}")
    for model, g in gen_rows.items():
        s = settings[model]
        print(f"{'generate ' + model:<20}{s['resolution']:>4}{s['gen_batch']:>6}"
              f"{g['rate']:>11.2f}{g['norm']:>9.4f}{flops[model]['gen'] / 1e9:>8.2f}"
              f"{g['util']:>6.2f}")

    for variant in VARIANTS:
        r = rows.get(("dcgan", variant))
        if r is None:
            continue
        s = settings["dcgan"]
        size_note = "" if (s["resolution"], s["batch_size"]) == (64, 64) else \
            f" [NOT comparable: --quick runs {s['resolution']} px]"
        verdict = "n/a" if size_note else "MET" if r["norm"] >= DCGAN_TARGET else "NOT met"
        print(f"DCGAN {variant:<5} vs PyTorch: {r['norm']:.3f} images/s per GFLOP/s vs PyTorch "
              f"{PYTORCH_DCGAN_REF} ({r['norm'] / PYTORCH_DCGAN_REF:.2f}x); target >= "
              f"{DCGAN_TARGET}: {verdict}{size_note}")
    worst = max((r["overhead"] for r in rows.values()), default=None)
    if worst is not None:
        print(f"Python-side overhead: at most {100 * worst:.2f} % over all configs (target < "
              f"{100 * OVERHEAD_TARGET:.0f} %): {'MET' if worst < OVERHEAD_TARGET else 'NOT met'}")
    for model in dict.fromkeys(m for m, _ in configs):
        cands = {v: r for (m, v), r in rows.items() if m == model}
        if len(cands) < 2:
            continue
        best = max(cands, key=lambda v: cands[v]["norm"])
        rel = ", ".join(f"{v} {cands[v]['norm'] / cands[best]['norm']:.2f}" for v in cands)
        raw_best = max(cands, key=lambda v: cands[v]["loop"])
        note = "" if raw_best == best else f" (raw images/s would pick {raw_best})"
        print(f"recommendation {model}: fastest on this device (CPU) is '{best}' by images/s "
              f"per matmul-GFLOP/s (relative: {rel}){note}; differences under ~10 % are "
              f"within this machine's drift")
    print("=" * 88, flush=True)


if __name__ == "__main__":
    main()
