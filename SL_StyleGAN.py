"""SL-StyleGAN (Qin et al. 2020): the skin-lesion StyleGAN generator and discriminator.

A StyleGAN cut down for small medical datasets: no progressive growing,
no style mixing (one z per image), no noise on the learned constant, and a first 4x4 block
with a single convolution. At the paper's settings the trainable parameter counts equal the
authors' Keras model exactly (generator 9,266,195 / discriminator 2,404,113 at 256 px).

    G = build_generator(256)                 # inputs [z (B, 100), noise (B, 256, 256, 1)]
    images = G([z, noise])                   # (B, 256, 256, 3) in [0, 1]
    w = get_mapping(G)(z)                    # truncation trick: w' = w_avg + psi * (w - w_avg)
    images = get_synthesis(G)([w_truncated, noise])
    D = build_discriminator(256)             # (B, 256, 256, 3) -> one linear logit (B, 1)

Choices that reproduce the authors' counts (and their code): the 4x4 block's convolution has
512 filters with bias; every noise Conv2D(f, 1) has a bias; each AdaIN has its own pair of
Dense(f) layers with bias; the discriminator's convolutions use 'same' padding, so its last
feature map is 4x4 and Flatten -> Dense(128) holds 4*4*f*128 + 128 weights. Initialisers as
the authors': he_normal for the mapping, the constant, every generator convolution (noise
convolutions included), the AdaIN Dense kernels and the discriminator convolutions; Keras'
default glorot_uniform for the output Conv2D(3, 1) and the discriminator's Dense layers.

CLI: ``python SL_StyleGAN.py --summary 256`` prints one line each for G and D.
"""
import numbers

import keras
import tensorflow as tf
from keras import ops

from skingan import conditional, errors
from skingan.errors import UserError, run_cli
from skingan.model_summary import summary_cli

VALUE_RANGE = (0.0, 1.0)  # sigmoid output: images live in [0, 1]
DEFAULT_RESOLUTION = 256
MIN_RESOLUTION = 8
MAX_RESOLUTION = 1024
ALLOWED_RESOLUTIONS = tuple(2 ** k for k in range(3, 11))  # 8, 16, ..., 1024

# Channels of the blocks counted from the output end: the R x R block has 16, R/2 has 32, ...
# Only as many as the resolution needs are used; the 4x4 constant block always has 512.
_CHANNEL_LADDER = (16, 32, 64, 128, 192, 256, 384, 512)
_CONST_CHANNELS = 512


def check_resolution(resolution):
    """Return ``resolution`` as an int, or raise UserError naming the allowed values."""
    return errors.check_resolution("SL-StyleGAN", resolution, ALLOWED_RESOLUTIONS)


def _scaled(channels, channel_scale):
    return max(1, int(channels * channel_scale + 0.5))


def channel_table(resolution, channel_scale=1.0):
    """Channels of the feature maps at each resolution r (4, 8, ..., R) of an R-px network.

    The one channel table of the family: the generator's block at r outputs ``table[r]``
    channels and the discriminator's block that reads an r x r map outputs ``table[r]``
    channels (then pools to r/2). At R = 256: {4: 512, 8: 256, 16: 192, 32: 128, 64: 64,
    128: 32, 256: 16}. ``channel_scale`` multiplies every entry (rounded, at least 1).
    """
    resolution = check_resolution(resolution)
    if (isinstance(channel_scale, bool) or not isinstance(channel_scale, numbers.Real)
            or not channel_scale > 0):
        raise UserError(f"channel_scale must be positive, got {channel_scale!r}")
    table = {4: _scaled(_CONST_CHANNELS, channel_scale)}
    r, step = resolution, 0
    while r > 4:
        table[r] = _scaled(_CHANNEL_LADDER[step], channel_scale)
        r, step = r // 2, step + 1
    return dict(sorted(table.items()))


# --------------------------------------------------------------------------------------
# Custom layers
# --------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="SL_StyleGAN")
class LearnedConstant(keras.layers.Layer):
    """The learned 4x4xC input of the synthesis network, repeated over the batch.

    Holds exactly the weights of the authors' ``Dense(4*4*C)`` applied to a scalar 1: a
    kernel of shape (1, 4*4*C) (he_normal with fan-in 1, i.e. std sqrt(2)) and a bias of
    4*4*C zeros; the constant is ``kernel[0] + bias`` reshaped to (4, 4, C). Its input is
    any tensor with the batch size as first axis (the style w); its values are ignored.
    """

    def __init__(self, channels, size=4, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.size = int(size)

    def build(self, input_shape):
        units = self.size * self.size * self.channels
        self.kernel = self.add_weight(
            name="kernel", shape=(1, units), initializer="he_normal", trainable=True
        )
        self.bias = self.add_weight(
            name="bias", shape=(units,), initializer="zeros", trainable=True
        )

    def call(self, inputs):
        const = ops.reshape(
            ops.cast(self.kernel[0] + self.bias, self.compute_dtype),
            (1, self.size, self.size, self.channels),
        )
        batch = ops.shape(inputs)[0]
        return ops.broadcast_to(const, (batch, self.size, self.size, self.channels))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, size=self.size)
        return config


