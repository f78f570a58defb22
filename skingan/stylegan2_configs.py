"""StyleGAN2-ADA's configurations (`--config`), with NVlabs' numbers (stylegan2-ada-pytorch
train.py, cfg_specs), and how a run's settings follow from one.

    cfg        mb   mbstd  fmaps  lrate   gamma  ema  ramp  map  kimg
    auto       *    *      *      *       *      *    0.05  2    25000
    stylegan2  32   4      1      0.002   10     10   -     8    25000
    paper256   64   8      0.5    0.0025  1      20   -     8    25000
    cifar      64   32     1      0.0025  0.01   500  0.05  2    100000

auto, for resolution R on g GPUs: mb = max(min(g * min(4096 // R, 32), 64), g),
mbstd = min(mb // g, 4), fmaps = 1 if R >= 512 else 0.5, lrate = 0.002 if R >= 1024 else
0.0025, gamma = 0.0002 * R^2 / mb, ema = mb * 10 / 32. channel_base = fmaps * 32768,
channel_max 512. cifar also turns off path-length regularisation and style mixing and uses
D's 'orig' architecture. --batch-size, --gamma, --map and --channel-base override single
numbers, as NVlabs' --batch and --gamma do (the others stay the configuration's, computed
from its own mb: a smaller --batch-size keeps auto's gamma and EMA).

Length and snapshots, in images as NVlabs counts them: kimg thousand images (--steps or
--epochs override), a sample grid and a checkpoint every 200 kimg (NVlabs' 50 ticks of
4 kimg), both rounded up to whole iterations of the run's batch.
"""
import json
import math
import os

from skingan.errors import UserError

CONFIGS = ("auto", "stylegan2", "paper256", "cifar")
SPECS = {
    "auto": dict(kimg=25000, ramp=0.05, map=2),      # the rest from R and g, see auto_spec
    "stylegan2": dict(kimg=25000, mb=32, mbstd=4, fmaps=1, lrate=0.002, gamma=10, ema=10,
                      ramp=None, map=8),
    "paper256": dict(kimg=25000, mb=64, mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1, ema=20,
                     ramp=None, map=8),
    "cifar": dict(kimg=100000, mb=64, mbstd=32, fmaps=1, lrate=0.0025, gamma=0.01, ema=500,
                  ramp=0.05, map=2),
}
SNAPSHOT_KIMG = 200          # NVlabs: image and network snapshots every 50 ticks of 4 kimg
CHANNEL_MAX = 512
# Settings --config sets, and the flag that overrides each (None: only the config does).
CONFIG_KEYS = dict(batch_size="batch-size", mbstd_group=None, channel_base="channel-base",
                   lr="lr", gamma="gamma", ema_kimg=None, ema_rampup=None, map_layers="map",
                   pl_weight=None, style_mixing=None, d_architecture=None)


def spec(config, resolution, gpus=1):
    """NVlabs' cfg_specs entry for `config`, auto's filled in for R and g GPUs."""
    if config not in SPECS:
        raise UserError(f"unknown --config '{config}'; choose one of {', '.join(CONFIGS)}")
    s = dict(SPECS[config])
    if config == "auto":
        r, g = resolution, max(1, gpus)
        s["mb"] = max(min(g * min(4096 // r, 32), 64), g)
        s["mbstd"] = min(s["mb"] // g, 4)
        s["fmaps"] = 1 if r >= 512 else 0.5
        s["lrate"] = 0.002 if r >= 1024 else 0.0025
        s["gamma"] = 0.0002 * r ** 2 / s["mb"]
        s["ema"] = s["mb"] * 10 / 32
    return s


def config_settings(config, resolution, gpus=1):
    """The run settings `config` sets at this resolution on `gpus` devices."""
    s = spec(config, resolution, gpus)
    cifar = config == "cifar"
    return dict(batch_size=s["mb"], mbstd_group=s["mbstd"],
                channel_base=int(s["fmaps"] * 32768), lr=s["lrate"], gamma=float(s["gamma"]),
                ema_kimg=float(s["ema"]), ema_rampup=s["ramp"], map_layers=s["map"],
                pl_weight=0.0 if cifar else 2.0, style_mixing=0.0 if cifar else 0.9,
                d_architecture="orig" if cifar else "resnet")


def count_gpus(devices):
    """g in auto's formulas: the GPUs the run will train on (1 on the CPU or with
    --devices one; with --devices multiworker, this machine's GPUs times the workers
    TF_CONFIG names, as the training then runs on all of them)."""
    if devices == "one":
        return 1
    import tensorflow as tf
    gpus = max(1, len(tf.config.list_physical_devices("GPU")))
    if devices == "multiworker":
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        gpus *= max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))
    return gpus


def apply_config(cfg, given, gpus=None):
    """Fill `cfg` (a new run's settings) from its --config, except the keys in `given`
    (flags the user gave, and the demo preset's). Returns cfg."""
    gpus = count_gpus(cfg["devices"]) if gpus is None else gpus
    settings = config_settings(cfg["config"], cfg["resolution"], gpus)
    cfg.update({k: v for k, v in settings.items() if k not in given})
    images = spec(cfg["config"], cfg["resolution"], gpus)["kimg"] * 1000
    if "steps" not in given and "epochs" not in given:
        cfg["steps"] = math.ceil(images / cfg["batch_size"])
        cfg["epochs"] = None
    for key in ("sample_every", "checkpoint_every"):
        if key not in given:
            cfg[key] = math.ceil(SNAPSHOT_KIMG * 1000 / cfg["batch_size"])
    return cfg


def describe(config, resolution=256, gpus=1):
    """One line of a configuration's numbers, for --help and messages."""
    s = config_settings(config, resolution, gpus)
    ramp = f", ramp-up {s['ema_rampup']:g}" if s["ema_rampup"] else ""
    extra = ", no path-length reg., no style mixing, D 'orig'" if config == "cifar" else ""
    return (f"batch {s['batch_size']}, mbstd group {s['mbstd_group']}, channel_base "
            f"{s['channel_base']}, lr {s['lr']:g}, gamma {s['gamma']:g}, EMA "
            f"{s['ema_kimg']:g} kimg{ramp}, mapping {s['map_layers']} layers{extra}")
