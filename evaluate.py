"""Score generated images against real ones: FID, KID, SWD, precision and recall.

    python evaluate.py --real Datasets/ISIC2018 --class DF --fake Results/df_synthetic
    python evaluate.py --real Datasets/ISIC2018 --class DF --run sl-stylegan-df-256px --n 5000
    python evaluate.py --real data/akiec --fake generated/ --json Results/akiec_metrics.json
    python evaluate.py --real Datasets/HAM10000 --run sl-stylegan-cond-all-256px --n 2000

A class-conditional --run is scored class by class: each class's generated images against
that class's real images (all the run's classes, or --class NAME), then the mean over them.

Both sets are brought to one resolution (--resolution, default the fake images' size): the real
images through data_loader (any supported layout, --class, corrupt files skipped), so FID does
not just measure a difference in sharpness. FID, KID, precision and recall use Keras' ImageNet
InceptionV3 (--inception-weights, or Keras' cache); without those weights they are skipped with
instructions and SWD, which needs no network, is still reported. Nothing is downloaded.
"""
import os

from skingan import cli
from skingan.evaluation import check_resolution, evaluate_one, evaluate_per_class, run_classes
from skingan.errors import UserError, run_cli

ROOT = os.path.dirname(os.path.abspath(__file__))

FEATURE_NETS = ("inception", "random-small")


def build_parser():
    p = cli.Parser(description="Evaluate generated images against real ones (FID, KID, SWD, "
                               "precision, recall).")
    p.add_argument("--real", required=True, help="folder of real images (any data_loader layout)")
    p.add_argument("--labels", help="label CSV for --real (ISIC 2018 or HAM10000), if not found "
                                    "automatically")
    p.add_argument("--class", dest="class_name",
                   help="class of the real images, e.g. MEL or akiec; with a conditional "
                        "--run, the one class to score (default: every class of the run)")
    fake = p.add_mutually_exclusive_group(required=True)
    fake.add_argument("--fake", help="folder of generated images (PNG/JPEG, any depth)")
    fake.add_argument("--run", help="run name in --models-dir, run folder or .keras generator: "
                                    "generate --n images and score them")
    p.add_argument("--n", type=int, default=5000,
                   help="images to generate with --run (per class for a conditional run; "
                        "default: %(default)s)")
    p.add_argument("--truncation", type=float, help="truncation psi for --run (sl-stylegan or "
                                                        "stylegan2)")
    p.add_argument("--models-dir", default=os.path.join(ROOT, "SavedModels"),
                   help="where run folders are, for --run (default: %(default)s)")
    p.add_argument("--resolution", type=int,
                   help="common resolution of both sets, a power of two >= 16 "
                        "(default: the fake images' size)")
    p.add_argument("--crop", choices=("resize", "center"),
                   help="how real images are made square (default: what the --run trained "
                        "with, else 'resize')")
    p.add_argument("--cache-dir", help="data_loader cache for decoded real images")
    p.add_argument("--inception-weights",
                   help="path to Keras' inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 "
                        "(default: Keras' cache, ~/.keras/models/)")
    p.add_argument("--feature-net", default="inception", choices=FEATURE_NETS,
                   help="network for FID/KID/precision/recall (default: %(default)s). "
                        "'random-small' is FOR TESTING ONLY: a tiny randomly initialised "
                        "net, its numbers are meaningless")
    p.add_argument("--swd-images", type=int, default=2048,
                   help="at most this many images per set for SWD (memory and time grow with "
                        "it; compare SWDs computed with equal numbers; default: "
                        "%(default)s)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="images per feature batch (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of generated images, SWD and KID (default: %(default)s)")
    p.add_argument("--json", help="write the results to this JSON file")
    return p


def check_args(args):
    """Cheap checks, before anything heavy is imported."""
    if args.run and args.n <= 0:
        raise UserError(f"--n must be positive, got {args.n}")
    if args.batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {args.batch_size}")
    if args.swd_images <= 0:
        raise UserError(f"--swd-images must be positive, got {args.swd_images}")
    if args.resolution is not None:
        check_resolution(args.resolution, "--resolution")
    if args.inception_weights and not os.path.isfile(args.inception_weights):
        raise UserError(f"--inception-weights: file not found: {args.inception_weights}")


def write_json(path, result):
    """--json: the results, written atomically (skingan.fileio), in a folder made if needed."""
    from skingan import fileio
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fileio.write_json(path, result)
    print(f"wrote {path}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_args(args)
    classes = run_classes(args)
    result = evaluate_per_class(args, classes) if classes else evaluate_one(args)
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    run_cli(main)
