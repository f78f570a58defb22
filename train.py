"""Train SL-StyleGAN, DCGAN or StyleGAN2-ADA on one class of skin-lesion images; rerun to resume.

    python train.py                                   # built-in demo data: DCGAN, short preset
    python train.py --data Datasets/ISIC2018 --class DF
    python train.py --data Datasets/HAM10000 --class df --model dcgan
    python train.py --data Datasets/HAM10000 --class df --model stylegan2   # NVlabs' auto + ADA
    python train.py --data Datasets/ISIC2018 --class DF --steps 40000   # continue further
    python train.py --data Datasets/HAM10000 --conditional --class all  # one model, 7 classes

Everything a run needs to continue lives in SavedModels/<run>/ (config.json, checkpoints,
generator.keras); what it produces to look at lives in Results/<run>/ (sample grids,
losses.csv, losses.png, TensorBoard). Ctrl-C or SIGTERM saves a checkpoint first.
This file only turns flags into settings; the loop is skingan/loop.py.
"""
import argparse
import functools
import os
import signal
import sys

from skingan import cli, quiet_tf
from skingan.errors import UserError, run_cli

ROOT = os.path.dirname(os.path.abspath(__file__))

# Flags that are not run settings.
PLACES = ("models_dir", "results_dir", "cache_dir", "check_run")