def adain(x, gamma, beta, epsilon):
    """AdaIN's maths on float32 tensors, with its gradient written out by hand.

    Forward, per image and channel over the n = H * W positions (mu: mean, sigma: population
    std, the authors' epsilon added to the std):
        c = x - mu,   out = c / (sigma + epsilon) * gamma + beta
    Backward, dy the gradient of the output and d = sigma + epsilon:
        dbeta  = sum(dy),   dgamma = sum(dy * c) / d
        dx     = gamma / d * (dy - sum(dy) / n - c * sum(dy * c) / (n * d * sigma))
    This is the same function and the same gradient TensorFlow derives from the formula
    (tests/test_sl_stylegan.py checks both against that autodiff version, and three train
    steps with either), in fewer kernels over the B x H x W x C activations: 6 forward and 7
    backward, against 7 and 20 (the derivatives of the mean, square, square root and
    division, each its own element-wise kernel; counted on the traced graph). The generator
    is differentiated once per step (R1 acts on D only), so no second derivative is needed.
    """
    @tf.custom_gradient
    def forward(x, gamma, beta):
        mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)   # (B, 1, 1, C)
        sigma = tf.sqrt(variance)
        inv = 1.0 / (sigma + epsilon)
        centred = x - mean
        gamma4 = gamma[:, None, None, :]
        out = centred * (inv * gamma4) + beta[:, None, None, :]

        def backward(dy):
            n = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
            sum_dy = tf.reduce_sum(dy, axis=[1, 2])                     # (B, C)
            sum_dy_c = tf.reduce_sum(dy * centred, axis=[1, 2])         # (B, C)
            inv2 = inv[:, 0, 0, :]                                      # (B, C)
            scale = gamma * inv2                                        # d out / d c, direct
            coef_c = -scale * sum_dy_c / (n * sigma[:, 0, 0, :]) * inv2
            shift = -scale * sum_dy / n
            dx = dy * scale[:, None, None, :] + (centred * coef_c[:, None, None, :]
                                                 + shift[:, None, None, :])
            return dx, sum_dy_c * inv2, sum_dy
        return out, backward
    return forward(x, gamma, beta)


@keras.saving.register_keras_serializable(package="SL_StyleGAN")
class AdaIN(keras.layers.Layer):
    """Adaptive instance normalisation: ``AdaIN()([x, gamma, beta])``.

    x: (B, H, W, C); gamma, beta: (B, C) styles from Dense layers on w. Each channel of each
    image is normalised over H, W to zero mean and unit std, then scaled and shifted:

        out = (x - mean_hw(x)) / (std_hw(x) + epsilon) * gamma + beta

    (population std, epsilon added to the std as the authors do). The statistics are always
    computed in float32, whatever the compute dtype: under mixed_bfloat16 an epsilon of 1e-8
    would vanish next to bf16's 8-bit mantissa and the variance would lose most digits.
    The layer has no weights of its own.
    """

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        x, gamma, beta = inputs
        out = adain(ops.cast(x, "float32"), ops.cast(gamma, "float32"),
                    ops.cast(beta, "float32"), self.epsilon)
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config


# --------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------

def build_mapping(latent_dim=100, w_dim=512, mapping_layers=8, num_classes=0):
    """The mapping network z -> w: ``mapping_layers`` x (Dense(w_dim, he_normal), LReLU 0.2).

    num_classes > 0 (conditional, beyond the paper): inputs [z, label (B,) int], and the first
    layer reads [normalised z, normalised class embedding (w_dim)] (skingan/conditional.py).
    """
    latent_dim = errors.check_positive_int("latent_dim", latent_dim)
    w_dim = errors.check_positive_int("w_dim", w_dim)
    mapping_layers = errors.check_positive_int("mapping_layers", mapping_layers)
    z = keras.Input(shape=(latent_dim,), name="z")  # state size: (B, latent_dim)
    inputs, w = z, z
    if num_classes:
        label = conditional.label_input()
        inputs = [z, label]
        w = conditional.embed_with_latent(z, label, num_classes, w_dim)  # (B, latent + w_dim)
    for i in range(mapping_layers):
        w = keras.layers.Dense(w_dim, kernel_initializer="he_normal", name=f"map{i}_dense")(w)
        # The last activation emits float32 even under mixed precision, so that w_avg and
        # the truncation w_avg + psi * (w - w_avg) are computed at full precision.
        last = i == mapping_layers - 1
        w = keras.layers.LeakyReLU(
            0.2, dtype="float32" if last else None, name=f"map{i}_lrelu"
        )(w)  # state size: (B, w_dim)
    return keras.Model(inputs, w, name="mapping")


