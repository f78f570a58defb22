"""The two GAN families: their builders, train-step factory, pixel range and the papers'
training settings. train.py and generate.py look a family up here by name and otherwise
know nothing about it."""
import dataclasses
import importlib

from skingan import steps


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    module: str              # the file holding build_generator / build_discriminator
    uses_noise: bool         # generator takes [z, noise image (B, R, R, 1)] instead of z
    make_step: object        # train-step factory (steps.py)
    defaults: dict           # the paper's settings for real data
    demo: dict               # the short preset for the built-in demo data

    def builders(self):
        return importlib.import_module(self.module)

    @property
    def value_range(self):
        """Pixel range of the generator's output, and so of real batches: the model file's."""
        return self.builders().VALUE_RANGE

    def build(self, cfg, replicas=1):
        """(generator, discriminator) for a run's config, to train on `replicas` devices."""
        module = self.builders()
        res, latent, scale = cfg["resolution"], cfg["latent_dim"], cfg["channel_scale"]
        if self.name == "sl-stylegan":
            g = module.build_generator(resolution=res, latent_dim=latent, channel_scale=scale)
            d = module.build_discriminator(resolution=res, channel_scale=scale,
                                           dropout=cfg.get("dropout", 0.6))
        else:
            filters = max(1, round(64 * scale))
            sync = replicas > 1  # BatchNorm over the global batch, as on one device
            g = module.build_generator(resolution=res, latent_dim=latent, base_filters=filters,
                                       sync_batchnorm=sync)
            d = module.build_discriminator(resolution=res, base_filters=filters,
                                           sync_batchnorm=sync)
        return g, d


FAMILIES = {
    # Qin et al. 2020: Adam 1e-4, betas (0, 0.99), Keras time decay 1e-5, batch 16,
    # 20,000 iterations at 256 px, models and an 8 x 4 grid every 500 iterations.
    "sl-stylegan": Family(
        name="sl-stylegan", module="SL_StyleGAN", uses_noise=True,
        make_step=steps.make_sl_stylegan_step,
        defaults=dict(resolution=256, batch_size=16, steps=20000, lr=1e-4, beta1=0.0,
                      beta2=0.99, lr_decay=1e-5, sample_every=500, checkpoint_every=500),
        demo=dict(resolution=32, batch_size=16, steps=500, sample_every=50,
                  checkpoint_every=100),
    ),
    # Bhavsar et al. 2021 (the PyTorch DCGAN recipe): Adam 2e-4, betas (0.5, 0.999),
    # batch 128, 64 px; checkpoints every 500 iterations up to 2,000 (model_iter_1999).
    "dcgan": Family(
        name="dcgan", module="dcgan", uses_noise=False,
        make_step=steps.make_dcgan_step,
        defaults=dict(resolution=64, batch_size=128, steps=2000, lr=2e-4, beta1=0.5,
                      beta2=0.999, lr_decay=0.0, sample_every=100, checkpoint_every=500),
        demo=dict(resolution=32, batch_size=64, steps=300, sample_every=50,
                  checkpoint_every=100),
    ),
}


def get_family(name):
    from skingan.errors import UserError
    if name not in FAMILIES:
        raise UserError(f"unknown model '{name}'; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]
