"""Speed of evaluation: InceptionV3 feature extraction (images/s) and SWD time.

    python -m benchmarks.bench_features                 # batch 32 and 64, SWD at 64 and 256 px
    python -m benchmarks.bench_features --images 256 --swd-images 1000

The InceptionV3 is randomly initialised (weights=None): the same FLOPs as the ImageNet one,
so the timing holds, and nothing is downloaded. Inputs are 64 px uint8 images, resized to
299 px inside the extractor as in evaluate.py.
"""
import argparse
import os
import resource
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def bench_features(num_images, batch_sizes):
    import keras
    import numpy as np

    from skingan import metrics
    model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                           input_shape=(metrics.INCEPTION_SIZE,) * 2 + (3,))
    images = np.random.default_rng(0).integers(0, 256, (num_images, 64, 64, 3), dtype=np.uint8)
    for batch_size in batch_sizes:
        metrics.extract_features(images[:batch_size], model, batch_size, log=None)   # trace
        start = time.perf_counter()
        feats = metrics.extract_features(images, model, batch_size, log=None)
        seconds = time.perf_counter() - start
        print(f"features: InceptionV3 299 px, batch {batch_size}: {num_images / seconds:.1f} "
              f"images/s ({num_images} images in {seconds:.1f} s, features {feats.shape})")


def bench_swd(num_images, resolutions):
    import numpy as np

    from skingan import metrics
    rng = np.random.default_rng(0)
    for res in resolutions:
        real = rng.integers(0, 256, (num_images, res, res, 3), dtype=np.uint8)
        fake = rng.integers(0, 256, (num_images, res, res, 3), dtype=np.uint8)
        start = time.perf_counter()
        result = metrics.swd(real, fake, seed=0)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6   # KB -> GB (Linux)
        print(f"swd: {num_images} vs {num_images} images at {res} px, "
              f"{len(result['levels'])} levels: {seconds:.1f} s "
              f"(process peak RSS so far {peak:.2f} GB)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=256, help="images for the feature benchmark")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    p.add_argument("--swd-images", type=int, default=1000, help="images per set for SWD")
    p.add_argument("--swd-resolutions", type=int, nargs="+", default=[64, 256])
    args = p.parse_args(argv)
    print(f"{os.cpu_count()} CPU cores")
    bench_swd(args.swd_images, args.swd_resolutions)
    bench_features(args.images, args.batch_sizes)


if __name__ == "__main__":
    main()
