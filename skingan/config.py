"""A run's settings: defaults, the papers' presets, and what a resumed run may change.

A new run's settings are the flags the user gave, over the family's paper settings (or its
demo preset when no --data is given), over COMMON_DEFAULTS. An existing run keeps its
stored settings; only how long and how it is run may change (LENGTH_KEYS and the rest that
are neither IDENTITY_KEYS nor FIXED_KEYS).

Every default is written once: here (COMMON_DEFAULTS) or in the family's entry
(families.py: the papers' settings, e.g. SL-StyleGAN's r1_every 1). train.py's --help, the
components and the steps read them from there; the steps and ADA's controller take every
setting as an argument and hold no defaults of their own. LEGACY is not a default: it is
what older versions ran with, and must not follow a later change of the defaults.
"""
import os

from skingan.errors import UserError
from skingan.families import get_family
from skingan.runs import read_config

# Settings every run has whatever its family; the family's defaults add the rest.
COMMON_DEFAULTS = dict(model="sl-stylegan", latent_dim=100, channel_scale=1.0, seed=0,
                       data=None, labels=None, class_name=None, exclude=None,
                       vflip=False, rot90=False, log_every=10, xla=False,
                       mixed_precision=False, devices="auto", keep_checkpoints=3,
                       eval_every=0, eval_images=500, eval_fid=False, inception_weights=None,
                       augment="", ema=0.0, mode_seeking=0.0, ada_target=0.6,
                       ada_kimg=500.0, ada_p=None, ada_heuristic="sign", augpipe="bgc",
                       conditional=False, class_balance="data", classes=None,
                       class_counts=None)
# A resumed run must keep these: they define the model and the data it learns.
IDENTITY_KEYS = ("model", "resolution", "latent_dim", "channel_scale", "data", "labels",
                 "class_name", "crop", "exclude", "conditional", "config", "channel_base",
                 "map_layers")
# Changing these would make the continued run a different experiment from the one begun.
FIXED_KEYS = ("batch_size", "lr", "beta1", "beta2", "adam_epsilon", "lr_decay", "seed",
              "hflip", "vflip", "rot90", "augment", "ema", "mode_seeking", "dropout",
              "ada_target", "ada_kimg", "ada_p", "ada_heuristic", "augpipe", "class_balance",
              "r1_every", "gamma", "mbstd_group", "ema_kimg", "ema_rampup", "pl_weight",
              "style_mixing")
# Settings whose flag is not their name.
FLAG_NAMES = dict(class_name="class", map_layers="map")
# Runs written before a setting existed ran with these values (a record of the old versions,
# not defaults: keep them when a default changes).
LEGACY = dict(adam_epsilon=1e-7, epochs=None, exclude=None, dropout=0.6, ada_target=0.6,
              ada_kimg=500.0, ada_p=None, ada_heuristic="sign", augpipe="bgc",
              conditional=False, class_balance="data", classes=None, class_counts=None,
              r1_every=1, mode_seeking=0.0)


# --augment: nothing (''), any of DiffAugment's transforms (comma-separated), or ADA alone.
AUGMENT_POLICIES = ("color", "translation", "cutout")
ADA = "ada"
# --augpipe: which of ADA's transform groups may fire, by NVlabs' names (ada.AUGPIPES holds
# what each name stands for; this list is here for train.py's --help, without TensorFlow).
AUGPIPES = ("blit", "geom", "color", "bg", "bgc")


def parse_augment(text):
    """--augment's value -> () (off), ADA, or DiffAugment's transforms as a tuple in the order
    given; UserError for anything else. The one reading of the setting: new_run_settings
    checks it with this, components.make_augment builds the step's augmentation from it."""
    if not text or not text.strip():
        return ()
    if text.strip() == ADA:
        return ADA
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in AUGMENT_POLICIES]
    if unknown:
        raise UserError(f"unknown augmentation {', '.join(unknown)}; choose from "
                        f"{', '.join(AUGMENT_POLICIES)} (DiffAugment), or '{ADA}' alone")
    return names


# The family `python train.py` trains on the built-in demo data when no --model is given:
# there DCGAN's short preset ends on a varied grid and SL-StyleGAN's collapses to one lesion
# after ~150 iterations (benchmarks/bench_demo.py, docs/demo.md). The multi-class demo
# (--conditional) trains DCGAN too, with MSGAN's mode-seeking term at its authors' weight:
# without it conditional DCGAN repeats one lesion per class; with it every class stayed
# varied on 3 seeds, where SL-StyleGAN's conditional preset lost half its classes' variety
# (docs/bench-demo.md, fifth round).
DEMO_MODEL = "dcgan"
CONDITIONAL_DEMO = dict(mode_seeking=1.0)


