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
InceptionV3 (--inception-weights, or Keras' cache, downloaded into it once on first use unless
--offline); without those weights they are skipped (one line) and SWD, which needs no network,
is still reported.
"""
import os

from skingan import cli
from skingan.evaluation import check_resolution, evaluate_one, evaluate_per_class, run_classes
from skingan.copying import DEFAULT_CELLS
from skingan.errors import UserError, run_cli

ROOT = os.path.dirname(os.path.abspath(__file__))

FEATURE_NETS = ("inception", "random-small")


def build_parser():
    from skingan.metrics import WEIGHTS_HELP
    p = cli.Parser(description="Evaluate generated images against real ones (FID, KID, SWD, "
                               "precision, recall).", epilog=WEIGHTS_HELP)
    p.add_argument("--real", help="folder of real images (any data_loader layout); needed "
                                  "for FID/KID/SWD/PR, not for --copying alone")
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
                        "(default: Keras' cache, ~/.keras/models/, downloaded there on "
                        "first use)")
    p.add_argument("--offline", action="store_true",
                   help="never download the InceptionV3 weights (also: SKINGAN_OFFLINE=1)")
    p.add_argument("--fid-network", default="keras", choices=("keras", "inception-2015"),
                   help="the Inception behind FID/KID/PR: 'keras' (Keras' ImageNet InceptionV3; "
                        "compare between runs of this tool) or 'inception-2015' (the 2015 "
                        "TensorFlow graph of published FIDs, TF-GAN's TF-Hub module, pool_3; "
                        "downloaded once into ~/.keras/models/ unless --inception-2015 names "
                        "a local copy; default: %(default)s)")
    p.add_argument("--inception-2015", metavar="FOLDER",
                   help="the unpacked SavedModel of TF-Hub's tfgan/eval/inception/1 "
                        "(default: $SKINGAN_INCEPTION_2015, else Keras' cache)")
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
    c = p.add_argument_group("data copying (Meehan et al. 2020; docs/copying.md)")
    c.add_argument("--copying", action="store_true",
                   help="also test whether the generator copies its training images: C_T, "
                        "near-copy fraction, copies.png. With --run the run's data and "
                        "trained_images.txt give the training and held-out images")
    c.add_argument("--train", help="with --copying: folder of the images the GAN trained on")
    c.add_argument("--heldout", help="with --copying: folder of real images of the same class "
                                     "the GAN never saw")
    c.add_argument("--cells", type=int, default=DEFAULT_CELLS,
                   help="k-means cells of the test (default: %(default)s, as the reference "
                        "code for small data; at most the number of held-out images)")
    c.add_argument("--copying-feature", default="auto", choices=("auto", "inception", "pixels"),
                   help="feature space of the test: InceptionV3 pool features, or the image "
                        "at 32x32 standardised (default auto: inception where its weights "
                        "are, else pixels)")
    c.add_argument("--copies", metavar="PNG",
                   help="where to write copies.png (default: beside --json, else the "
                        "current folder)")
    c.add_argument("--verbose", action="store_true", help="print the per-cell table")
    return p


def check_args(args):
    """Cheap checks, before anything heavy is imported."""
    if not args.real and not args.copying:
        raise UserError("--real is required (only --copying works without it)")
    if (args.train or args.heldout) and not args.copying:
        raise UserError("--train and --heldout belong to --copying")
    if bool(args.train) != bool(args.heldout):
        raise UserError("--copying needs both --train and --heldout, or neither (with --run)")
    if args.copying and args.fake and not args.train:
        raise UserError("--copying --fake needs --train DIR and --heldout DIR (only a --run "
                        "says what it trained on)")
    if args.inception_2015 and args.fid_network != "inception-2015":
        raise UserError("--inception-2015 belongs to --fid-network inception-2015")
    if args.inception_2015:
        from skingan.metrics import inception_2015_path
        inception_2015_path(args.inception_2015, download=False)       # a SavedModel there?
    if args.cells < 1:
        raise UserError(f"--cells must be at least 1, got {args.cells}")
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
    if args.offline:
        from skingan import pretrained
        pretrained.go_offline()
    classes = run_classes(args)
    if classes and args.copying:
        raise UserError("--copying scores one class at a time; for a conditional run pass "
                        "--train DIR --heldout DIR and --fake images of one class")
    result = evaluate_per_class(args, classes) if classes else evaluate_one(args)
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    run_cli(main)