def _noise_adain_act(x, w, noise, filters, prefix):
    """add noise -> AdaIN -> LeakyReLU(0.01); x: (B, r, r, f), noise: (B, r, r, 1)."""
    # Conv2D(f, 1) on the one-channel noise = a learned per-channel scale (and bias).
    scaled_noise = keras.layers.Conv2D(
        filters, 1, kernel_initializer="he_normal", name=f"{prefix}_noise"
    )(noise)
    x = keras.layers.Add(name=f"{prefix}_add_noise")([x, scaled_noise])
    gamma = keras.layers.Dense(
        filters, kernel_initializer="he_normal", bias_initializer="ones", name=f"{prefix}_gamma"
    )(w)
    beta = keras.layers.Dense(
        filters, kernel_initializer="he_normal", bias_initializer="zeros", name=f"{prefix}_beta"
    )(w)
    x = AdaIN(name=f"{prefix}_adain")([x, gamma, beta])
    return keras.layers.LeakyReLU(0.01, name=f"{prefix}_lrelu")(x)


def build_synthesis(resolution=DEFAULT_RESOLUTION, w_dim=512, channel_scale=1.0):
    """The synthesis network [w (B, w_dim), noise (B, R, R, 1)] -> image (B, R, R, 3) in [0, 1]."""
    resolution = check_resolution(resolution)
    table = channel_table(resolution, channel_scale)
    w_dim = errors.check_positive_int("w_dim", w_dim)
    w = keras.Input(shape=(w_dim,), name="w")
    noise = keras.Input(shape=(resolution, resolution, 1), name="noise")

    def noise_at(r):
        # Centre r x r crop of the one R x R noise image (R - r is even: crop equally).
        if r == resolution:
            return noise
        c = (resolution - r) // 2
        return keras.layers.Cropping2D(((c, c), (c, c)), name=f"noise_crop{r}")(noise)

    # 4x4 block: learned constant -> one Conv2D -> noise -> AdaIN -> LReLU.
    f = table[4]
    x = LearnedConstant(f, name="const")(w)  # state size: (B, 4, 4, 512)
    x = keras.layers.Conv2D(
        f, 3, padding="same", kernel_initializer="he_normal", name="g4_conv"
    )(x)  # state size: (B, 4, 4, 512)
    x = _noise_adain_act(x, w, noise_at(4), f, "g4")

    # Later blocks, r = 8 ... R: upsample -> 2 x (Conv2D -> noise -> AdaIN -> LReLU).
    r = 8
    while r <= resolution:
        f = table[r]
        n = noise_at(r)
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"g{r}_up")(x)
        for i in (1, 2):
            x = keras.layers.Conv2D(
                f, 3, padding="same", kernel_initializer="he_normal", name=f"g{r}_conv{i}"
            )(x)  # state size at 256 px: (B, 8, 8, 256) ... (B, 256, 256, 16)
            x = _noise_adain_act(x, w, n, f, f"g{r}_{i}")
        r *= 2

    # Output in float32 even under a mixed-precision policy.
    image = keras.layers.Conv2D(
        3, 1, activation="sigmoid", dtype="float32", name="to_rgb"
    )(x)  # state size: (B, R, R, 3)
    return keras.Model([w, noise], image, name="synthesis")


