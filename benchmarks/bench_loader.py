"""Benchmark of the data loader: is it ever what training waits on?

Writes synthetic 600x450 dermoscopy-like JPEGs (the ISIC 2018 size) to a temporary folder and
prints images/s for:

(a) the first pass, decoding JPEG -> RGB -> R x R uint8, at R = 256 and 64:
    - data_loader.load_images (PIL in a thread pool, with JPEG draft mode), 1 and 2 threads;
    - the same PIL decode without draft mode (to show what draft buys);
    - a tf.data alternative (tf.io.decode_jpeg + tf.image.resize(antialias=True),
      num_parallel_calls=AUTOTUNE), for comparison;
(b) cached passes: the training stream ``make_dataset`` (float32 batches, random flips) from the
    decoded uint8 array, at 64 and 256 px, batch 16 (and 64), in memory and memory-mapped.

Usage: python -m benchmarks.bench_loader [--n 300] [--steps 300]
"""
import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import data_loader  # noqa: E402
from skingan.demo_data import render_lesion  # noqa: E402


def write_jpegs(folder, n, width=600, height=450):
    """n synthetic lesion JPEGs of width x height, quality 90 (about the ISIC file size)."""
    paths = []
    for i in range(n):
        rng = np.random.default_rng([7, i])
        path = os.path.join(folder, f"ISIC_{i:07d}.jpg")
        Image.fromarray(render_lesion(rng, height, width)).save(path, quality=90)
        paths.append(path)
    return paths


def time_it(fn, repeats=2):
    """Best of ``repeats`` wall-clock seconds (the first run also warms file caches)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_first_pass(folder, paths, resolution):
    source = data_loader.ImageSource(paths, "folder", None, folder)
    quiet = lambda *a, **k: None  # noqa: E731
    n = len(paths)
    for workers in (1, 2):
        s = time_it(lambda: data_loader.load_images(source, resolution, log=quiet,
                                                    workers=workers))
        print(f"  first pass {resolution:>3} px, PIL + draft, {workers} thread(s): "
              f"{n / s:8.0f} images/s")

    def no_draft():
        for p in paths:
            with Image.open(p) as img:
                np.asarray(img.convert("RGB").resize((resolution, resolution),
                                                     Image.Resampling.LANCZOS))
    s = time_it(no_draft)
    print(f"  first pass {resolution:>3} px, PIL without draft, 1 thread: {n / s:8.0f} images/s")

    import tensorflow as tf

    def decode(path):
        img = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        img = tf.image.resize(img, (resolution, resolution), method="bicubic", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)

    def tf_pass():
        ds = tf.data.Dataset.from_tensor_slices(paths).map(
            decode, num_parallel_calls=tf.data.AUTOTUNE)
        for _ in ds:
            pass
    s = time_it(tf_pass)
    print(f"  first pass {resolution:>3} px, tf.data decode_jpeg + resize(antialias), "
          f"AUTOTUNE: {n / s:8.0f} images/s")


def bench_stream(images, batch_size, steps, label):
    ds = data_loader.make_dataset(images, batch_size, seed=0, value_range=(-1.0, 1.0),
                                  hflip=True)
    it = iter(ds)
    for _ in range(20):                      # warm up: tracing, thread pools, prefetch
        next(it)
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(it)
    batch.numpy()
    seconds = time.perf_counter() - start
    r = images.shape[1]
    print(f"  cached stream {r:>3} px, batch {batch_size:>3}, {label}: "
          f"{steps * batch_size / seconds:8.0f} images/s ({steps / seconds:.0f} batches/s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="number of synthetic JPEGs")
    parser.add_argument("--steps", type=int, default=300, help="batches timed per stream")
    args = parser.parse_args()

    print(f"data loader benchmark: {os.cpu_count()} CPU cores, {args.n} synthetic 600x450 JPEGs")
    tmp = tempfile.mkdtemp(prefix="bench_loader_")
    try:
        folder = os.path.join(tmp, "images")
        os.makedirs(folder)
        paths = write_jpegs(folder, args.n)
        print("(a) first pass (decode + resize to uint8):")
        for resolution in (256, 64):
            bench_first_pass(folder, paths, resolution)

        print("(b) cached passes (training stream, float32 batches, random h-flips):")
        source = data_loader.ImageSource(paths, "folder", None, folder)
        quiet = lambda *a, **k: None  # noqa: E731
        for resolution in (64, 256):
            images = data_loader.load_images(source, resolution, log=quiet)
            bench_stream(images, 16, args.steps, "in memory")
            mapped = data_loader.load_images(source, resolution, log=quiet,
                                             cache_dir=os.path.join(tmp, "cache"))
            mapped = data_loader.load_images(source, resolution, log=quiet,
                                             cache_dir=os.path.join(tmp, "cache"))
            bench_stream(mapped, 16, args.steps, "memory-mapped .npy cache")
            bench_stream(images, 64, args.steps // 4, "in memory")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