def build_parser():
    from skingan.config import AUGPIPES
    from skingan.config import COMMON_DEFAULTS as D
    from skingan.config import defaults_help
    from skingan.families import FAMILIES
    r1_every = ", ".join(f"{f.name} {f.defaults['r1_every']}" for f in FAMILIES.values()
                         if f.has_r1)
    p = cli.Parser(
        description="Train SL-StyleGAN (Qin et al. 2020), DCGAN (Bhavsar et al. 2021) or "
                    "StyleGAN2-ADA (Karras et al. 2020, NVlabs' configurations) on one class "
                    "of skin-lesion images. Rerun the same command to resume.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=defaults_help())
    fam = "(default: the family's, see below)"
    g = p.add_argument_group("data")
    g.add_argument("--data", help="image folder, class-folder root, ISIC 2018 or HAM10000 "
                                  "download (default: built-in demo data)")
    g.add_argument("--labels", help="ground-truth CSV (ISIC 2018) or HAM10000_metadata.csv, "
                                    "if not found inside --data")
    g.add_argument("--class", dest="class_name",
                   help="class to train on, e.g. DF, mel, akiec (case-insensitive); with "
                        "--conditional: 'all' (the default) or a comma-separated list, e.g. "
                        "df,vasc,nv")
    g.add_argument("--exclude", metavar="CSV",
                   help="leave these images out of training: a classifier's split.csv "
                        "(every image whose fold is not 'train') or any CSV with an 'image' "
                        "column; the ids trained on are kept in the run's trained_images.txt. "
                        "With --eval-every, the excluded images of the class are the held-out "
                        "set of the data-copying test (C_T, docs/copying.md)")
    g.add_argument("--crop", choices=["resize", "center"],
                   help="'resize' squashes the whole image to a square (SL-StyleGAN's "
                        "authors); 'center' resizes the shorter side and crops the centre "
                        f"square (DCGAN's authors: Resize + CenterCrop) {fam}")
    g.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=None,
                   help="random horizontal flips (on for sl-stylegan as its authors had, off "
                        "for dcgan as its authors had)")
    g.add_argument("--vflip", action="store_true", default=None,
                   help="also flip vertically (dermoscopy has no up)")
    g.add_argument("--rot90", action="store_true", default=None,
                   help="also rotate by random multiples of 90 degrees")
    g = p.add_argument_group("model and optimisation")
    g.add_argument("--model", choices=list(FAMILIES),
                   help=f"GAN family (default: {D['model']}; dcgan on the built-in demo "
                        "data, where sl-stylegan's short run collapses, see docs/demo.md)")
    g.add_argument("--config", choices=list(FAMILIES["stylegan2"].configs),
                   help="stylegan2: NVlabs' configuration, which sets the batch, minibatch-"
                        "stddev group, channels, lr, R1 gamma, EMA and mapping depth (auto: "
                        "from the resolution and GPU count; see below) (default: auto)")
    g.add_argument("--gamma", type=cli.non_negative_float,
                   help="stylegan2: R1 weight gamma, overriding the configuration's")
    g.add_argument("--map", dest="map_layers", type=cli.positive_int,
                   help="stylegan2: mapping-network layers, overriding the configuration's")
    g.add_argument("--channel-base", type=cli.positive_int,
                   help="stylegan2: channels at resolution r are min(channel_base // r, 512); "
                        "overrides the configuration's (16384 or 32768). A smaller value, "
                        "e.g. 2048, makes a network small enough for the CPU")
    g.add_argument("--resolution", type=cli.positive_int,
                   help=f"square image size, a power of two {fam}")
    g.add_argument("--batch-size", type=cli.positive_int, help=f"global batch {fam}")
    g.add_argument("--steps", type=cli.positive_int,
                   help="run length in iterations of one D and one G update (the "
                        "sl-stylegan default unit)")
    g.add_argument("--epochs", type=cli.positive_int,
                   help="run length in epochs over the class's images, the last batch of "
                        "each partial (the dcgan default unit)")
    g.add_argument("--lr", type=cli.positive_float, help=f"Adam learning rate {fam}")
    g.add_argument("--beta1", type=cli.unit_interval, help=f"Adam beta1 {fam}")
    g.add_argument("--beta2", type=cli.unit_interval, help=f"Adam beta2 {fam}")
    g.add_argument("--adam-epsilon", type=cli.positive_float, help=f"Adam epsilon {fam}")
    g.add_argument("--lr-decay", type=cli.non_negative_float,
                   help=f"Keras 2 time decay: lr / (1 + decay * t) {fam}")
    g.add_argument("--dropout", type=cli.unit_interval,
                   help="dropout before sl-stylegan D's last layer (default: "
                        f"{FAMILIES['sl-stylegan'].defaults['dropout']:g})")
    g.add_argument("--latent-dim", type=cli.positive_int,
                   help=f"latent size (default: {D['latent_dim']})")
    g.add_argument("--channel-scale", type=cli.positive_float,
                   help="multiply every layer's channels (default: "
                        f"{D['channel_scale']:g}, the authors' networks)")
    g.add_argument("--seed", type=int, help="seed for weights, data order and latents "
                                            f"(default: {D['seed']})")
    g = p.add_argument_group("beyond the papers (off by default)")
    g.add_argument("--augment", help="augment every image D sees, for small classes: any of "
                                     "color,translation,cutout (DiffAugment), or 'ada': "
                                     "adaptive discriminator augmentation (Karras et al. "
                                     "2020), flips, 90-degree rotations and integer shifts "
                                     "(the blit group), then scaling, rotation and fractional "
                                     "shifts, then colour, each with a probability p that "
                                     "rises while D overfits. The blit group is "
                                     "label-preserving for dermoscopy: a lesion has no up "
                                     "and no canonical orientation (default: none)")
    g.add_argument("--ada-target", type=cli.unit_interval,
                   help="ADA: p rises while r_t is above this (default: "
                        f"{D['ada_target']:g})")
    g.add_argument("--ada-heuristic", choices=["sign", "lsgan", "rank"],
                   help="ADA: the overfitting heuristic r_t: 'sign' is ADA's E[sign(D(real))] "
                        "for a logistic D (dcgan, stylegan2), 'lsgan' is E[D(real)] for "
                        "SL-StyleGAN's least-squares D with targets -1 / +1, whose dropout "
                        "randomises the sign; 'rank' is E[sign(D(real) - D(fake))] over a "
                        "real and a fake of each batch, free of D's scale and offset "
                        "(default: lsgan for sl-stylegan, else sign)")
    g.add_argument("--ada-kimg", type=cli.positive_float,
                   help="ADA: thousands of images for p to go from 0 to 1 (default: "
                        f"{D['ada_kimg']:g})")
    g.add_argument("--ada-p", type=cli.unit_interval,
                   help="ADA: hold p at this value, no adaptation (ablations)")
    g.add_argument("--augpipe", choices=list(AUGPIPES),
                   help="ADA: the transform groups that may fire, by NVlabs' --augpipe names: "
                        "blit (flips, quarter turns, integer shifts), geom (scaling, "
                        "rotation, fractional shifts), color (brightness, contrast, luma "
                        "flip, hue, saturation), bg (blit and geom: no colour change), bgc "
                        f"(all three) (default: {D['augpipe']})")
    g.add_argument("--conditional", action="store_true", default=None,
                   help="one class-conditional GAN for several classes (--class all or a "
                        "list) instead of one GAN per class: the class enters G with z "
                        "(a learned embedding) and D as a projection term; without --data "
                        "the multi-class demo set is used")
    g.add_argument("--class-balance", choices=["data", "uniform", "sqrt"],
                   help="with --conditional, how often each class is drawn for the real and "
                        "the fake batches: as in the data, every class equally often, or in "
                        "proportion to the square root of its count. 'uniform' and 'sqrt' "
                        "repeat the rare classes' images, so they turn on the label-"
                        "preserving --hflip --vflip --rot90 unless given (default: "
                        f"{D['class_balance']})")
    g.add_argument("--r1-every", type=cli.positive_int, metavar="K",
                   help="lazy R1 (StyleGAN2), the penalty every K iterations with its "
                        "weight times K (sl-stylegan: faster, not the paper; stylegan2: NVlabs' "
                        "interval with Adam's correction, 1 adds R1 to every D step without "
                        f"it) (default: the family's: {r1_every})")
    g.add_argument("--ema", type=cli.unit_interval,
                   help="keep an exponential moving average of G's weights with this decay "
                        f"(e.g. 0.999) and sample/export it (default: {D['ema']:g}; 0 is off)")
    g.add_argument("--mode-seeking", type=cli.non_negative_float, metavar="LAMBDA",
                   help="mode-seeking regulariser (Mao et al. 2019, MSGAN) on G: its loss "
                        "gains LAMBDA / (L_ms + 1e-5), L_ms = mean|G(z1) - G(z2)| / "
                        "mean|z1 - z2| over pairs of its batch sharing their class (the "
                        "authors' LAMBDA is 1; sl-stylegan and dcgan) (default: "
                        f"{D['mode_seeking']:g}; 0 is off)")
    g = p.add_argument_group("run")
    g.add_argument("--run", help="run name (default: <model>-<class>-<resolution>px)")
    g.add_argument("--sample-every", type=cli.positive_int,
                   help=f"iterations between sample grids {fam}")
    g.add_argument("--checkpoint-every", type=cli.positive_int,
                   help=f"iterations between checkpoints {fam}")
    g.add_argument("--log-every", type=cli.positive_int,
                   help=f"iterations between progress lines (default: {D['log_every']})")
    g.add_argument("--keep-checkpoints", type=cli.keep_count,
                   help="checkpoints kept, newest first, besides the best-scoring one "
                        "(see --eval-every; generate.py --best); 'all' (or 0) keeps every "
                        f"one, as the DCGAN authors did (default: {D['keep_checkpoints']})")
    g.add_argument("--check-run", metavar="NAME",
                   help="check every file of run NAME (restore each checkpoint, load each "
                        "export), one line per file, then exit: 0 when all are intact, 2 "
                        "otherwise. Nothing is trained or written")
    g.add_argument("--models-dir", default=os.path.join(ROOT, "SavedModels"),
                   help="where run folders with checkpoints go (default: %(default)s)")
    g.add_argument("--results-dir", default=os.path.join(ROOT, "Results"),
                   help="where samples and logs go (default: %(default)s)")
    g.add_argument("--cache-dir", default=os.path.join(ROOT, "Datasets", ".cache"),
                   help="decoded images are cached here so later runs skip JPEG decoding; "
                        "'none' turns the cache off (default: %(default)s)")
    g = p.add_argument_group("quality during training")
    g.add_argument("--eval-every", type=cli.non_negative_int,
                   help="iterations between quality scores (SWD, FID with --eval-fid) on fixed "
                        "latents, and at the end, and C_T (data copying) when --exclude holds "
                        "images out; the best generator that does not copy (C_T >= -3) is kept "
                        "as generator_best.keras and its checkpoint is never rotated away "
                        "(generate.py --best). 0 turns scores off (default: "
                        f"{eval_defaults()})")
    g.add_argument("--eval-images", type=cli.positive_int,
                   help=f"images per score (default: {D['eval_images']})")
    g.add_argument("--eval-fid", action="store_true", default=None,
                   help="also compute FID (needs InceptionV3 weights; see evaluate.py --help)")
    g.add_argument("--inception-weights", help="InceptionV3 notop .h5 file for --eval-fid "
                                               "(default: Keras' cache)")
    g = p.add_argument_group("hardware")
    g.add_argument("--xla", action="store_true", default=None,
                   help="compile the train step with XLA (single device)")
    g.add_argument("--mixed-precision", action="store_true", default=None,
                   help="bfloat16 compute with float32 weights (GPUs from Ampere on)")
    g.add_argument("--devices", choices=["auto", "one", "mirrored", "multiworker"],
                   help=f"'auto' mirrors over all GPUs when there are several (default: "
                        f"{D['devices']}); "
                        "'mirrored' forces tf.distribute.MirroredStrategy; 'multiworker' "
                        "trains across machines (tf.distribute.MultiWorkerMirroredStrategy, "
                        "the same command on each): the cluster is read from TF_CONFIG, "
                        "else from Slurm when started with srun; only the chief (worker 0) "
                        "writes the run's files, so its --models-dir must be on storage all "
                        "machines share")
    return p


