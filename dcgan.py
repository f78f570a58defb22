"""DCGAN for skin-lesion augmentation (Bhavsar et al. 2021; Radford et al. 2015).

The classic DCGAN (DESIGN.md section 2). At 64 px the trainable parameter counts equal the
authors' PyTorch model exactly: generator 3,576,704, discriminator 2,765,568.

    G = build_generator(64)          # z (B, 100) -> image (B, 64, 64, 3), tanh, in [-1, 1]
    D = build_discriminator(64)      # image (B, 64, 64, 3) -> one logit (B, 1)

As in PyTorch's DCGAN: no convolution biases, weights N(0, 0.02), BatchNorm gamma N(1, 0.02)
and beta 0, and PyTorch's BatchNorm defaults (epsilon 1e-5, running-average momentum 0.1,
i.e. Keras momentum 0.9). Stride-2 4x4 convolutions with 'same' padding give exactly the
PyTorch ``kernel 4, stride 2, padding 1`` sizes (H -> H/2, and H -> 2H transposed).

Other resolutions (16 to 256) add or remove stride-2 blocks through one channel table.

CLI: ``python dcgan.py --summary 64`` prints one line each for G and D.
"""

import keras

import errors
from errors import run_cli
from model_summary import summary_cli

VALUE_RANGE = (-1.0, 1.0)  # tanh output: images live in [-1, 1]
DEFAULT_RESOLUTION = 64
MIN_RESOLUTION = 16
MAX_RESOLUTION = 256
ALLOWED_RESOLUTIONS = (16, 32, 64, 128, 256)
MAX_FILTER_MULTIPLIER = 8  # channels are capped at 8 x base_filters (512 for base 64)


def check_resolution(resolution):
    """Return ``resolution`` as an int, or raise UserError naming the allowed values."""
    return errors.check_resolution("DCGAN", resolution, ALLOWED_RESOLUTIONS)