def new_run_settings(explicit, gpus=None):
    """Settings of a new run from the flags given (`explicit`, without 'run').
    gpus: the device count a family's preset computes with (StyleGAN2's auto); None counts
    them, which imports TensorFlow (train.py's checks before the import pass 1)."""
    is_demo = explicit.get("data") is None
    family = get_family(explicit.get("model", DEMO_MODEL if is_demo else COMMON_DEFAULTS["model"]))
    cfg = dict(COMMON_DEFAULTS, model=family.name)
    cfg.update(family.defaults)
    if is_demo:
        cfg.update(family.demo)
        if explicit.get("conditional") and "model" not in explicit:
            cfg.update(CONDITIONAL_DEMO)
    if "steps" in explicit:      # the length is in iterations or in epochs, never both
        cfg["epochs"] = None
    if "epochs" in explicit:
        cfg["steps"] = None
    cfg.update(explicit)
    if family.preset:  # StyleGAN2's --config: its numbers, unless given
        given = set(explicit) | (set(family.demo) if is_demo else set())
        cfg = family.preset(cfg, given, gpus)
    cfg["demo"] = is_demo
    parse_augment(cfg["augment"])            # a typo fails here, before any data is read
    if cfg["conditional"]:
        cfg["class_name"] = cfg["class_name"] or "all"
        if cfg["class_balance"] != "data":
            # the rare classes' images are drawn many times: vary them without changing
            # their class (a lesion has no up and no canonical orientation)
            for flip in ("hflip", "vflip", "rot90"):
                cfg[flip] = explicit.get(flip, True)
    family.check_resolution(cfg["resolution"])
    return cfg


def resolve_config(explicit, models_dir, gpus=None):
    """(run name, settings) from the flags given on the command line.

    `explicit` holds only flags the user gave (gpus: as new_run_settings). A stored run
    accepts changes only to how long and how it is run (steps or epochs, intervals, XLA,
    precision, devices).
    """
    explicit = dict(explicit)
    run = explicit.pop("run", None)
    if "steps" in explicit and "epochs" in explicit:
        raise UserError("give --steps or --epochs, not both: one of them sets the run's length")
    for key in ("data", "labels", "exclude"):
        if explicit.get(key) is not None:
            explicit[key] = os.path.abspath(explicit[key])
    for key, what in (("data", "data path"), ("labels", "label CSV"),
                      ("exclude", "exclusion CSV")):
        # A missing path is a missing path, whatever runs exist.
        if explicit.get(key) is not None and not os.path.exists(explicit[key]):
            raise UserError(f"{what} not found: {explicit[key]}")
    cfg = new_run_settings(explicit, gpus)
    run = run or default_run_name(cfg)

    stored_doc = read_config(os.path.join(models_dir, run))
    if stored_doc is None:
        return run, cfg
    stored = dict(LEGACY, **stored_doc["settings"])
    differences = [
        f"--{FLAG_NAMES.get(key, key).replace('_', '-')} was {stored.get(key)!r}, now "
        f"{explicit[key]!r}"
        for key in IDENTITY_KEYS + FIXED_KEYS
        if key in explicit and explicit[key] != stored.get(key)]
    if differences:
        raise UserError(
            f"run '{run}' exists with other settings ({'; '.join(differences)}); rerun with "
            f"its settings to resume it, or give --run NEW_NAME to start a new run")
    unit = "epochs" if stored["epochs"] is not None else "steps"
    other = "steps" if unit == "epochs" else "epochs"
    if other in explicit:
        raise UserError(f"run '{run}' counts its length in {unit}: pass --{unit} to change "
                        f"it, not --{other}")
    stored.update({k: v for k, v in explicit.items()
                   if k not in IDENTITY_KEYS + FIXED_KEYS})
    return run, stored


def default_run_name(cfg):
    """<model>-<data>-<resolution>px, so that rerunning the same command finds its run."""
    if cfg["demo"]:
        tag = "demo"
    elif cfg.get("class_name"):
        tag = cfg["class_name"].lower().replace(",", "-")
    else:
        tag = os.path.basename(os.path.normpath(cfg["data"])).lower() or "data"
    if cfg.get("conditional"):
        tag = f"cond-{tag}"
    return f"{cfg['model']}-{tag}-{cfg['resolution']}px"


