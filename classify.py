"""Does synthetic data help a skin-lesion classifier? Three arms, trained identically and
scored on the same real test images, repeated with different seeds:

    real        the real training images
    oversample  the listed classes' real training images repeated up to the synthetic count
    synthetic   the real training images plus synthetic images of the listed classes

    python classify.py        # built-in demo: multi-class demo set, a short GAN, small CNN
    python classify.py --data Datasets/HAM10000 --synthetic df=dcgan-df-64px \\
        --synthetic vasc=Results/vasc_synthetic --backbone efficientnetb0 --repeats 5

The split is by lesion (split.csv, reused on reruns); a GAN run that trained on a validation
or test image is refused. Report, figures and split in Results/benefit-<name>/.
"""
import argparse
import functools
import os

from skingan import quiet_tf
from skingan.cli import Parser, fraction, non_negative_int, positive_float, positive_int
from skingan.errors import UserError, run_cli

ROOT = os.path.dirname(os.path.abspath(__file__))

DEMO = dict(backbone="small", resolution=32, epochs=60, patience=10, repeats=3,
            class_weight="balanced")
DEFAULT_RESOLUTION = {"small": 64}        # Keras Applications backbones: 224
DEFAULT_LR = {"small": 3e-3}              # Keras Applications backbones: 1e-4 (fine-tuning)


def synthetic_spec(text):
    from skingan.benefit.sources import parse_spec
    try:
        return parse_spec(text)
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err))


def build_parser():
    from skingan.benefit.backbones import BACKBONES
    p = Parser(description="Measure whether synthetic images of rare classes help a "
                           "skin-lesion classifier (real vs oversample vs synthetic).",
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help="labelled data (ISIC 2018, HAM10000 or class folders); "
                                  "none: the built-in demo")
    p.add_argument("--labels", help="label CSV, if not found in --data")
    p.add_argument("--synthetic", action="append", type=synthetic_spec, default=[],
                   metavar="CLASS=SOURCE",
                   help="synthetic images for CLASS: a folder of images or a GAN run name "
                        "(repeatable). A class-conditional run (train.py --conditional) "
                        "serves several classes at once: --synthetic df,vasc=RUN")
    p.add_argument("--add", type=non_negative_int,
                   help="synthetic images per listed class (default: up to the median class "
                        "count of the training fold)")
    p.add_argument("--backbone", choices=BACKBONES,
                   help="classifier (default: efficientnetb0; small on the demo)")
    p.add_argument("--weights",
                   help="the backbone's starting weights: 'imagenet' (Keras' cache, "
                        "~/.keras/models/, downloaded there on first use, as Keras does), "
                        "'none' (random initialisation) or a weights FILE (default: imagenet "
                        "for a Keras Applications backbone, none for small)")
    p.add_argument("--offline", action="store_true",
                   help="never download weights (also: environment variable "
                        "SKINGAN_OFFLINE=1); a missing file is then one error line saying "
                        "where to put it")
    p.add_argument("--resolution", type=positive_int,
                   help="classifier input side (default: 224; 64 for small; 32 on the demo)")
    p.add_argument("--epochs", type=positive_int, help="most epochs per run (default 30)")
    p.add_argument("--patience", type=positive_int,
                   help="early-stopping patience in epochs (default 5)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_float,
                   help="Adam learning rate (default: 1e-4; 3e-3 for small)")
    p.add_argument("--class-weight", choices=("none", "balanced"),
                   help="'balanced' weights the loss by n / (classes x n_class), in every arm "
                        "(default: none; balanced on the demo)")
    p.add_argument("--repeats", type=positive_int, help="runs per arm, seeds seed..seed+K-1 "
                                                       "(default 3)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--split", help="split CSV to reuse or write (default: "
                                   "Results/benefit-<name>/split.csv)")
    p.add_argument("--split-only", action="store_true",
                   help="write (or check) the split and stop: train the GANs on its training "
                        "fold next")
    p.add_argument("--test-fraction", type=fraction, default=0.15)
    p.add_argument("--val-fraction", type=fraction, default=0.15)
    p.add_argument("--crop", choices=("resize", "center"), default="resize")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16 policy")
    p.add_argument("--xla", action="store_true", help="compile the train step with XLA")
    p.add_argument("--name", help="report name: Results/benefit-<name>/ (default: the data "
                                  "folder's name, or demo)")
    p.add_argument("--results-dir", default=os.path.join(ROOT, "Results"))
    p.add_argument("--models-dir", default=os.path.join(ROOT, "SavedModels"),
                   help="where GAN runs are")
    p.add_argument("--cache-dir", default=os.path.join(ROOT, "Datasets", ".cache"),
                   help="decoded-image cache ('none': off)")
    return p


