"""The GAN families, one registry entry each: everything that differs between SL-StyleGAN
and DCGAN lives here, so the loop, generate.py and evaluate.py know a family only by name.

A family entry names its builder module (the file with build_generator and
build_discriminator), how a run's config becomes the two networks, its train-step factory,
how its generator's inputs are drawn, the metrics its step reports, the layout of its
sample grid, and the papers' settings. To add a family: write its builder module and its
step factory (steps.py, or a module of its own named in step_module), then add one entry
to FAMILIES. StyleGAN2-ADA shows the optional parts: configurations (preset), a step
module with its own checkpointed state, lazily regularised optimizers and its own EMA.
"""
import dataclasses
import importlib

import numpy as np

from skingan.errors import UserError, check_resolution

# Metrics every step returns; a family may add its own (SL-StyleGAN's R1 term, StyleGAN2's
# R1 and path-length terms).
BASE_METRICS = ("d_loss", "g_loss", "acc_real", "acc_fake", "d_real", "d_fake")


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    title: str                # as the paper names it, for messages
    module: str               # the file holding build_generator / build_discriminator
    build: object             # (module, cfg, replicas) -> (generator, discriminator)
    step_factory: str         # name of its train-step factory in step_module
    noise_input: bool         # G takes [z, noise images (B, r, r, 1)...] besides z
    style_based: bool         # G has a mapping network (truncation trick possible)
    extra_metrics: tuple      # step metrics beyond BASE_METRICS
    grid: tuple               # sample grid (rows, cols, rows drawn from the fixed latents)
    resolutions: tuple        # the sizes its networks are built for (the model file's)
    defaults: dict            # the paper's settings for real data
    demo: dict                # the short preset for the built-in demo data
    paper: str                # one line: where the defaults come from
    step_module: str = "skingan.steps"
    preset: object = None     # (cfg, given keys, gpus) -> cfg, its --config's numbers filled in
    configs: tuple = ()       # the --config names
    step_options: object = None    # (components) -> the step factory's extra keywords
    state_factory: str = None  # step_module's tf.Module of checkpointed step state
    reg_intervals: object = None   # (cfg) -> (G's, D's) lazy regularisation interval
    own_ema: bool = False     # always keeps an EMA generator, updated by its own step
    tracks_w_avg: bool = False  # the mapping network holds the w_avg truncation uses
    mode_seeking: bool = True  # its step takes --mode-seeking (steps.py's factories)

    def builders(self):
        return importlib.import_module(self.module)

    def _step_module(self):
        # looked up when needed, so that parsing flags does not import TensorFlow
        return importlib.import_module(self.step_module)

    @property
    def make_step(self):
        return getattr(self._step_module(), self.step_factory)

    def make_state(self):
        """The step's own checkpointed state (None for the papers' families)."""
        return getattr(self._step_module(), self.state_factory)() if self.state_factory else None

    def noise_shapes(self, resolution):
        """[(h, w), ...]: one noise image (n, h, w, 1) per entry after z (SL-StyleGAN: one
        image of the output's size; StyleGAN2: one per synthesis layer)."""
        if not self.noise_input:
            return []
        module = self.builders()
        if hasattr(module, "noise_shapes"):
            return [tuple(shape) for shape in module.noise_shapes(resolution)]
        return [(resolution, resolution)]

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
        z (n, latent_dim) is drawn first, then the noise images (n, h, w, 1) in the order
        of noise_shapes: [z, noise...], or z alone for a generator without noise."""
        z = normal([n, latent_dim])
        if not self.noise_input:
            return z
        return [z] + [normal([n, h, w, 1]) for h, w in self.noise_shapes(resolution)]


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


# NVlabs' train.py sets conv_clamp 256 for G and D in every configuration (activations
# clipped to +-256; their layers apply it whether or not they run in fp16).
CONV_CLAMP = 256


def _build_stylegan2(module, cfg, replicas):
    k = num_classes(cfg)
    local = cfg["batch_size"] // max(1, replicas)
    group = min(cfg["mbstd_group"], local)
    if local % group:
        raise UserError(f"D's minibatch-stddev groups of {cfg['mbstd_group']} do not divide "
                        f"the {local} images each device sees; choose a --batch-size that is "
                        f"a multiple of {cfg['mbstd_group'] * max(1, replicas)}")
    g = module.build_generator(
        resolution=cfg["resolution"], z_dim=cfg["latent_dim"], w_dim=cfg["w_dim"],
        mapping_layers=cfg["map_layers"], channel_base=cfg["channel_base"],
        channel_max=cfg["channel_max"], num_classes=k, conv_clamp=CONV_CLAMP)
    d = module.build_discriminator(
        resolution=cfg["resolution"], channel_base=cfg["channel_base"],
        channel_max=cfg["channel_max"], mbstd_group=cfg["mbstd_group"], num_classes=k,
        architecture=cfg["d_architecture"], conv_clamp=CONV_CLAMP)
    return g, d


def _stylegan2_preset(cfg, given, gpus=None):
    from skingan.stylegan2_configs import apply_config
    return apply_config(cfg, given, gpus)


def _stylegan2_step_options(parts):
    cfg = parts.cfg
    return dict(state=parts.step_state, gamma=cfg["gamma"], r1_every=cfg["r1_every"],
                pl_weight=cfg["pl_weight"], style_mixing=cfg["style_mixing"],
                ema_generator=parts.ema_generator, ema_kimg=cfg["ema_kimg"],
                ema_rampup=cfg["ema_rampup"])


def _stylegan2_reg_intervals(cfg):
    # NVlabs: G_reg_interval 4 (kept when the 'cifar' config turns the penalty off),
    # D_reg_interval 16 (--r1-every; 1 = no lazy phase, no correction)
    return 4, cfg["r1_every"]


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
                      # --augment ada reads its LSGAN D by E[D(real)] (ada.py)
                      ada_heuristic="lsgan",
                      sample_every=500, checkpoint_every=500, eval_every=1000),
        demo=dict(resolution=32, batch_size=16, steps=500, epochs=None, sample_every=50,
                  checkpoint_every=100, eval_every=100, eval_images=200),
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
                      sample_every=50, checkpoint_every=50, eval_every=500),
        demo=dict(resolution=32, batch_size=64, steps=300, epochs=None, sample_every=50,
                  checkpoint_every=100, eval_every=100, eval_images=200),
        paper="Bhavsar et al. 2021 and their PyTorch code: Adam 2e-4, betas (0.5, 0.999), "
              "PyTorch's epsilon 1e-8, batch 257, 2,000 epochs with the last partial batch "
              "kept, shorter side resized to 64 then centre-cropped, no flips, a 64-image "
              "grid and a checkpoint every 50 iterations",
    ),
    "stylegan2": Family(
        name="stylegan2", title="StyleGAN2-ADA", module="StyleGAN2",
        build=_build_stylegan2, step_factory="make_stylegan2_step",
        step_module="skingan.stylegan2_step", state_factory="StyleGAN2State",
        noise_input=True, style_based=True, extra_metrics=("r1", "pl"),
        grid=(4, 8, 4),  # NVlabs' snapshot grid: every image from the fixed latents
        resolutions=tuple(2 ** k for k in range(3, 11)),   # 8 .. 1024
        # --config auto at 256 px on one device; the numbers a run gets come from its
        # --config, resolution and device count (stylegan2_configs.apply_config)
        defaults=dict(config="auto", resolution=256, batch_size=16, steps=1562500,
                      epochs=None, lr=0.0025, beta1=0.0, beta2=0.99, adam_epsilon=1e-8,
                      lr_decay=0.0, crop="center", hflip=False, dropout=None,
                      latent_dim=512, w_dim=512, channel_base=16384, channel_max=512,
                      map_layers=2, mbstd_group=4, gamma=0.8192, ema_kimg=5.0,
                      ema_rampup=0.05, pl_weight=2.0, style_mixing=0.9,
                      d_architecture="resnet", r1_every=16, augment="ada",
                      ada_target=0.6, ada_kimg=500.0, sample_every=12500,
                      checkpoint_every=12500, eval_every=12500),  # NVlabs' metrics per snapshot
        demo=dict(resolution=32, batch_size=16, steps=300, epochs=None, channel_base=1024,
                  sample_every=50, checkpoint_every=100, eval_every=100, eval_images=200),
        paper="Karras et al. 2020 and NVlabs' stylegan2-ada-pytorch: --config auto (batch, "
              "minibatch-stddev group, channels, lr, R1 gamma and EMA from the resolution "
              "and GPU count), Adam (0, 0.99) eps 1e-8 with the lazy-regularisation "
              "correction, R1 every 16 and path length every 4 iterations, style mixing "
              "0.9, ADA (target 0.6) on, 25,000 kimg, snapshots every 200 kimg, "
              "centre-cropped, no flips (ADA flips)",
        preset=_stylegan2_preset, configs=("auto", "stylegan2", "paper256", "cifar"),
        step_options=_stylegan2_step_options, reg_intervals=_stylegan2_reg_intervals,
        own_ema=True, tracks_w_avg=True, mode_seeking=False,
    ),
}


def get_family(name):
    if name not in FAMILIES:
        raise UserError(f"unknown model '{name}'; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]