def channel_table(resolution, base_filters=64):
    """Channels of the feature maps at each resolution r (4, 8, ..., R/2) of an R-px DCGAN.

    The one channel table of the family, used by both networks: the map next to the image
    (R/2 x R/2) has ``base_filters`` channels and each halving doubles them, capped at
    ``8 * base_filters``: ``table[r] = base_filters * min(R / (2 r), 8)``.
    At 64 px: {4: 512, 8: 256, 16: 128, 32: 64}. The generator goes 1 -> 4 -> ... -> R/2 -> R
    through these; the discriminator goes R -> R/2 -> ... -> 4 -> 1.
    """
    resolution = check_resolution(resolution)
    base_filters = errors.check_positive_int("base_filters", base_filters)
    table = {}
    r = 4
    while r < resolution:
        table[r] = base_filters * min(resolution // (2 * r), MAX_FILTER_MULTIPLIER)
        r *= 2
    return table


def _conv_init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _batch_norm(name, synchronized=False):
    # PyTorch BatchNorm2d defaults; gamma ~ N(1, 0.02), beta = 0 as in the DCGAN paper's code.
    return keras.layers.BatchNormalization(
        momentum=0.9,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
        beta_initializer="zeros",
        synchronized=synchronized,
        name=name,
    )


def build_generator(resolution=DEFAULT_RESOLUTION, latent_dim=100, base_filters=64,
                    sync_batchnorm=False):
    """The DCGAN generator: z (B, latent_dim) ~ N(0, 1) -> image (B, R, R, 3) in [-1, 1].

    z is reshaped to a 1x1 map, ConvTranspose 4x4 'valid' to 4x4, then one stride-2
    ConvTranspose 4x4 per doubling, each followed by BatchNorm + ReLU, and a last stride-2
    ConvTranspose to 3 channels with tanh (computed in float32 under mixed precision).
    sync_batchnorm: under several replicas, BatchNorm statistics over the global batch (what
    one device would compute) instead of each replica's share.
    """
    resolution = check_resolution(resolution)
    table = channel_table(resolution, base_filters)
    latent_dim = errors.check_positive_int("latent_dim", latent_dim)
    z = keras.Input(shape=(latent_dim,), name="z")
    x = keras.layers.Reshape((1, 1, latent_dim), name="z_to_map")(z)  # state size: (B, 1, 1, 100)
    # 1x1 -> 4x4: a transposed conv with 'valid' padding produces (1 - 1) * 1 + 4 = 4.
    x = keras.layers.Conv2DTranspose(
        table[4], 4, strides=1, padding="valid", use_bias=False,
        kernel_initializer=_conv_init(), name="g4_convt",
    )(x)  # state size at 64 px: (B, 4, 4, 512)
    x = _batch_norm("g4_bn", sync_batchnorm)(x)
    x = keras.layers.ReLU(name="g4_relu")(x)
    r = 8
    while r < resolution:
        x = keras.layers.Conv2DTranspose(
            table[r], 4, strides=2, padding="same", use_bias=False,
            kernel_initializer=_conv_init(), name=f"g{r}_convt",
        )(x)  # state size at 64 px: (B, 8, 8, 256), (B, 16, 16, 128), (B, 32, 32, 64)
        x = _batch_norm(f"g{r}_bn", sync_batchnorm)(x)
        x = keras.layers.ReLU(name=f"g{r}_relu")(x)
        r *= 2
    image = keras.layers.Conv2DTranspose(
        3, 4, strides=2, padding="same", use_bias=False, activation="tanh",
        kernel_initializer=_conv_init(), dtype="float32", name="to_rgb",
    )(x)  # state size: (B, R, R, 3)
    return keras.Model(z, image, name="dcgan_generator")


def build_discriminator(resolution=DEFAULT_RESOLUTION, base_filters=64, sync_batchnorm=False):
    """The DCGAN discriminator: image (B, R, R, 3) in [-1, 1] -> one logit (B, 1).

    One stride-2 Conv 4x4 per halving from R to 4x4 (BatchNorm on all but the first; see
    build_generator for sync_batchnorm),
    LeakyReLU(0.2), then Conv 4x4 'valid' to a 1x1x1 map, flattened. The logit is linear:
    use a from-logits loss.
    """
    resolution = check_resolution(resolution)
    table = channel_table(resolution, base_filters)
    image = keras.Input(shape=(resolution, resolution, 3), name="image")
    x = image
    r = resolution // 2
    while r >= 4:
        x = keras.layers.Conv2D(
            table[r], 4, strides=2, padding="same", use_bias=False,
            kernel_initializer=_conv_init(), name=f"d{r}_conv",
        )(x)  # state size at 64 px: (B, 32, 32, 64), (B, 16, 16, 128), ..., (B, 4, 4, 512)
        if r != resolution // 2:
            x = _batch_norm(f"d{r}_bn", sync_batchnorm)(x)
        x = keras.layers.LeakyReLU(0.2, name=f"d{r}_lrelu")(x)
        r //= 2
    x = keras.layers.Conv2D(
        1, 4, strides=1, padding="valid", use_bias=False,
        kernel_initializer=_conv_init(), dtype="float32", name="logit_conv",
    )(x)  # state size: (B, 1, 1, 1)
    logit = keras.layers.Flatten(dtype="float32", name="logit")(x)  # state size: (B, 1)
    return keras.Model(image, logit, name="dcgan_discriminator")


def main(argv=None):
    return summary_cli(
        argv, "DCGAN (Bhavsar et al. 2021) generator and discriminator.",
        ", ".join(str(r) for r in ALLOWED_RESOLUTIONS), "--base-filters", int, 64,
        "channels of the map next to the image (default 64: the authors' networks)",
        lambda r, filters: (build_generator(r, base_filters=filters),
                            build_discriminator(r, base_filters=filters)))


if __name__ == "__main__":
    run_cli(main)