def eval_defaults():
    """'sl-stylegan 1000, dcgan 500 on real data; 100 on the demo data', from the registry."""
    from skingan.families import FAMILIES
    real = ", ".join(f"{f.name} {f.defaults['eval_every']}" for f in FAMILIES.values())
    demo = sorted({f.demo["eval_every"] for f in FAMILIES.values()})
    return f"{real} on real data; {', '.join(map(str, demo))} on the demo data"


# What a Ctrl-C before training began prints (also one during TensorFlow's import).
INTERRUPTED = "interrupted; nothing saved since the last checkpoint"


def check_args(args):
    """(run name, settings, the flags given) from parsed flags, with every check that needs
    no TensorFlow done, so that such mistakes answer before TensorFlow's import (seconds)."""
    from skingan.config import ADA, parse_augment, resolve_config
    from skingan.families import get_family
    explicit = {k: v for k, v in vars(args).items() if v is not None and k not in PLACES}
    # checks --augment (parse_augment) and the resolution; a preset that counts GPUs
    # (StyleGAN2's auto) computes with 1 here, and main recomputes once TensorFlow is in
    run, cfg = resolve_config(explicit, args.models_dir, gpus=1)
    if not cfg["conditional"]:
        if "class_balance" in explicit:
            raise UserError("--class-balance needs --conditional")
        if cfg["class_name"] and "," in cfg["class_name"]:
            raise UserError(f"--class {cfg['class_name']} names several classes: add "
                            "--conditional to train one model on them, or name one class")
    family = get_family(cfg["model"])
    own = [k for k in ("config", "gamma", "map_layers", "channel_base") if k in explicit]
    if own and not family.configs:
        raise UserError(f"--{own[0].replace('_layers', '').replace('_', '-')} applies to "
                        f"stylegan2 only")
    if family.own_ema and "ema" in explicit:
        raise UserError(f"{cfg['model']} keeps NVlabs' EMA of G, its half-life set by "
                        "--config; --ema applies to sl-stylegan and dcgan")
    if explicit.get("mode_seeking") and not family.mode_seeking:
        raise UserError(f"--mode-seeking applies to sl-stylegan and dcgan, not "
                        f"{cfg['model']}")
    if "r1_every" in explicit and not family.has_r1:
        raise UserError(f"--r1-every applies to sl-stylegan only: {cfg['model']} has no R1 "
                        f"penalty")
    ada_flags = [k for k in ("ada_target", "ada_kimg", "ada_p", "ada_heuristic", "augpipe")
                 if k in explicit]
    if ada_flags and parse_augment(cfg["augment"]) != ADA:
        raise UserError(f"--{ada_flags[0].replace('_', '-')} needs --augment ada")
    return run, cfg, explicit


def main(argv=None):
    args = build_parser().parse_args(argv)
    log = functools.partial(print, flush=True)
    if args.check_run:
        quiet_tf.import_tensorflow(log)
        from skingan.check_run import check_run
        return check_run(args.models_dir, args.check_run, args.results_dir)
    run, cfg, explicit = check_args(args)
    quiet_tf.import_tensorflow(log)          # before anything else imports TensorFlow
    from skingan.config import resolve_config
    from skingan.families import get_family
    if get_family(cfg["model"]).preset:      # its numbers for the GPUs there are
        run, cfg = resolve_config(explicit, args.models_dir)
    from skingan.loop import NonFiniteLossError, train

    cache_dir = None if args.cache_dir.lower() == "none" else args.cache_dir
    try:
        result = train(cfg, run, args.models_dir, args.results_dir, cache_dir=cache_dir,
                       log=log)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(3)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training began
        print(f"\n{INTERRUPTED}", file=sys.stderr)
        sys.exit(130)
    if result["stopped"] != "done":
        sys.exit(128 + getattr(signal, result["stopped"]))
    return result


if __name__ == "__main__":
    run_cli(main, interrupted=INTERRUPTED)
