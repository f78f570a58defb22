"""The GAN families, one registry entry each: everything that differs between SL-StyleGAN
and DCGAN lives here, so the loop, generate.py and evaluate.py know a family only by name.

A family entry names its builder module (the file with build_generator and
build_discriminator), how a run's config becomes the two networks, its train-step factory,
how its generator's inputs are drawn, the metrics its step reports, the layout of its
sample grid, and the papers' settings. To add a family: write its builder module and its
step factory (steps.py), then add one entry to FAMILIES.
"""
import dataclasses
import importlib

import numpy as np

from skingan.errors import UserError, check_resolution

# Metrics every step returns; a family may add its own (SL-StyleGAN's R1 term).
BASE_METRICS = ("d_loss", "g_loss", "acc_real", "acc_fake", "d_real", "d_fake")


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    title: str                # as the paper names it, for messages
    module: str               # the file holding build_generator / build_discriminator
    build: object             # (module, cfg, replicas) -> (generator, discriminator)
    step_factory: str         # name of its train-step factory in skingan/steps.py
    noise_input: bool         # G takes [z, noise image (B, R, R, 1)] besides z
    style_based: bool         # G has a mapping network (truncation trick possible)
    extra_metrics: tuple      # step metrics beyond BASE_METRICS
    grid: tuple               # sample grid (rows, cols, rows drawn from the fixed latents)
    resolutions: tuple        # the sizes its networks are built for (the model file's)
    defaults: dict            # the paper's settings for real data
    demo: dict                # the short preset for the built-in demo data
    paper: str                # one line: where the defaults come from

    def builders(self):
        return importlib.import_module(self.module)

    @property
    def make_step(self):
        # looked up when needed, so that parsing flags does not import TensorFlow
        return getattr(importlib.import_module("skingan.steps"), self.step_factory)

    @property
    def value_range(self):
        """Pixel range of the generator's output, and so of real batches: the model file's."""
        return self.builders().VALUE_RANGE

    def check_resolution(self, resolution):
        """The resolution as an int, or UserError naming the allowed ones (before any data
        is decoded, and before TensorFlow is imported: the scripts check flags first)."""
        return check_resolution(self.title, resolution, self.resolutions)

    def build_models(self, cfg, replicas=1):
        """(generator, discriminator) for a run's config, to train on `replicas` devices."""
        return self.build(self.builders(), cfg, replicas)

    @property
    def has_r1(self):
        """Whether the step has an R1 penalty (and so takes r1_every, from `defaults`)."""
        return "r1" in self.extra_metrics

    @property
    def metric_names(self):
        return BASE_METRICS[:2] + self.extra_metrics + BASE_METRICS[2:]

    def draw_inputs(self, normal, n, latent_dim, resolution):
        """The generator's inputs for n images from `normal(shape)` (a standard normal
        source: tf.random.Generator.normal in the train step, numpy_normal elsewhere).
        z (n, latent_dim) is drawn first, then SL-StyleGAN's noise images (n, R, R, 1)."""
        z = normal([n, latent_dim])
        if not self.noise_input:
            return z
        return [z, normal([n, resolution, resolution, 1])]


def numpy_normal(seed):
    """A float32 standard-normal source for Family.draw_inputs from a numpy seed (an int
    or a list of ints: one stream per purpose, see the STREAM_* constants)."""
    draw = np.random.RandomState(seed)
    return lambda shape: draw.standard_normal(shape).astype("float32")


# Seeds of the numpy streams drawn outside the train step, combined with the run's seed
# as [seed, STREAM]; the fixed sample latents use the run's seed alone (the first stream).
STREAM_EVAL_REALS = 7      # which real images a quality score compares against
STREAM_EVAL_LATENTS = 11   # the latents a quality score generates from


def num_classes(cfg):
    """Classes a conditional run's networks take (0: an unconditional run). The class
    list comes from the data (set when the run first loads it, kept in config.json)."""
    return len(cfg["classes"]) if cfg.get("conditional") else 0


def _build_sl_stylegan(module, cfg, replicas):
    res, latent, scale = cfg["resolution"], cfg["latent_dim"], cfg["channel_scale"]
    k = num_classes(cfg)
    g = module.build_generator(resolution=res, latent_dim=latent, channel_scale=scale,
                               num_classes=k)
    d = module.build_discriminator(resolution=res, channel_scale=scale, dropout=cfg["dropout"],
                                   num_classes=k)
    return g, d


def _build_dcgan(module, cfg, replicas):
    filters = max(1, round(64 * cfg["channel_scale"]))
    sync = replicas > 1  # BatchNorm over the global batch, as on one device
    k = num_classes(cfg)
    g = module.build_generator(resolution=cfg["resolution"], latent_dim=cfg["latent_dim"],
                               base_filters=filters, sync_batchnorm=sync, num_classes=k)
    d = module.build_discriminator(resolution=cfg["resolution"], base_filters=filters,
                                   sync_batchnorm=sync, num_classes=k)
    return g, d


FAMILIES = {
    "sl-stylegan": Family(
        name="sl-stylegan", title="SL-StyleGAN", module="SL_StyleGAN",
        build=_build_sl_stylegan, step_factory="make_sl_stylegan_step",
        noise_input=True, style_based=True, extra_metrics=("r1",),
        grid=(4, 8, 1),  # the authors' 8 x 4 grid; its bottom row uses the fixed latents
        resolutions=tuple(2 ** k for k in range(3, 11)),   # 8 .. 1024
        defaults=dict(resolution=256, batch_size=16, steps=20000, epochs=None, lr=1e-4,
                      beta1=0.0, beta2=0.99, adam_epsilon=1e-7, lr_decay=1e-5,
                      crop="resize", hflip=True, dropout=0.6, r1_every=1,
                      sample_every=500, checkpoint_every=500),
        demo=dict(resolution=32, batch_size=16, steps=500, epochs=None, sample_every=50,
                  checkpoint_every=100),
        paper="Qin et al. 2020 and their Keras code: Adam 1e-4, betas (0, 0.99), Keras' "
              "epsilon 1e-7 and time decay 1e-5, batch 16, 20,000 iterations at 256 px, "
              "images squashed to a square, random horizontal flips, models and an 8 x 4 "
              "grid every 500 iterations",
    ),
    "dcgan": Family(
        name="dcgan", title="DCGAN", module="dcgan",
        build=_build_dcgan, step_factory="make_dcgan_step",
        noise_input=False, style_based=False, extra_metrics=(),
        grid=(8, 8, 8),  # the authors' 64-image grid, all from the fixed latents
        resolutions=(16, 32, 64, 128, 256),
        defaults=dict(resolution=64, batch_size=257, steps=None, epochs=2000, lr=2e-4,
                      beta1=0.5, beta2=0.999, adam_epsilon=1e-8, lr_decay=0.0,
                      crop="center", hflip=False, dropout=None,
                      sample_every=50, checkpoint_every=50),
        demo=dict(resolution=32, batch_size=64, steps=300, epochs=None, sample_every=50,
                  checkpoint_every=100),
        paper="Bhavsar et al. 2021 and their PyTorch code: Adam 2e-4, betas (0.5, 0.999), "
              "PyTorch's epsilon 1e-8, batch 257, 2,000 epochs with the last partial batch "
              "kept, shorter side resized to 64 then centre-cropped, no flips, a 64-image "
              "grid and a checkpoint every 50 iterations",
    ),
}


def get_family(name):
    if name not in FAMILIES:
        raise UserError(f"unknown model '{name}'; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]
