"""Everything a run trains and checkpoints, built once from its settings.

build_components(cfg, strategy) is how training, generate.py (for --step), the tests and
the benchmarks all get a family's networks, optimizers, random state and compiled step.
"""
import dataclasses

from skingan import steps
from skingan.config import ADA, parse_augment
from skingan.families import get_family, num_classes


@dataclasses.dataclass
class Components:
    family: object
    cfg: dict
    strategy: object
    generator: object
    discriminator: object
    ema_generator: object      # None without --ema (StyleGAN2 always has its own)
    g_optimizer: object
    d_optimizer: object
    rng: object                # tf.random.Generator: every random draw of the train step
    step: object               # tf.Variable int64: iterations done
    train_step: object = None  # compiled by make_train_step
    augment: object = None     # before D: None, a DiffAugment policy or an AdaController

    @property
    def ada(self):
        """The ADA controller with --augment ada (its p is checkpointed), else None."""
        from skingan.ada import AdaController
        return self.augment if isinstance(self.augment, AdaController) else None
    step_state: object = None  # the family's own step state (StyleGAN2's), else None

    @property
    def shown(self):
        """The generator that is sampled, scored and exported: the weight average if any."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    @property
    def metric_names(self):
        """What the step returns, in the log's column order: the family's metrics, then
        ADA's p and r_t when ADA is on."""
        return self.family.metric_names + (("ada_p", "ada_rt") if self.ada is not None else ())

    def draw_inputs(self, normal, n):
        return self.family.draw_inputs(normal, n, self.cfg["latent_dim"], self.cfg["resolution"])

    @property
    def classes(self):
        """A conditional run's class names, in label order; None for an unconditional run."""
        return list(self.cfg["classes"]) if num_classes(self.cfg) else None

    @property
    def class_probabilities(self):
        """(K,) how often each class is drawn for the real and the fake batches
        (--class-balance over the run's class counts); None for an unconditional run."""
        if not num_classes(self.cfg):
            return None
        from data_loader import class_probabilities
        return class_probabilities(self.cfg["class_counts"], self.cfg["class_balance"])


def lazy_ratio(interval):
    """StyleGAN2's correction for a network regularised every `interval` iterations in a
    phase of its own (Karras et al. 2020, appendix B): k / (k + 1); 1 for None or 1."""
    return 1.0 if not interval or interval == 1 else interval / (interval + 1)


def make_optimizer(cfg, reg_interval=None):
    """Adam with Keras 2's `decay`: lr_t = lr / (1 + decay * t), t = updates so far.
    reg_interval k (StyleGAN2's lazy regularisation): lr * r and betas ** r, r = k/(k+1),
    as NVlabs' training loop builds its optimizers."""
    import keras
    ratio = lazy_ratio(reg_interval)
    lr = cfg["lr"] * ratio
    if cfg["lr_decay"]:
        lr = keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1,
                                                         decay_rate=cfg["lr_decay"])
    return keras.optimizers.Adam(learning_rate=lr, beta_1=cfg["beta1"] ** ratio,
                                 beta_2=cfg["beta2"] ** ratio, epsilon=cfg["adam_epsilon"])


def pick_strategy(devices):
    """The strategy for --devices. 'multiworker' must be picked before TensorFlow runs any
    op (loop.train picks first); it raises UserError when no cluster is described."""
    import tensorflow as tf
    if devices == "multiworker":
        from skingan.multiworker import make_strategy
        return make_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    if devices == "mirrored" or (devices == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def make_augment(cfg):
    """What D's inputs go through, as the step takes it (steps.py): None (off), DiffAugment's
    transforms (a tuple), or an ada.AdaController for --augment ada (p adapted from
    --ada-target and --ada-kimg, or held at --ada-p; the groups that fire from --augpipe)."""
    spec = parse_augment(cfg["augment"])
    if spec != ADA:
        return spec or None
    from skingan.ada import AdaController
    return AdaController(target=cfg["ada_target"], ada_kimg=cfg["ada_kimg"],
                         fixed_p=cfg["ada_p"], heuristic=cfg["ada_heuristic"],
                         augpipe=cfg["augpipe"])


def build_components(cfg, strategy=None, compile_step=True):
    """Networks, optimizers, random state and (with compile_step) the train step for `cfg`,
    under `strategy` (default: pick_strategy(cfg['devices']))."""
    import keras
    import tensorflow as tf

    family = get_family(cfg["model"])
    strategy = strategy or pick_strategy(cfg["devices"])
    replicas = strategy.num_replicas_in_sync
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if cfg["mixed_precision"] else "float32")
    keras.utils.set_random_seed(cfg["seed"])
    with strategy.scope():
        try:  # the layers keep the policy they were built with
            generator, discriminator = family.build_models(cfg, replicas)
            ema_generator = None
            if cfg["ema"] or family.own_ema:
                ema_generator = keras.models.clone_model(generator)
                for ema_var, var in steps.paired_variables(generator, ema_generator):
                    ema_var.assign(var)
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
        g_interval, d_interval = (family.reg_intervals(cfg) if family.reg_intervals
                                  else (None, None))
        g_optimizer = make_optimizer(cfg, g_interval)
        d_optimizer = make_optimizer(cfg, d_interval)
        step_state = family.make_state()
        # Keras 3 optimizers must be built inside the strategy scope before the first step.
        g_optimizer.build(generator.trainable_variables)
        d_optimizer.build(discriminator.trainable_variables)
    parts = Components(family=family, cfg=cfg, strategy=strategy, generator=generator,
                       discriminator=discriminator, ema_generator=ema_generator,
                       g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                       rng=tf.random.Generator.from_seed(cfg["seed"]),
                       step=tf.Variable(0, dtype=tf.int64, trainable=False),
                       augment=make_augment(cfg), step_state=step_state)
    if compile_step:
        parts.train_step = make_train_step(parts)
    return parts


def make_train_step(parts):
    """The family's compiled step over the components: train_step(real) -> metrics."""
    cfg = parts.cfg
    ema_update = None
    if parts.ema_generator is not None and cfg["ema"]:
        ema_update = steps.make_ema_update(parts.generator, parts.ema_generator, cfg["ema"])
    if parts.family.step_options:
        options = parts.family.step_options(parts)
    else:
        options = dict(r1_every=cfg["r1_every"]) if parts.family.has_r1 else {}
    if cfg.get("mode_seeking"):   # only when on: the factories' default 0 is the paper's step
        options["mode_seeking"] = cfg["mode_seeking"]
    return parts.family.make_step(
        parts.generator, parts.discriminator, parts.g_optimizer, parts.d_optimizer, parts.rng,
        draw_inputs=parts.draw_inputs, strategy=parts.strategy, jit_compile=cfg["xla"],
        augment=parts.augment, value_range=parts.family.value_range, ema_update=ema_update,
        class_probabilities=parts.class_probabilities, **options)


def build_for_reading(settings):
    """The run's components (networks, optimizers, random state) on one device and without
    a compiled step: enough to restore its checkpoints into."""
    import tensorflow as tf
    return build_components(dict(settings, devices="one", xla=False),
                            tf.distribute.get_strategy(), compile_step=False)
