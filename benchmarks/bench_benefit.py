"""Does the measurement work? classify.py's experiment on the demo's rare class (df) with three
synthetic sources side by side, each adding the same number of images to the training fold:

- gan:     the demo GAN's images (a DCGAN trained on df's training fold only);
- heldout: real df images of lesions outside the data set (new demo lesions): an upper bound,
           which must show a gain over the real arm;
- noise:   uniform noise images labelled df: a null, which must not show a gain.

All arms (real, oversample, gan, heldout, noise) share seeds, schedule and test fold, so every
difference is paired; every arm uses balanced class weights, so that a gain over the real arm is
not just more images labelled df shifting the decision towards it. The report lands in Results/benefit-bench/.

    python -m benchmarks.bench_benefit                     # 3 repeats, up to 60 epochs
    python -m benchmarks.bench_benefit --repeats 5 --epochs 60
"""
import argparse
import dataclasses
import os
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

EXTRA_IMAGES = 120       # held-out and noise images written; the experiment takes what it adds


def write_noise_images(folder, n, size=64, seed=0):
    """``n`` PNGs of uniform RGB noise."""
    import numpy as np
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"noise_{i:04d}.png"))
    return folder


def make_sources(work, rare):
    """The held-out and noise folders (written once)."""
    from skingan import demo_data
    heldout = os.path.join(work, f"heldout-{rare}-v{demo_data.MULTICLASS_VERSION}")
    if not os.path.isdir(heldout):
        # lesion numbers from 100000 on: none of them is in the demo set
        demo_data.write_class_images(heldout, rare, EXTRA_IMAGES, first_lesion=100000,
                                     prefix="heldout")
    noise = os.path.join(work, "noise")
    if not os.path.isdir(noise):
        write_noise_images(noise, EXTRA_IMAGES)
    return heldout, noise


def summary_rows(result, rare):
    """(arm, df sensitivity vs real, vs oversample, balanced accuracy vs real, verdict)."""
    from skingan.benefit.report import fmt
    rows = []
    for arm in result["verdicts"]:
        vs_real, vs_over = (result["differences"][f"{arm} - {b}"]
                            for b in ("real", "oversample"))
        rows.append((arm, fmt(vs_real[f"sensitivity/{rare}"], signed=True),
                     fmt(vs_over[f"sensitivity/{rare}"], signed=True),
                     fmt(vs_real["balanced_accuracy"], signed=True),
                     result["verdicts"][arm][rare]["verdict"]))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--gan-steps", type=int, default=600)
    args = p.parse_args(argv)

    from skingan.benefit import demo, experiment
    from skingan.benefit.train_classifier import TrainSettings
    start = time.perf_counter()
    settings = experiment.Settings(
        data=None, synthetic_arms={}, name="bench", results_dir=os.path.join(ROOT, "Results"),
        models_dir=os.path.join(ROOT, "SavedModels"), repeats=args.repeats,
        cache_dir=os.path.join(ROOT, "Datasets", ".cache"),
        train=TrainSettings(backbone="small", resolution=32, epochs=args.epochs, patience=10,
                            lr=3e-3, class_weight=True))
    settings = demo.prepare_demo(settings, gan=dict(demo.DEMO_GAN, steps=args.gan_steps))
    (rare, run), = settings.synthetic_arms["synthetic"]
    heldout, noise = make_sources(os.path.join(ROOT, "Datasets", "bench-benefit"), rare)
    settings = dataclasses.replace(settings, synthetic_arms={
        "gan": [(rare, run)], "heldout": [(rare, heldout)], "noise": [(rare, noise)]})
    result = experiment.run(settings)

    test_count = result["data"]["split"]["counts"]["test"][rare]
    print(f"\n{rare}: {result['additions'][rare]} images added per source; {test_count} "
          f"{rare} test images; {args.repeats} repeats; {time.perf_counter() - start:.0f} s")
    print(f"| source | {rare} sensitivity - real | {rare} sensitivity - oversample | "
          "balanced acc. - real | verdict |")
    print("|---|---|---|---|---|")
    for row in summary_rows(result, rare):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
