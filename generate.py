"""Synthesise images in bulk from a trained run or an exported generator.

    python generate.py --run sl-stylegan-df-256px --n 500 --out Results/df_synthetic
    python generate.py --run dcgan-akiec-64px --step 1450 --n 500   # a kept checkpoint
    python generate.py --run sl-stylegan-df-256px --best --n 500    # the best-scoring one
    python generate.py --run SavedModels/dcgan-akiec-64px/generator.keras --n 64 --grid
    python generate.py --run sl-stylegan-df-256px --n 500 --truncation 0.7
    python generate.py --run sl-stylegan-cond-all-256px --class df --n 500   # conditional
    python generate.py --run sl-stylegan-cond-all-256px --class all --n 500  # one folder each

Image i is drawn from its own seed (--seed + i) and written as seed0042.png, so the same
seed always gives the same image, whatever --n or --batch-size (a DCGAN pixel may round
differently at another --batch-size). The family (and so the
generator's inputs and pixel range) is read from the run's config.json.
"""
import argparse
import os
import shutil
import time

from skingan import cli, quiet_tf
from skingan.errors import UserError, run_cli
from skingan.sampling import find_run_dir, generate_images, load_generator

ROOT = os.path.dirname(os.path.abspath(__file__))

ISIC_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")  # the CSV's column order


def isic_class(text):
    name = text.strip().upper()
    if name not in ISIC_CLASSES:
        raise argparse.ArgumentTypeError(f"unknown ISIC 2018 class {text!r}; choose one of "
                                         f"{', '.join(ISIC_CLASSES)}")
    return name


def build_parser():
    p = cli.Parser(description="Generate PNG images from a trained generator.")
    p.add_argument("--run", required=True,
                   help="run name in --models-dir, its run folder or Results folder, or a "
                        ".keras generator file")
    p.add_argument("--step", type=cli.non_negative_int,
                   help="generate from the run's kept checkpoint at this iteration instead "
                        "of its latest export (see --keep-checkpoints in train.py)")
    p.add_argument("--best", action="store_true",
                   help="generate from the run's best-scoring checkpoint (kept besides the "
                        "newest ones; see --eval-every in train.py), exactly as --step "
                        "<its step> would")
    p.add_argument("--n", type=cli.positive_int, default=100,
                   help="number of images (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: Results/<run>/generated, or "
                                 "generated_step<N> with --step, generated_best with --best)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first image "
                                                       "(default: %(default)s)")
    p.add_argument("--batch-size", type=cli.positive_int, default=64,
                   help="images per forward pass (default: %(default)s)")
    p.add_argument("--class", dest="class_name", metavar="NAME",
                   help="a class-conditional run's class to generate (see its config.json), "
                        "or 'all': --n images of every class, each class in its own "
                        "subfolder of --out")
    p.add_argument("--truncation", type=float,
                   help="truncation psi for sl-stylegan or stylegan2 (e.g. 0.7); off by "
                        "default")
    p.add_argument("--normalize", choices=("none", "minmax"), default="none",
                   help="'none' maps the model's pixel range linearly to 0-255; 'minmax' "
                        "stretches each image to its own full range, which reproduces the "
                        "authors' exported images (default: %(default)s)")
    p.add_argument("--grid", action="store_true",
                   help="also write an overview of the first (up to 64) images as "
                        "<out>_grid.png, beside the output folder")
    p.add_argument("--isic-csv", type=isic_class, metavar="CLASS",
                   help="also write an ISIC 2018 ground-truth CSV (image,MEL,NV,...) naming "
                        "every image written as CLASS, to append them to a training set")
    p.add_argument("--models-dir", default=os.path.join(ROOT, "SavedModels"),
                   help="where run folders are (default: %(default)s)")
    return p


def write_isic_csv(path, names, class_name):
    from skingan.fileio import write_lines
    row = ",".join("1.0" if c == class_name else "0.0" for c in ISIC_CLASSES)
    write_lines(path, ["image," + ",".join(ISIC_CLASSES)] + [f"{n},{row}" for n in names])


def chosen_labels(bundle, class_name):
    """[(label or None, subfolder or None)] to generate: one unconditional set, one class,
    or every class of a conditional run in a subfolder named after it."""
    bundle.check_class_given(class_name is not None)
    if class_name is None:
        return [(None, None)]
    if class_name.strip().lower() == "all":
        return [(k, name) for k, name in enumerate(bundle.classes)]
    return [(bundle.class_index(class_name), None)]


def write_set(bundle, args, out, label=None, title=""):
    """Generate --n images (of class `label`) into `out` as seedNNNN.png, with the run's
    provenance, the optional ISIC CSV and overview grid."""
    import numpy as np

    from skingan.images import make_grid, save_png
    from skingan.writer import PngWriter
    os.makedirs(out, exist_ok=True)
    width = max(4, len(str(args.seed + args.n - 1)))
    done, first, names, started = 0, [], [], time.perf_counter()
    with PngWriter() as writer:  # PNGs encoded and written on threads, beside the next batch
        for seeds, batch in generate_images(bundle, args.n, args.seed, args.batch_size,
                                            args.truncation, args.normalize, label):
            names += [f"seed{s:0{width}d}" for s in seeds]
            writer.write(batch, [os.path.join(out, name + ".png")
                                 for name in names[-len(seeds):]])
            if len(first) < 64:
                first.extend(batch[:64 - len(first)])
            done += len(seeds)
            rate = done / (time.perf_counter() - started)
            print(f"\rgenerated {title}{done}/{args.n} ({rate:.1f} img/s)", end="",
                  flush=True)
    print()
    trained = os.path.join(bundle.run_dir or "", "trained_images.txt")
    if bundle.run_dir and os.path.isfile(trained):  # provenance, for classify.py's leak check
        shutil.copyfile(trained, os.path.join(out, "trained_images.txt"))
    if args.isic_csv:
        write_isic_csv(os.path.join(out, "groundtruth.csv"), names, args.isic_csv)
    print(f"wrote {args.n} images to {out}"
          + (f" and an ISIC 2018 CSV ({args.isic_csv})" if args.isic_csv else ""))
    if args.grid:
        cols = int(np.ceil(np.sqrt(len(first))))
        rows = int(np.ceil(len(first) / cols))
        tiles = np.zeros((rows * cols,) + first[0].shape, np.uint8) + 255
        tiles[:len(first)] = first
        grid_path = os.path.normpath(out) + "_grid.png"
        save_png(make_grid(tiles, rows, cols), grid_path)
        print(f"wrote the overview grid {grid_path}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.run.endswith(".keras"):      # an unknown run answers before TensorFlow loads
        find_run_dir(args.run, args.models_dir)
    quiet_tf.import_tensorflow()             # before anything else imports TensorFlow
    bundle = load_generator(args.run, args.models_dir, args.step, best=args.best)
    name = os.path.basename(bundle.run_dir) if bundle.run_dir else \
        os.path.splitext(os.path.basename(bundle.source))[0]
    kind = "generated_best" if args.best else \
        "generated" if args.step is None else f"generated_step{args.step}"
    out = args.out or os.path.join(ROOT, "Results", name, kind)
    sets = chosen_labels(bundle, args.class_name)
    if args.isic_csv and len(sets) > 1:
        raise UserError("--isic-csv names one class: use it with --class NAME, not all")
    for label, subfolder in sets:
        write_set(bundle, args, os.path.join(out, subfolder) if subfolder else out, label,
                  f"{subfolder}: " if subfolder else "")


if __name__ == "__main__":
    run_cli(main)
