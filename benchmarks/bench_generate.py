"""Generation speed: generate.py end to end (compute + PNG writing) and compute only, the
path before the fast one and the fast one, interleaved, against a matmul timed beside them.

    python -m benchmarks.bench_generate                      # SL-StyleGAN 256 px, ~5 min
    python -m benchmarks.bench_generate --resolution 64 --n 64 --rounds 2   # quick

The generator: SL-StyleGAN at --resolution (the authors' full-size network, random weights,
saved to a temporary .keras file and loaded by skingan.sampling.load_generator). Its FLOPs per image
come from model_summary.count_flops. Each round times, in forward then reverse order in
alternate rounds (so that a linear drift cancels), with a 4096 x 4096 fp32 tf.matmul
(bench_train.Matmul) before and after:

- new, end to end: generate.main(--n N --batch-size B --out ...), the command line itself
  (the generator file is loaded once beforehand: load_generator is handed the loaded bundle,
  as its compiled forward pass is kept on it; a first call traced it);
- old, end to end: the path as generate.py had it before (commit d596169): per batch, the
  inputs drawn in the loop, the model in a tf.function (one trace per batch shape), then
  every image encoded and written in turn on the main thread;
- new and old compute only: the same loops without writing PNGs;
- PNG encoding alone: images.save_png of the generated images on one thread.

Per figure: images/s, GFLOP/s (images/s x FLOPs/image) and its ratio to the matmul rate
(the mean of the matmul timings just before and after the round); the target is >= 0.6 at
256 px. The old and new paths' files are compared byte for byte in every round.
"""
import argparse
import contextlib
import datetime
import io
import os
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET = 0.6


def old_generate_images(bundle, n, seed, batch_size, forward):
    """sampling.generate_images as it was (no truncation, normalize 'none'); `forward` is
    its tf.function, made once by the caller so that its traces are reused across calls."""
    from skingan import sampling
    from skingan.images import to_uint8
    for start in range(seed, seed + n, batch_size):
        seeds = list(range(start, min(start + batch_size, seed + n)))
        inputs = sampling.latent_inputs(bundle, seeds)
        yield seeds, to_uint8(forward(inputs).numpy(), bundle.value_range)


def old_generate_main(bundle, n, batch_size, out, forward):
    """generate.py's main loop as it was: each image saved in turn on the main thread."""
    from skingan.images import save_png
    os.makedirs(out, exist_ok=True)
    width = max(4, len(str(n - 1)))
    for seeds, batch in old_generate_images(bundle, n, 0, batch_size, forward):
        for s, img in zip(seeds, batch):
            save_png(img, os.path.join(out, f"seed{s:0{width}d}.png"))


def new_generate_main(bundle, path, n, batch_size, out):
    """generate.main on the command line's flags, load_generator handing back `bundle`."""
    import generate
    loader = generate.load_generator
    generate.load_generator = lambda *args, **kwargs: bundle
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            generate.main(["--run", path, "--n", str(n), "--batch-size", str(batch_size),
                           "--out", out])
    finally:
        generate.load_generator = loader


def same_files(a, b):
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    for name in names:
        with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
            if fa.read() != fb.read():
                return False
    return True