def total_iterations(cfg, num_images):
    """The run's length in iterations: --steps, or --epochs x ceil(N / batch)."""
    if cfg.get("epochs") is None:
        return cfg["steps"]
    from data_loader import iterations_per_epoch
    return cfg["epochs"] * iterations_per_epoch(num_images, cfg["batch_size"])


def defaults_help():
    """The --help epilog: each family's paper settings and demo preset, from the registry."""
    from skingan.families import FAMILIES
    lines = ["Defaults for real data are the papers' settings:"]
    for family in FAMILIES.values():
        d = family.defaults
        if family.configs:
            lines.append(_configs_help(family))
            continue
        length = (f"{d['epochs']} epochs (last partial batch kept)" if d["epochs"]
                  else f"{d['steps']} iterations")
        lines.append(
            f"  {family.name}: {d['resolution']} px, batch {d['batch_size']}, {length}, "
            f"Adam {d['lr']:g} ({d['beta1']:g}, {d['beta2']:g}, eps {d['adam_epsilon']:g})"
            + (f", time decay {d['lr_decay']:g}" if d["lr_decay"] else "")
            + f", crop '{d['crop']}', {'random horizontal flips' if d['hflip'] else 'no flips'}"
            f", samples every {d['sample_every']}, checkpoints every {d['checkpoint_every']}.")
    lines.append(f"Without --data the built-in demo data is used, with {DEMO_MODEL} unless "
                 "--model is given (--conditional: with --mode-seeking "
                 f"{CONDITIONAL_DEMO['mode_seeking']:g}), and a short preset: "
                 + "; ".join(f"{f.name} {f.demo['resolution']} px, {f.demo['steps']} iterations"
                             for f in FAMILIES.values()) + ".")
    return "\n".join(lines)


def _configs_help(family):
    """A family with --config (StyleGAN2): its configurations' numbers, at 256 px on one
    device (auto's change with the resolution and the GPU count)."""
    from skingan.stylegan2_configs import describe
    d = family.defaults
    return (f"  {family.name}: NVlabs' --config (default {d['config']}), at 256 px on one "
            f"device: " + "; ".join(f"{name}: {describe(name)}" for name in family.configs)
            + f". Adam ({d['beta1']:g}, {d['beta2']:g}, eps {d['adam_epsilon']:g}) with the "
            f"lazy-regularisation correction, R1 every {d['r1_every']} iterations, path "
            f"length every 4, --augment {d['augment']} (target {d['ada_target']:g}), crop "
            f"'{d['crop']}', {'random horizontal flips' if d['hflip'] else 'no flips'}; "
            f"25,000 kimg, samples and checkpoints every 200 kimg.")


def defaults_table():
    """The README's table of each family's paper settings, as markdown (a test checks
    that README.md holds exactly this)."""
    from skingan.families import FAMILIES
    fams = list(FAMILIES.values())

    def length(d):
        return (f"{d['epochs']:,} epochs, last partial batch kept" if d["epochs"]
                else f"{d['steps']:,} iterations" + (
                    f" ({d['steps'] * d['batch_size'] // 1000:,} kimg)" if "config" in d else ""))

    def adam(d):
        return (f"Adam {d['lr']:g}, betas ({d['beta1']:g}, {d['beta2']:g}), eps "
                f"{d['adam_epsilon']:g}" + (f", time decay {d['lr_decay']:g}"
                                            if d["lr_decay"] else "")
                + (", lr and betas corrected for lazy regularisation" if "config" in d else ""))

    configs = (lambda d: f"--config {d['config']}: at 256 px on one device" if "config" in d
               else "none (the paper's)")
    rows = [("configuration", configs),
            ("resolution", lambda d: str(d["resolution"])),
            ("batch", lambda d: str(d["batch_size"])),
            ("length", length), ("optimiser", adam),
            ("made square by", lambda d: {"resize": "squashing (resize)",
                                          "center": "shorter side resized, centre crop"}
             [d["crop"]]),
            ("random flips", lambda d: "horizontal" if d["hflip"] else "none"),
            ("augmentation", lambda d: {"": "none", "ada": "ADA, target "
                                        f"{d.get('ada_target', 0.6):g}"}.get(d.get("augment", ""),
                                                                           d.get("augment"))),
            ("samples / checkpoints every",
             lambda d: f"{d['sample_every']} / {d['checkpoint_every']} iterations")]
    lines = ["| | " + " | ".join(f"{f.title} (`--model {f.name}`)" for f in fams) + " |",
             "|---|" + "---|" * len(fams)]
    lines += [f"| {name} | " + " | ".join(cell(f.defaults) for f in fams) + " |"
              for name, cell in rows]
    return "\n".join(lines)