def check_args(args):
    """Checks that need no data, before anything is read."""
    demo = args.data is None
    if demo and args.split_only:
        raise UserError("--split-only needs --data")
    if demo and args.synthetic:
        raise UserError("--synthetic needs --data; the built-in demo (no --data) trains and "
                        "lists its own GAN")
    if not demo and not args.synthetic and not args.split_only:
        raise UserError("give at least one --synthetic CLASS=SOURCE to compare against")
    if not demo and not os.path.isdir(args.data):
        raise UserError(f"--data: folder not found: {args.data}")
    if args.test_fraction + args.val_fraction >= 1:
        raise UserError("--test-fraction plus --val-fraction must be below 1")
    minimum = 8 if args.backbone == "small" else 32
    if args.resolution is not None and args.resolution < minimum:
        raise UserError(f"--resolution must be at least {minimum} for {args.backbone}")
    from skingan.benefit.backbones import check_weights_choice
    check_weights_choice(args.backbone, args.weights)


def make_settings(args):
    """The experiment's settings; the weights file is found later (``find_weights``), once
    every input has been checked."""
    from skingan.benefit.experiment import Settings
    from skingan.benefit.train_classifier import TrainSettings
    demo = args.data is None
    preset = dict(DEMO) if demo else dict(backbone="efficientnetb0", epochs=30, patience=5,
                                           repeats=3)
    backbone = args.backbone or preset["backbone"]
    resolution = args.resolution or (preset.get("resolution") if demo else None) \
        or DEFAULT_RESOLUTION.get(backbone, 224)
    train = TrainSettings(
        backbone=backbone, resolution=resolution, epochs=args.epochs or preset["epochs"],
        batch_size=args.batch_size, lr=args.lr or DEFAULT_LR.get(backbone, 1e-4),
        patience=args.patience or preset["patience"],
        class_weight=(args.class_weight or preset.get("class_weight")) == "balanced",
        mixed_precision=args.mixed_precision, xla=args.xla)
    name = args.name or ("demo" if demo else
                         os.path.basename(os.path.normpath(args.data)).lower())
    return Settings(
        data=args.data, synthetic_arms={"synthetic": args.synthetic}, name=name,
        results_dir=args.results_dir, models_dir=args.models_dir, labels=args.labels,
        add=args.add, repeats=args.repeats or preset["repeats"], seed=args.seed, train=train,
        crop=args.crop, cache_dir=None if args.cache_dir.lower() == "none" else args.cache_dir,
        split_path=args.split, test_fraction=args.test_fraction,
        val_fraction=args.val_fraction)


def split_only(settings, log):
    """Write (or check) split.csv and say how to train a GAN on its training fold."""
    import data_loader
    from skingan.benefit import split as split_module
    records = data_loader.list_labelled_images(settings.data, settings.labels)
    path = settings.split_path or os.path.join(settings.out_dir, "split.csv")
    split, _ = split_module.load_or_make_split(path, records, settings.test_fraction,
                                               settings.val_fraction, settings.seed, log)
    for fold, counts in split_module.fold_counts(split, records).items():
        log(f"{fold}: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    log(f"train each GAN on the training fold of {path} only; classify.py refuses a GAN "
        "that saw a validation or test image")
    return split


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.backbone = args.backbone or (DEMO["backbone"] if args.data is None else
                                      "efficientnetb0")
    check_args(args)
    if args.offline:
        from skingan import pretrained
        pretrained.go_offline()
    log = functools.partial(print, flush=True)
    settings = make_settings(args)
    if args.split_only:                      # no TensorFlow needed
        return split_only(settings, log)
    if args.data is None:
        log("no --data given: the built-in demo (synthetic lesions, 4 classes, df rare)")
    quiet_tf.import_tensorflow(log)          # before anything else imports TensorFlow
    from skingan.benefit import experiment
    from skingan.benefit.backbones import find_weights
    if args.data is None:
        from skingan.benefit.demo import prepare_demo
        settings = prepare_demo(settings, log=log)
    plan = experiment.check(settings, log)   # every input, before anything is written
    settings.train.weights_file = find_weights(settings.train.backbone, args.weights, log)
    return experiment.run(settings, log, plan)


if __name__ == "__main__":
    run_cli(main)