def main(argv=None):
    p = argparse.ArgumentParser(
        description="generate.py images/s, end to end and compute only, old path vs new, "
                    "against a 4096^2 fp32 matmul timed beside them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--resolution", type=int, default=256, help="SL-StyleGAN resolution")
    p.add_argument("--n", type=int, default=128, help="images per measurement")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds")
    args = p.parse_args(argv)
    if min(args.n, args.batch_size, args.rounds) < 1:
        p.error("--n, --batch-size and --rounds must be at least 1")

    import keras
    import numpy as np
    import tensorflow as tf

    import SL_StyleGAN
    from benchmarks.bench_train import Matmul, cpu_model, load_text
    from skingan import sampling
    from skingan.images import save_png
    from skingan.model_summary import count_flops
    from skingan.writer import PngWriter

    model_name, _ = cpu_model()
    print(f"bench_generate.py  {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}"
          f"  {model_name}, {os.cpu_count()} cores; TensorFlow {tf.__version__}; {load_text()}")
    tmp = tempfile.mkdtemp(prefix="bench_generate-")
    try:
        keras.utils.set_random_seed(0)
        path = os.path.join(tmp, "generator.keras")
        SL_StyleGAN.build_generator(args.resolution).save(path)
        bundle = sampling.load_generator(path)
        flops = count_flops(bundle.model)
        threads = PngWriter().workers
        print(f"SL-StyleGAN {args.resolution} px generator: {flops / 1e9:.2f} GFLOP/image "
              f"(count_flops); {args.n} images per measurement, batch {args.batch_size}; "
              f"{args.rounds} rounds; PNG writer threads {threads}", flush=True)
        matmul = Matmul()
        old_forward = tf.function(lambda inputs: bundle.model(inputs, training=False))
        n, b = args.n, args.batch_size
        folder = lambda name: os.path.join(tmp, name)  # noqa: E731

        def fresh(name):
            shutil.rmtree(folder(name), ignore_errors=True)
            return folder(name)

        tasks = {
            "new end to end": lambda: new_generate_main(bundle, path, n, b, fresh("new")),
            "old end to end": lambda: old_generate_main(bundle, n, b, fresh("old"),
                                                        old_forward),
            "new compute only": lambda: [None for _ in sampling.generate_images(
                bundle, n, 0, b)],
            "old compute only": lambda: [None for _ in old_generate_images(
                bundle, n, 0, b, old_forward)],
        }
        # warm-up: traces, first allocations (one batch each)
        new_generate_main(bundle, path, min(n, b), b, fresh("new"))
        old_generate_main(bundle, min(n, b), b, fresh("old"), old_forward)
        rates = {name: [] for name in tasks}
        ratios = {name: [] for name in tasks}
        identical = []
        for r in range(args.rounds):
            before = matmul(f"round {r + 1}")
            names = list(tasks) if r % 2 == 0 else list(tasks)[::-1]
            seconds = {}
            for name in names:
                start = time.perf_counter()
                tasks[name]()
                seconds[name] = time.perf_counter() - start
            after = matmul(f"-- after round {r + 1}")
            gf = (before + after) / 2
            identical.append(same_files(folder("new"), folder("old")))
            line = []
            for name in tasks:
                rate = n / seconds[name]
                rates[name].append(rate)
                ratios[name].append(rate * flops / 1e9 / gf)
                line.append(f"{name} {rate:.2f} img/s ({ratios[name][-1]:.2f})")
            print(f"  round {r + 1} (matmul {gf:.0f} GFLOP/s): " + "; ".join(line)
                  + f"; files identical: {identical[-1]}", flush=True)

        # PNG encoding alone, one thread, on generated images
        images = np.concatenate([batch for _, batch in sampling.generate_images(
            bundle, min(n, 32), 0, b)])
        png_dir = fresh("png")
        os.makedirs(png_dir)
        start = time.perf_counter()
        for i, image in enumerate(images):
            save_png(image, os.path.join(png_dir, f"{i}.png"))
        png_ms = 1000 * (time.perf_counter() - start) / len(images)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nSUMMARY (medians over {args.rounds} rounds; matmul 4096^2 fp32 "
          f"{min(matmul.history):.0f}-{max(matmul.history):.0f} GFLOP/s; {load_text()})")
    print(f"{'path':<20}{'images/s':>10}{'GFLOP/s':>9}{'/ matmul':>10}")
    for name in tasks:
        rate = statistics.median(rates[name])
        print(f"{name:<20}{rate:>10.2f}{rate * flops / 1e9:>9.0f}"
              f"{statistics.median(ratios[name]):>10.2f}")
    new, old = rates["new end to end"], rates["old end to end"]
    speedup = statistics.median(a / c for a, c in zip(new, old))
    share = statistics.median(a / c for a, c in zip(new, rates["new compute only"]))
    compute_ms = 1000 / statistics.median(rates["new compute only"])
    print(f"new / old end to end: median {speedup:.2f}x (same rounds); new end to end / "
          f"compute only: {share:.2f}")
    print(f"PNG encoding + writing: {png_ms:.1f} ms per image on one thread, against "
          f"{compute_ms:.1f} ms of compute per image (wall, all cores)")
    got = statistics.median(ratios["new end to end"])
    size_note = "" if args.resolution == 256 else f" [at {args.resolution} px, not 256]"
    print(f"end to end / matmul rate: {got:.2f}; target >= {TARGET}: "
          f"{'MET' if got >= TARGET else 'NOT met'}{size_note}")
    print(f"old and new files byte-identical in every round: {all(identical)}")
    return 0


if __name__ == "__main__":
    main()