def build_generator(
    resolution=DEFAULT_RESOLUTION, latent_dim=100, w_dim=512, mapping_layers=8, channel_scale=1.0,
    num_classes=0,
):
    """The SL-StyleGAN generator: inputs [z (B, latent_dim), noise (B, R, R, 1)] -> (B, R, R, 3).

    z and the noise image are both N(0, 1). The output is a sigmoid, in VALUE_RANGE = [0, 1].
    The model is the composition of two nested models, ``get_mapping(G)`` (z -> w) and
    ``get_synthesis(G)`` ([w, noise] -> image). ``channel_scale`` shrinks every channel count
    (tiny test/demo models); 1.0 is the authors' network. num_classes > 0 makes it
    class-conditional (inputs [z, noise, label]; only the mapping network changes).
    """
    resolution = check_resolution(resolution)
    latent_dim = errors.check_positive_int("latent_dim", latent_dim)
    mapping = build_mapping(latent_dim, w_dim, mapping_layers, num_classes)
    synthesis = build_synthesis(resolution, w_dim, channel_scale)
    z = keras.Input(shape=(latent_dim,), name="z")
    noise = keras.Input(shape=(resolution, resolution, 1), name="noise")
    inputs = [z, noise]
    if num_classes:
        inputs.append(conditional.label_input())
    w = mapping([z, inputs[2]] if num_classes else z)  # state size: (B, w_dim)
    image = synthesis([w, noise])  # state size: (B, R, R, 3)
    return keras.Model(inputs, image, name="sl-stylegan_generator")


def get_mapping(generator):
    """The nested mapping network (z -> w) of a generator from ``build_generator``."""
    return generator.get_layer("mapping")


def get_synthesis(generator):
    """The nested synthesis network ([w, noise] -> image) of a generator."""
    return generator.get_layer("synthesis")


# --------------------------------------------------------------------------------------
# Discriminator
# --------------------------------------------------------------------------------------

def build_discriminator(resolution=DEFAULT_RESOLUTION, channel_scale=1.0, dropout=0.6,
                        num_classes=0):
    """The SL-StyleGAN discriminator: image (B, R, R, 3) -> one linear logit (B, 1).

    One block per halving from R down to 4x4, mirroring the generator through
    ``channel_table``: Conv2D(f, 3) -> LReLU(0.01) -> AvgPool(2) -> Conv2D(f, 3) -> LReLU(0.01)
    with f = 16, 32, 64, 128, ... (the block reading an r x r map has ``table[r]`` filters).
    For R >= 32 that is exactly the authors' rule (16, 32, 64, then 128 if R > 32, 192 if
    R > 64, ...). Then Flatten -> Dense(128) -> ReLU -> Dropout -> Dense(1).
    num_classes > 0: inputs [image, label] and the projection term <embed(label), phi> is
    added to the logit, phi the 128 features after Dropout (skingan/conditional.py).
    """
    resolution = check_resolution(resolution)
    table = channel_table(resolution, channel_scale)
    if not 0.0 <= dropout < 1.0:
        raise UserError(f"dropout must be in [0, 1), got {dropout!r}")
    image = keras.Input(shape=(resolution, resolution, 3), name="image")
    x = image
    r = resolution
    while r > 4:
        f = table[r]
        x = keras.layers.Conv2D(
            f, 3, padding="same", kernel_initializer="he_normal", name=f"d{r}_conv1"
        )(x)  # state size at 256 px: (B, 256, 256, 16) ... (B, 8, 8, 256)
        x = keras.layers.LeakyReLU(0.01, name=f"d{r}_lrelu1")(x)
        x = keras.layers.AveragePooling2D(2, name=f"d{r}_pool")(x)  # state size: (B, r/2, r/2, f)
        x = keras.layers.Conv2D(
            f, 3, padding="same", kernel_initializer="he_normal", name=f"d{r}_conv2"
        )(x)
        x = keras.layers.LeakyReLU(0.01, name=f"d{r}_lrelu2")(x)
        r //= 2
    x = keras.layers.Flatten(name="flatten")(x)  # state size: (B, 4*4*f); 4096 at 256 px
    x = keras.layers.Dense(128, name="fc")(x)  # state size: (B, 128)
    x = keras.layers.ReLU(name="fc_relu")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)  # state size: (B, 1)
    if not num_classes:
        return keras.Model(image, logit, name="sl-stylegan_discriminator")
    label = conditional.label_input()
    logit = conditional.projection_logit(logit, x, label, num_classes)
    return keras.Model([image, label], logit, name="sl-stylegan_discriminator")


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

def main(argv=None):
    return summary_cli(
        argv, "SL-StyleGAN (Qin et al. 2020) generator and discriminator.",
        f"a power of two, {MIN_RESOLUTION} to {MAX_RESOLUTION}", "--channel-scale", float, 1.0,
        "multiply every channel count (default 1.0: the authors' networks)",
        lambda r, scale, k: (build_generator(r, channel_scale=scale, num_classes=k),
                             build_discriminator(r, channel_scale=scale, num_classes=k)))


if __name__ == "__main__":
    run_cli(main)
