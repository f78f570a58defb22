"""DCGAN for skin-lesion augmentation (Bhavsar et al. 2021; Radford et al. 2015).

The classic DCGAN as Bhavsar et al. 2021 use it. At 64 px the trainable parameter counts
equal the authors' PyTorch model exactly: generator 3,576,704, discriminator 2,765,568.

    G = build_generator(64)          # z (B, 100) -> image (B, 64, 64, 3), tanh, in [-1, 1]
    D = build_discriminator(64)      # image (B, 64, 64, 3) -> one logit (B, 1)

As in PyTorch's DCGAN: no convolution biases, weights N(0, 0.02), BatchNorm gamma N(1, 0.02)
and beta 0, and PyTorch's BatchNorm (epsilon 1e-5, running-average momentum 0.1, i.e. Keras
momentum 0.9, running variance from the unbiased batch variance: see BatchNorm below).
Stride-2 4x4 convolutions with 'same' padding give exactly the PyTorch
``kernel 4, stride 2, padding 1`` sizes (H -> H/2, and H -> 2H transposed).

Other resolutions (16 to 256) add or remove stride-2 blocks through one channel table.

CLI: ``python dcgan.py --summary 64`` prints one line each for G and D.
"""

import keras
import tensorflow as tf

from skingan import conditional, errors
from skingan.errors import run_cli
from skingan.model_summary import summary_cli

VALUE_RANGE = (-1.0, 1.0)  # tanh output: images live in [-1, 1]
DEFAULT_RESOLUTION = 64
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


@keras.saving.register_keras_serializable(package="dcgan")
class BatchNorm(keras.layers.BatchNormalization):
    """Keras BatchNormalization with torch.nn.BatchNorm2d's training step, on a fused kernel.

    Training, per channel over the n = B * H * W values of the batch:
        y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta       (var_B: biased variance)
        moving_mean     <- momentum * moving_mean     + (1 - momentum) * mean_B
        moving_variance <- momentum * moving_variance + (1 - momentum) * var_B * n / (n - 1)
    The n / (n - 1) (unbiased) running variance is PyTorch's; Keras' own layer uses var_B.
    On one device the whole normalisation is one FusedBatchNormV3 op (oneDNN on CPU, cuDNN on
    GPU), which returns exactly that unbiased variance, instead of the ten or so element-wise
    ops of Keras' layer: the DCGAN step trained 6-10 % faster on CPU (README, benchmarks).
    synchronized=True (several replicas): Keras' all-reduced moments of the global batch, the
    same formula with the global n. Inference uses the moving statistics (Keras' path).
    Channels-last 4-D inputs only, no renorm, no mask.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.renorm or self.axis not in (-1, 3):
            raise ValueError("BatchNorm supports channels-last inputs without renorm only")

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)  # statistics in float32, also under mixed precision
        gamma, beta = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        if self.synchronized:
            mean, variance = self._moments(x, None)  # (C,) each, over the global batch
            context = tf.distribute.get_replica_context()
            replicas = context.num_replicas_in_sync if context else 1
            n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]) * replicas, tf.float32)
            y = tf.nn.batch_normalization(x, mean, variance, beta, gamma, self.epsilon)
            unbiased = variance * n / tf.maximum(n - 1.0, 1.0)
        else:
            # empty mean / variance inputs: training mode computes them from the batch
            y, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=tf.zeros([0]), variance=tf.zeros([0]),
                epsilon=self.epsilon, is_training=True, data_format="NHWC")
        self.moving_mean.assign(self.momentum * self.moving_mean + (1.0 - self.momentum) * mean)
        self.moving_variance.assign(
            self.momentum * self.moving_variance + (1.0 - self.momentum) * unbiased)
        return tf.cast(y, self.compute_dtype)


def _batch_norm(name, synchronized=False):
    # PyTorch BatchNorm2d defaults; gamma ~ N(1, 0.02), beta = 0 as in the DCGAN paper's code.
    return BatchNorm(
        momentum=0.9,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
        beta_initializer="zeros",
        synchronized=synchronized,
        name=name,
    )


def build_generator(resolution=DEFAULT_RESOLUTION, latent_dim=100, base_filters=64,
                    sync_batchnorm=False, num_classes=0):
    """The DCGAN generator: z (B, latent_dim) ~ N(0, 1) -> image (B, R, R, 3) in [-1, 1].

    z is reshaped to a 1x1 map, ConvTranspose 4x4 'valid' to 4x4, then one stride-2
    ConvTranspose 4x4 per doubling, each followed by BatchNorm + ReLU, and a last stride-2
    ConvTranspose to 3 channels with tanh (computed in float32 under mixed precision).
    sync_batchnorm: under several replicas, BatchNorm statistics over the global batch (what
    one device would compute) instead of each replica's share.
    num_classes > 0 (conditional, beyond the paper): inputs [z, label (B,) int], and the 1x1
    map is [normalised z, normalised class embedding (latent_dim)] (skingan/conditional.py).
    """
    resolution = check_resolution(resolution)
    table = channel_table(resolution, base_filters)
    latent_dim = errors.check_positive_int("latent_dim", latent_dim)
    z = keras.Input(shape=(latent_dim,), name="z")
    inputs, code = z, z
    if num_classes:
        label = conditional.label_input()
        inputs = [z, label]
        code = conditional.embed_with_latent(z, label, num_classes, latent_dim)  # (B, 2 * 100)
    x = keras.layers.Reshape((1, 1, code.shape[-1]), name="z_to_map")(code)  # (B, 1, 1, 100)
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
    return keras.Model(inputs, image, name="dcgan_generator")


def build_discriminator(resolution=DEFAULT_RESOLUTION, base_filters=64, sync_batchnorm=False,
                        num_classes=0):
    """The DCGAN discriminator: image (B, R, R, 3) in [-1, 1] -> one logit (B, 1).

    One stride-2 Conv 4x4 per halving from R to 4x4 (BatchNorm on all but the first; see
    build_generator for sync_batchnorm),
    LeakyReLU(0.2), then Conv 4x4 'valid' to a 1x1x1 map, flattened. The logit is linear:
    use a from-logits loss. num_classes > 0: inputs [image, label], and the projection term
    <embed(label), phi> is added to the logit, phi the flattened 4x4 features.
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
    features = x  # state size at 64 px: (B, 4, 4, 512)
    x = keras.layers.Conv2D(
        1, 4, strides=1, padding="valid", use_bias=False,
        kernel_initializer=_conv_init(), dtype="float32", name="logit_conv",
    )(x)  # state size: (B, 1, 1, 1)
    logit = keras.layers.Flatten(dtype="float32", name="logit")(x)  # state size: (B, 1)
    if not num_classes:
        return keras.Model(image, logit, name="dcgan_discriminator")
    label = conditional.label_input()
    phi = keras.layers.Flatten(name="features")(features)  # state size: (B, 8192)
    logit = conditional.projection_logit(logit, phi, label, num_classes)
    return keras.Model([image, label], logit, name="dcgan_discriminator")


def main(argv=None):
    return summary_cli(
        argv, "DCGAN (Bhavsar et al. 2021) generator and discriminator.",
        ", ".join(str(r) for r in ALLOWED_RESOLUTIONS), "--base-filters", int, 64,
        "channels of the map next to the image (default 64: the authors' networks)",
        lambda r, filters, k: (build_generator(r, base_filters=filters, num_classes=k),
                               build_discriminator(r, base_filters=filters, num_classes=k)))


if __name__ == "__main__":
    run_cli(main)
