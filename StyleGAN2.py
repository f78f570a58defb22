"""StyleGAN2 (Karras et al. 2020) networks as NVlabs' ``stylegan2-ada-pytorch`` builds them.

The model the field uses today for small datasets, as a third family beside the papers' two.
The builders follow NVlabs' ``training/networks.py`` fact for fact (equalised learning rate,
modulated convolutions with demodulation, [1, 3, 3, 1] FIR resampling, 'skip' generator,
'resnet' discriminator with minibatch standard deviation); at NVlabs' configurations the
trainable parameter counts equal theirs (DESIGN.md section 6; tests/test_stylegan2_networks.py):

    G = build_generator(256, channel_base=16384)   # inputs z (B, 512), 13 noise images, [c]
    images = G([z, *noises])                       # (B, 256, 256, 3), nominally [-1, 1]
    ws = G.get_layer("mapping")(z)                 # (B, num_ws, 512); w_avg on the mapping
    images = G.get_layer("synthesis")([ws, *noises])
    D = build_discriminator(256, channel_base=16384, mbstd_group=8)   # -> raw logits (B, 1)

Noise is an explicit input (one image per noise-using layer, ``noise_shapes``), never drawn
inside the model, so a train step can draw it from its checkpointed generator and resume
stays bit-identical. Labels are int32 class indices (B,), one-hot inside (NVlabs' c).

Tensors are NHWC. Everything NVlabs does in NCHW maps across without change of meaning,
except two orderings that only permute randomly initialised weights: the flatten before the
discriminator's fc reads (H, W, C) where NVlabs reads (C, H, W), and kernels are stored
(kh, kw, in, out). See docs/stylegan2-networks.md.

CLI: ``python StyleGAN2.py --summary 256 --config paper256`` prints the parameter counts.
"""
import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from skingan import errors
from skingan.conditional import SecondMomentNorm
from skingan.errors import UserError, run_cli
from skingan.model_summary import count_params, summary_cli, summary_line

VALUE_RANGE = (-1.0, 1.0)  # linear output, trained against images in [-1, 1] (NVlabs)
DEFAULT_RESOLUTION = 256
ALLOWED_RESOLUTIONS = tuple(2 ** k for k in range(3, 11))  # 8, 16, ..., 1024
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)   # NVlabs' resample_filter
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)       # bias_act's def_gain for 'lrelu'; 'linear' has gain 1

_PACKAGE = "StyleGAN2"


def check_resolution(resolution):
    """Return ``resolution`` as an int, or raise UserError naming the allowed values."""
    return errors.check_resolution("StyleGAN2", resolution, ALLOWED_RESOLUTIONS)


def channels(resolution, channel_base=32768, channel_max=512):
    """NVlabs' channel table {r: min(channel_base // r, channel_max)} for r = 4, 8, ..., R.

    The one table of the family: the synthesis block at r outputs ``table[r]`` channels; the
    discriminator block reading an r x r map works at ``table[r]`` and outputs
    ``table[r // 2]``. At R = 256, channel_base 16384: {4..32: 512, 64: 256, 128: 128, 256: 64}.
    """
    resolution = check_resolution(resolution)
    channel_base = errors.check_positive_int("channel_base", channel_base)
    channel_max = errors.check_positive_int("channel_max", channel_max)
    if channel_base // resolution < 1:
        raise UserError(f"channel_base {channel_base} leaves no channels at {resolution} px: "
                        f"it must be at least the resolution")
    return {2 ** k: min(channel_base // 2 ** k, channel_max)
            for k in range(2, int(math.log2(resolution)) + 1)}


def noise_shapes(resolution):
    """(r, r) of each noise input of the synthesis network, in input order.

    One per modulated 3x3 convolution: the 4x4 block's conv1, then conv0 (after the
    upsampling) and conv1 of every block r = 8 ... R. At 256 px: 13 images.
    """
    resolution = check_resolution(resolution)
    shapes = [(4, 4)]
    for k in range(3, int(math.log2(resolution)) + 1):
        shapes += [(2 ** k, 2 ** k)] * 2
    return shapes


def num_ws(resolution):
    """NVlabs' num_ws: one w per modulated convolution plus one for the last ToRGB.

    Each block's ToRGB shares the w of the next block's first convolution (NVlabs' w
    indexing), so only the final ToRGB adds one: 2 log2(R) - 2 (14 at 256 px).
    """
    return len(noise_shapes(resolution)) + 1


# --------------------------------------------------------------------------------------
# Primitive maths: bias + activation, FIR resampling (upfirdn2d)
# --------------------------------------------------------------------------------------

def bias_act(x, bias=None, activation="linear", gain=None, clamp=None):
    """NVlabs' bias_act: (act(x + b)) * gain, then clipped to [-clamp, clamp] if clamp is set.

    x: (..., C) with the bias on the last axis. gain defaults to the activation's own
    (sqrt 2 for 'lrelu', 1 for 'linear'); lrelu has slope 0.2.
    """
    if activation not in ("linear", "lrelu"):
        raise ValueError(f"unknown activation {activation!r}")
    if gain is None:
        gain = LRELU_GAIN if activation == "lrelu" else 1.0
    if bias is not None:
        x = x + ops.cast(bias, x.dtype)
    if activation == "lrelu":
        x = tf.nn.leaky_relu(x, alpha=LRELU_SLOPE)
    if gain != 1:
        x = x * ops.cast(gain, x.dtype)
    if clamp is not None:
        x = ops.clip(x, -clamp, clamp)
    return x


def fir_filter(gain=1.0):
    """The 2-D [1, 3, 3, 1] filter: outer product normalised to sum 1, times ``gain``
    (upfirdn2d.setup_filter, then upfirdn2d's gain ** (ndim / 2) with ndim 2). (4, 4)."""
    taps = np.asarray(FIR_TAPS, dtype=np.float64)
    f = np.outer(taps, taps)
    return (f / f.sum() * gain).astype(np.float32)


def upfirdn2d(x, up=1, down=1, padding=(0, 0), gain=1.0):
    """NVlabs' upfirdn2d on NHWC with the [1, 3, 3, 1] filter, each channel on its own:

    1. upsample by inserting up - 1 zeros after each pixel (rows and columns);
    2. pad (padding[0] before, padding[1] after) with zeros, on both spatial axes;
    3. convolve with the 4x4 filter (times gain), keeping only the 'valid' outputs;
    4. keep every down-th pixel.
    Output size: (H * up + p0 + p1 - 3) // down (rounded up). x: (B, H, W, C), C static.
    """
    c = int(x.shape[-1])
    if up > 1:
        shape = tf.shape(x)
        b, h, w = shape[0], shape[1], shape[2]
        x = tf.reshape(x, [b, h, 1, w, 1, c])
        x = tf.pad(x, [[0, 0], [0, 0], [0, up - 1], [0, 0], [0, up - 1], [0, 0]])
        x = tf.reshape(x, [b, h * up, w * up, c])             # (B, H up, W up, C)
    p0, p1 = padding
    x = tf.pad(x, [[0, 0], [p0, p1], [p0, p1], [0, 0]])
    # A convolution is a correlation with the flipped filter (the filter is symmetric).
    f = fir_filter(gain)[::-1, ::-1]
    kernel = tf.constant(np.tile(f[:, :, None, None], (1, 1, c, 1)), dtype=x.dtype)
    return tf.nn.depthwise_conv2d(x, kernel, strides=[1, down, down, 1], padding="VALID")


def upsample2d(x):
    """Upsample by 2 with the FIR (NVlabs' upsample2d): pad (2, 1), gain 4. (B, 2H, 2W, C)."""
    return upfirdn2d(x, up=2, padding=(2, 1), gain=4.0)


def downsample2d(x):
    """Downsample by 2 with the FIR (NVlabs' downsample2d): pad (1, 1). (B, H/2, W/2, C)."""
    return upfirdn2d(x, down=2, padding=(1, 1))


def conv2d_resample(x, weight, up=1, down=1):
    """NVlabs' conv2d_resample for an odd k x k kernel with padding k // 2, NHWC.

    weight: (k, k, in, out), already scaled. up = 1, down = 1: correlation with 'same'
    padding. down = 2: FIR first (padding k//2 + 1 each side), then a stride-2 valid
    correlation (a 1x1 kernel: FIR-downsample, then the 1x1). up = 2: a stride-2 transposed
    convolution (which scatters the kernel unflipped, as NVlabs' conv_transpose2d), then the
    FIR with gain 4 and padding (k//2 + 2 - (k-1), k//2 + 1 - (k-2)) = (1, 1) for k = 3.
    Every output pixel sees the full filtered signal, as in NVlabs' reference path.
    """
    k = int(weight.shape[0])
    p = k // 2
    if up == 1 and down == 1:
        return tf.nn.conv2d(x, weight, strides=1, padding="SAME")
    if down == 2 and up == 1:
        if k == 1:
            return tf.nn.conv2d(downsample2d(x), weight, strides=1, padding="VALID")
        x = upfirdn2d(x, padding=(p + 1, p + 1))            # (B, H + 1, W + 1, C) for k = 3
        return tf.nn.conv2d(x, weight, strides=2, padding="VALID")   # (B, H/2, W/2, out)
    if up == 2 and down == 1:
        shape = tf.shape(x)
        out_ch = int(weight.shape[3])
        size = [(int(x.shape[1]) - 1) * 2 + k, (int(x.shape[2]) - 1) * 2 + k]
        filt = tf.transpose(weight, [0, 1, 3, 2])          # (k, k, out, in) for the transpose
        x = tf.nn.conv2d_transpose(x, filt, [shape[0], size[0], size[1], out_ch],
                                   strides=2, padding="VALID")        # (B, 2H + k - 2, ...)
        return upfirdn2d(x, padding=(p + 2 - (k - 1), p + 1 - (k - 2)), gain=4.0)
    raise ValueError(f"unsupported resampling up={up}, down={down}")


# --------------------------------------------------------------------------------------
# Equalised-learning-rate layers
# --------------------------------------------------------------------------------------

class _Layer(keras.layers.Layer):
    """Base: config round trip of the constructor arguments listed in ``_config_keys``."""
    _config_keys = ()

    def get_config(self):
        config = super().get_config()
        config.update({key: getattr(self, key) for key in self._config_keys})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FullyConnected(_Layer):
    """NVlabs' FullyConnectedLayer: y = act(x W g + b lr_mul) with equalised learning rate.

    W (in, units) is stored N(0, 1 / lr_mul^2) and scaled at run time by
    g = lr_mul / sqrt(in); the bias is stored as ``bias_init`` and multiplied by lr_mul.
    So the effective weight is N(0, 1 / in) and Adam's step on the stored weight moves the
    effective one by lr x g: the layer learns lr_mul times slower (0.01 in the mapping).
    """
    _config_keys = ("units", "bias", "activation", "lr_mul", "bias_init", "clamp")

    def __init__(self, units, bias=True, activation="linear", lr_mul=1.0, bias_init=0.0,
                 clamp=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.bias, self.activation = int(units), bool(bias), activation
        self.lr_mul, self.bias_init, self.clamp = float(lr_mul), float(bias_init), clamp

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.weight_gain = self.lr_mul / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            name="kernel", shape=(fan_in, self.units),
            initializer=keras.initializers.RandomNormal(stddev=1.0 / self.lr_mul))
        self.bias_var = None
        if self.bias:
            self.bias_var = self.add_weight(
                name="bias", shape=(self.units,),
                initializer=keras.initializers.Constant(self.bias_init))

    def call(self, x):
        w = ops.cast(self.kernel, x.dtype) * ops.cast(self.weight_gain, x.dtype)
        b = None if self.bias_var is None else self.bias_var * self.lr_mul
        return bias_act(ops.matmul(x, w), b, self.activation, clamp=self.clamp)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def flops_per_image(self):
        """2 x the multiply-adds of the matmul (model_summary's convention)."""
        return 2 * int(self.kernel.shape[0]) * self.units


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Conv2dLayer(_Layer):
    """NVlabs' Conv2dLayer (no up-sampling: the discriminator's convolutions), NHWC.

    Weight (k, k, in, out) stored N(0, 1), scaled at run time by 1 / sqrt(in k k); bias 0.
    down = 2 resamples with the FIR (conv2d_resample). Output:
    clip(act(conv + b) * act_gain * gain, +-conv_clamp * gain), ``gain`` being NVlabs'
    forward-time gain (sqrt(0.5) on the residual branches).
    """
    _config_keys = ("filters", "kernel_size", "bias", "activation", "down", "conv_clamp",
                    "gain")

    def __init__(self, filters, kernel_size, bias=True, activation="linear", down=1,
                 conv_clamp=None, gain=1.0, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.bias, self.activation, self.down = bool(bias), activation, int(down)
        self.conv_clamp, self.gain = conv_clamp, float(gain)

    def build(self, input_shape):
        fan_in = int(input_shape[-1]) * self.kernel_size ** 2
        self.weight_gain = 1.0 / math.sqrt(fan_in)
        k = self.kernel_size
        self.kernel = self.add_weight(name="kernel", shape=(k, k, int(input_shape[-1]),
                                                           self.filters),
                                      initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.bias_var = None
        if self.bias:
            self.bias_var = self.add_weight(name="bias", shape=(self.filters,),
                                            initializer="zeros")

    def call(self, x):
        w = ops.cast(self.kernel, x.dtype) * ops.cast(self.weight_gain, x.dtype)
        x = conv2d_resample(x, w, down=self.down)
        act_gain = (LRELU_GAIN if self.activation == "lrelu" else 1.0) * self.gain
        clamp = None if self.conv_clamp is None else self.conv_clamp * self.gain
        return bias_act(x, self.bias_var, self.activation, gain=act_gain, clamp=clamp)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        h = None if h is None else h // self.down
        w = None if w is None else w // self.down
        return (b, h, w, self.filters)

    def flops_per_image(self):
        h_out, w_out = int(self.output.shape[1]), int(self.output.shape[2])
        return 2 * h_out * w_out * int(np.prod(self.kernel.shape))


def modulated_conv2d(x, weight, styles, demodulate=True, up=1):
    """NVlabs' modulated_conv2d, non-fused form (the one NVlabs trains with), NHWC.

    x (B, H, W, I) in the compute dtype; weight (k, k, I, O) and styles (B, I) float32.
    Per sample b the effective kernel is w_b[k, i, o] = weight[k, i, o] s[b, i]; with
    demodulation it is divided by d[b, o] = sqrt(sum_{k, i} w_b[k, i, o]^2 + 1e-8). The same
    result without per-sample kernels: scale the input channels by s, convolve with the
    shared weight, scale the output channels by 1 / d, where
    sum_{k, i} w_b^2 = sum_i s[b, i]^2 sum_k weight[k, i, o]^2 (a (B, I) x (I, O) matmul).
    Returns (B, H up, W up, O) in x's dtype, before noise, bias and activation.
    """
    dtype = x.dtype
    in_ch = int(weight.shape[2])
    if demodulate and dtype != tf.float32:
        # NVlabs' pre-normalisation for low precision: rescale the weight per output
        # channel and the styles per sample. Demodulation cancels both scales exactly (up
        # to the 1e-8), so this changes nothing but the range the activations live in.
        k = int(weight.shape[0])
        weight = weight * (1.0 / math.sqrt(in_ch * k * k) / tf.reduce_max(
            tf.abs(weight), axis=[0, 1, 2], keepdims=True))
        styles = styles / tf.reduce_max(tf.abs(styles), axis=1, keepdims=True)
    x = x * ops.cast(styles, dtype)[:, None, None, :]
    x = conv2d_resample(x, ops.cast(weight, dtype), up=up)
    if demodulate:
        sq = tf.reduce_sum(tf.square(weight), axis=[0, 1])              # (I, O)
        dcoefs = tf.math.rsqrt(tf.matmul(tf.square(styles), sq) + 1e-8)  # (B, O)
        x = x * ops.cast(dcoefs, dtype)[:, None, None, :]
    return x


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SynthesisLayer(_Layer):
    """NVlabs' SynthesisLayer: ``SynthesisLayer(f, up=...)([x, w, noise])``.

    styles = affine(w): an equalised FC w_dim -> in (bias init 1), computed in float32;
    x -> modulated 3x3 conv with demodulation (up = 2: FIR upsampling) -> + noise x strength
    (noise (B, r, r, 1), strength a learned scalar initialised 0) -> + bias -> lrelu x sqrt 2
    -> clip to +-conv_clamp. The weight is stored N(0, 1) with no run-time gain, as NVlabs
    (demodulation makes its scale irrelevant).
    Mixed precision: the layer reads its inputs itself (autocast off), keeping w, the
    styles and the demodulation coefficients in float32 while x is in the compute dtype.
    """
    _config_keys = ("filters", "kernel_size", "up", "use_noise", "conv_clamp")

    def __init__(self, filters, kernel_size=3, up=1, use_noise=True, conv_clamp=None,
                 **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.up = int(filters), int(kernel_size), int(up)
        self.use_noise, self.conv_clamp = bool(use_noise), conv_clamp

    def build(self, input_shape):
        x_shape, w_shape = input_shape[0], input_shape[1]
        in_ch, w_dim, k = int(x_shape[-1]), int(w_shape[-1]), self.kernel_size
        normal = keras.initializers.RandomNormal(stddev=1.0)
        self.affine_gain = 1.0 / math.sqrt(w_dim)
        self.affine_kernel = self.add_weight(name="affine_kernel", shape=(w_dim, in_ch),
                                             initializer=normal)
        self.affine_bias = self.add_weight(name="affine_bias", shape=(in_ch,),
                                           initializer="ones")
        self.kernel = self.add_weight(name="kernel", shape=(k, k, in_ch, self.filters),
                                      initializer=normal)
        if self.use_noise:
            self.noise_strength = self.add_weight(name="noise_strength", shape=(),
                                                  initializer="zeros")
        self.bias_var = self.add_weight(name="bias", shape=(self.filters,),
                                        initializer="zeros")

    def call(self, inputs):
        x, w = inputs[0], inputs[1]
        x = ops.cast(x, self.compute_dtype)
        w = ops.cast(w, "float32")
        styles = ops.matmul(w, self.affine_kernel * self.affine_gain) + self.affine_bias
        x = modulated_conv2d(x, ops.convert_to_tensor(self.kernel), styles, up=self.up)
        if self.use_noise:
            noise = ops.cast(inputs[2], x.dtype) * ops.cast(self.noise_strength, x.dtype)
            x = x + noise                                          # (B, r, r, 1) broadcast
        return bias_act(x, self.bias_var, "lrelu", clamp=self.conv_clamp)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape[0]
        h = None if h is None else h * self.up
        w = None if w is None else w * self.up
        return (b, h, w, self.filters)

    def flops_per_image(self):
        """The convolution (a transposed one scatters from each input pixel), the affine
        and the demodulation matmul; the FIR and element-wise work are left out."""
        h_in, w_in = int(self.input[0].shape[1]), int(self.input[0].shape[2])
        conv = h_in * w_in * int(np.prod(self.kernel.shape))
        return 2 * (conv + int(np.prod(self.affine_kernel.shape))
                    + int(np.prod(self.kernel.shape[2:])))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ToRGB(_Layer):
    """NVlabs' ToRGBLayer: ``ToRGB()([x, w])`` -> (B, r, r, 3) float32.

    styles = affine(w) / sqrt(in) (the 1x1 conv's equalised-lr gain folded into the
    styles), modulated 1x1 conv without demodulation, + bias, clip to +-conv_clamp.
    """
    _config_keys = ("channels", "conv_clamp")

    def __init__(self, channels=3, conv_clamp=None, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.channels, self.conv_clamp = int(channels), conv_clamp

    def build(self, input_shape):
        in_ch, w_dim = int(input_shape[0][-1]), int(input_shape[1][-1])
        normal = keras.initializers.RandomNormal(stddev=1.0)
        self.affine_gain = 1.0 / math.sqrt(w_dim)
        self.weight_gain = 1.0 / math.sqrt(in_ch)
        self.affine_kernel = self.add_weight(name="affine_kernel", shape=(w_dim, in_ch),
                                             initializer=normal)
        self.affine_bias = self.add_weight(name="affine_bias", shape=(in_ch,),
                                           initializer="ones")
        self.kernel = self.add_weight(name="kernel", shape=(1, 1, in_ch, self.channels),
                                      initializer=normal)
        self.bias_var = self.add_weight(name="bias", shape=(self.channels,),
                                        initializer="zeros")

    def call(self, inputs):
        x = ops.cast(inputs[0], self.compute_dtype)
        w = ops.cast(inputs[1], "float32")
        styles = (ops.matmul(w, self.affine_kernel * self.affine_gain)
                  + self.affine_bias) * self.weight_gain
        x = modulated_conv2d(x, ops.convert_to_tensor(self.kernel), styles, demodulate=False)
        x = bias_act(x, self.bias_var, "linear", clamp=self.conv_clamp)
        return ops.cast(x, "float32")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (self.channels,)

    def flops_per_image(self):
        h, w = int(self.input[0].shape[1]), int(self.input[0].shape[2])
        return 2 * (h * w * int(np.prod(self.kernel.shape))
                    + int(np.prod(self.affine_kernel.shape)))

    def compute_output_spec(self, inputs):
        shape = self.compute_output_shape([inputs[0].shape, inputs[1].shape])
        return keras.KerasTensor(shape, dtype="float32")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LearnedConst(_Layer):
    """The synthesis network's learned (size, size, C) input, N(0, 1), repeated over the
    batch. Its input is any tensor with the batch as first axis (ws); its values are unused."""
    _config_keys = ("channels", "size")

    def __init__(self, channels, size=4, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.size = int(channels), int(size)

    def build(self, input_shape):
        self.const = self.add_weight(name="const", shape=(self.size, self.size, self.channels),
                                     initializer=keras.initializers.RandomNormal(stddev=1.0))

    def call(self, inputs):
        const = ops.cast(self.const, self.compute_dtype)[None]
        return ops.broadcast_to(const, (ops.shape(inputs)[0], self.size, self.size,
                                        self.channels))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.channels)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Upsample2d(_Layer):
    """FIR upsampling by 2 of the skip images (no weights): upsample2d."""

    def call(self, x):
        return upsample2d(x)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, c)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BroadcastWs(_Layer):
    """(B, w_dim) -> (B, num_ws, w_dim), and the home of ``w_avg`` (w_dim,), non-trainable.

    w_avg starts at zeros (NVlabs' buffer); the train step tracks it
    (w_avg <- lerp(mean_batch(w), w_avg, 0.995)) and truncation reads it (``truncate``).
    """
    _config_keys = ("num_ws",)

    def __init__(self, num_ws, **kwargs):
        super().__init__(**kwargs)
        self.num_ws = int(num_ws)

    def build(self, input_shape):
        self.w_avg = self.add_weight(name="w_avg", shape=(int(input_shape[-1]),),
                                     initializer="zeros", trainable=False)

    def call(self, x):
        return ops.repeat(x[:, None, :], self.num_ws, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_ws, input_shape[-1])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OneHot(_Layer):
    """int class indices (B,) -> one-hot (B, num_classes) float32: NVlabs' c."""
    _config_keys = ("num_classes",)

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def call(self, c):
        return ops.one_hot(ops.cast(c, "int32"), self.num_classes, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MinibatchStd(_Layer):
    """NVlabs' MinibatchStdLayer, NHWC: appends ``num_channels`` feature maps.

    With N the batch, G = min(group_size, N) (N must be a multiple of G) and n = N / G,
    sample g n + j (g < G) belongs to group j (a strided split, as NVlabs' reshape
    (G, n, ...)). The C channels are split into F = num_channels groups of c = C / F. Per
    group j and channel group f: the population std over the G samples (sqrt(var + 1e-8))
    at every pixel and channel, averaged over the H x W x c values: one number, written as
    a constant map into channel C + f of every sample of the group. Computed in float32.
    """
    _config_keys = ("group_size", "num_channels")

    def __init__(self, group_size=4, num_channels=1, **kwargs):
        super().__init__(**kwargs)
        self.group_size = None if group_size is None else int(group_size)
        self.num_channels = int(num_channels)

    def call(self, x):
        dtype = x.dtype
        x32 = ops.cast(x, "float32")
        n_batch = tf.shape(x32)[0]
        h, w, ch = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
        g = n_batch if self.group_size is None else tf.minimum(self.group_size, n_batch)
        f = self.num_channels
        y = tf.reshape(x32, [g, -1, h, w, f, ch // f])             # (G, n, H, W, F, c)
        y = y - tf.reduce_mean(y, axis=0)                           # centre over the group
        y = tf.reduce_mean(tf.square(y), axis=0)                    # (n, H, W, F, c) variance
        y = tf.sqrt(y + 1e-8)                                       # std
        y = tf.reduce_mean(y, axis=[1, 2, 4])                       # (n, F)
        y = tf.tile(tf.reshape(y, [-1, 1, 1, f]), [g, h, w, 1])     # (N, H, W, F)
        return tf.concat([x, ops.cast(y, dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + self.num_channels,)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Projection(_Layer):
    """The conditional discriminator's output: sum(out * cmap, axis 1) / sqrt(cmap_dim)."""

    def call(self, inputs):
        out, cmap = inputs
        return ops.sum(out * cmap, axis=1, keepdims=True) / math.sqrt(int(out.shape[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)


def truncate(ws, w_avg, psi, cutoff=None):
    """The truncation trick on ws (B, num_ws, w_dim): w_avg + psi (w - w_avg), on the first
    ``cutoff`` ws only when cutoff is given (NVlabs' truncation_psi / truncation_cutoff)."""
    w_avg = ops.cast(w_avg, ws.dtype)
    truncated = w_avg + psi * (ws - w_avg)
    if cutoff is None:
        return truncated
    return ops.concatenate([truncated[:, :cutoff], ws[:, cutoff:]], axis=1)


# --------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------

def _mapping_body(z, c, w_dim, num_layers, num_classes, lr_mul, embed_features=None):
    """NVlabs' MappingNetwork maths before the broadcast, all in float32.

    x = normalise(z) (unit second moment, eps 1e-8); with classes, y = normalise(embed(
    one_hot(c))) (embed: a plain equalised FC c_dim -> w_dim, lr 1) and x = [x, y]; then
    num_layers x FC(w_dim, lrelu, lr_mul). Returns (B, w_dim).
    """
    parts = []
    if z is not None:
        parts.append(SecondMomentNorm(dtype="float32", name="normalize_z")(z))
    if num_classes:
        y = OneHot(num_classes, dtype="float32", name="one_hot")(c)
        y = FullyConnected(embed_features or w_dim, dtype="float32", name="embed")(y)
        parts.append(SecondMomentNorm(dtype="float32", name="normalize_c")(y))
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(
        dtype="float32", name="concat_z_c")(parts)        # (B, z_dim [+ w_dim])
    for i in range(num_layers):
        x = FullyConnected(w_dim, activation="lrelu", lr_mul=lr_mul, dtype="float32",
                           name=f"fc{i}")(x)              # (B, w_dim)
    return x


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MappingNetwork(keras.Model):
    """A functional model with one addition: ``w_avg``, the (w_dim,) non-trainable variable
    of its "broadcast" layer (also after loading from a .keras file)."""

    @property
    def w_avg(self):
        return self.get_layer("broadcast").w_avg


def build_mapping(z_dim=512, w_dim=512, num_ws=None, num_layers=8, num_classes=0,
                  lr_mul=0.01, name="mapping"):
    """NVlabs' mapping network: z (B, z_dim) [, c (B,) int32] -> ws (B, num_ws, w_dim).

    Always float32 (as NVlabs). A MappingNetwork: its ``w_avg`` property is the
    non-trainable (w_dim,) variable of its "broadcast" layer. num_ws=None (the discriminator's label
    mapping) gives (B, w_dim) with no broadcast and no w_avg; z_dim=0 means no z input.
    """
    z_dim = int(z_dim)
    w_dim = errors.check_positive_int("w_dim", w_dim)
    num_layers = errors.check_positive_int("num_layers", num_layers)
    num_classes = int(num_classes or 0)
    if z_dim < 0 or num_classes < 0 or (z_dim == 0 and num_classes == 0):
        raise UserError(f"the mapping network needs z_dim > 0 or classes, got z_dim "
                        f"{z_dim}, num_classes {num_classes}")
    inputs = []
    z = c = None
    if z_dim:
        z = keras.Input(shape=(z_dim,), name="z")
        inputs.append(z)
    if num_classes:
        c = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(c)
    x = _mapping_body(z, c, w_dim, num_layers, num_classes, lr_mul)
    if num_ws is None:
        return keras.Model(inputs[0] if len(inputs) == 1 else inputs, x, name=name)
    x = BroadcastWs(num_ws, dtype="float32", name="broadcast")(x)   # (B, num_ws, w_dim)
    return MappingNetwork(inputs[0] if len(inputs) == 1 else inputs, x, name=name)


def build_synthesis(resolution, w_dim=512, channel_base=32768, channel_max=512,
                    conv_clamp=None, img_channels=3, name="synthesis"):
    """NVlabs' SynthesisNetwork, 'skip' architecture: [ws, *noises] -> image (B, R, R, 3).

    ws (B, num_ws, w_dim); noises (B, r, r, 1) in ``noise_shapes(R)`` order. Block 4: the
    learned 4x4 constant -> conv1 -> ToRGB. Block r = 8 ... R: conv0 (up 2) -> conv1 ->
    ToRGB, the image so far FIR-upsampled and added. Layer i of the convolutions reads
    ws[:, i]; each ToRGB reads the w after its block's convolutions. The image is float32
    even under a mixed policy (NVlabs keeps it so).
    """
    resolution = check_resolution(resolution)
    table = channels(resolution, channel_base, channel_max)
    n_ws = num_ws(resolution)
    w_dim = errors.check_positive_int("w_dim", w_dim)
    ws = keras.Input(shape=(n_ws, w_dim), name="ws")
    noises = [keras.Input(shape=(r, r, 1), name=f"noise{i}_{r}")
              for i, (r, _) in enumerate(noise_shapes(resolution))]
    clamp = conv_clamp

    x = LearnedConst(table[4], name="b4_const")(ws)        # state size: (B, 4, 4, C4)
    x = SynthesisLayer(table[4], conv_clamp=clamp, name="b4_conv1")([x, ws[:, 0], noises[0]])
    img = ToRGB(img_channels, conv_clamp=clamp, name="b4_torgb")([x, ws[:, 1]])  # (B, 4, 4, 3)
    w_idx, noise_idx = 1, 1
    for k in range(3, int(math.log2(resolution)) + 1):
        r = 2 ** k
        x = SynthesisLayer(table[r], up=2, conv_clamp=clamp, name=f"b{r}_conv0")(
            [x, ws[:, w_idx], noises[noise_idx]])          # state size: (B, r, r, C_r)
        x = SynthesisLayer(table[r], conv_clamp=clamp, name=f"b{r}_conv1")(
            [x, ws[:, w_idx + 1], noises[noise_idx + 1]])
        w_idx, noise_idx = w_idx + 2, noise_idx + 2
        y = ToRGB(img_channels, conv_clamp=clamp, name=f"b{r}_torgb")([x, ws[:, w_idx]])
        img = Upsample2d(dtype="float32", name=f"b{r}_img_up")(img)   # (B, r, r, 3)
        img = keras.layers.Add(dtype="float32", name=f"b{r}_img_add")([img, y])
    return keras.Model([ws] + noises, img, name=name)


def build_generator(resolution, z_dim=512, w_dim=512, mapping_layers=8, channel_base=32768,
                    channel_max=512, num_classes=0, conv_clamp=None, mapping_lr_mul=0.01,
                    name="stylegan2_generator"):
    """The StyleGAN2 generator: inputs [z, *noises, (c)] -> image (B, R, R, 3) float32.

    The composition of the nested models ``get_layer("mapping")`` (z [, c] -> ws) and
    ``get_layer("synthesis")`` ([ws, *noises] -> image). num_classes > 0 adds the int32
    label as the last input (the project's convention) and NVlabs' c embedding.
    """
    resolution = check_resolution(resolution)
    z_dim = errors.check_positive_int("z_dim", z_dim)
    num_classes = int(num_classes or 0)
    mapping = build_mapping(z_dim, w_dim, num_ws(resolution), mapping_layers, num_classes,
                            mapping_lr_mul)
    synthesis = build_synthesis(resolution, w_dim, channel_base, channel_max, conv_clamp)
    z = keras.Input(shape=(z_dim,), name="z")
    noises = [keras.Input(shape=(r, r, 1), name=f"noise{i}_{r}")
              for i, (r, _) in enumerate(noise_shapes(resolution))]
    inputs = [z] + noises
    if num_classes:
        c = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(c)
        ws = mapping([z, c])                               # (B, num_ws, w_dim)
    else:
        ws = mapping(z)
    img = synthesis([ws] + noises)                         # (B, R, R, 3)
    return keras.Model(inputs, img, name=name)


def get_mapping(generator):
    """The nested mapping network (z [, c] -> ws) of a generator from ``build_generator``."""
    return generator.get_layer("mapping")


def get_synthesis(generator):
    """The nested synthesis network ([ws, *noises] -> image) of a generator."""
    return generator.get_layer("synthesis")


def get_w_avg(model):
    """The w_avg variable (w_dim,) of a mapping network or of a generator holding one.

    (The same as ``get_mapping(generator).w_avg``.)
    """
    if any(layer.name == "mapping" for layer in model.layers):
        model = model.get_layer("mapping")
    return model.get_layer("broadcast").w_avg


# --------------------------------------------------------------------------------------
# Discriminator
# --------------------------------------------------------------------------------------

def build_discriminator(resolution, channel_base=32768, channel_max=512, mbstd_group=4,
                        mbstd_channels=1, num_classes=0, architecture="resnet", cmap_dim=None,
                        conv_clamp=None, mapping_layers=8, img_channels=3,
                        name="stylegan2_discriminator"):
    """NVlabs' Discriminator: image (B, R, R, 3) [, c (B,) int32] -> raw logits (B, 1).

    'resnet' (default): FromRGB (1x1, lrelu) at R, then per block r = R ... 8:
    skip = 1x1 FIR-down conv (no bias, linear) x sqrt(0.5); x = conv0 3x3 -> conv1 3x3
    FIR-down x sqrt(0.5); x = skip + x; channels table[r] -> table[r // 2]. 'orig': the same
    without the skip branch and its gains. Epilogue at 4x4 (float32, as NVlabs): minibatch
    std (group mbstd_group, mbstd_channels maps) -> conv 3x3 (lrelu) -> flatten -> fc (lrelu)
    -> out fc (1, or cmap_dim when conditional). Conditional: cmap = NVlabs' mapping of c
    (embed, normalise, ``mapping_layers`` x FC lr 0.01; cmap_dim defaults to table[4]) and
    the logit is sum(out * cmap) / sqrt(cmap_dim).
    """
    resolution = check_resolution(resolution)
    table = channels(resolution, channel_base, channel_max)
    if architecture not in ("resnet", "orig"):
        raise UserError(f"discriminator architecture must be 'resnet' or 'orig', got "
                        f"{architecture!r}")
    num_classes = int(num_classes or 0)
    clamp = conv_clamp
    image = keras.Input(shape=(resolution, resolution, img_channels), name="image")
    x = Conv2dLayer(table[resolution], 1, activation="lrelu", conv_clamp=clamp,
                    name=f"b{resolution}_fromrgb")(image)   # state size: (B, R, R, C_R)
    r = resolution
    while r > 4:
        half = math.sqrt(0.5) if architecture == "resnet" else 1.0
        skip = None
        if architecture == "resnet":
            skip = Conv2dLayer(table[r // 2], 1, bias=False, down=2, gain=half,
                               name=f"b{r}_skip")(x)        # (B, r/2, r/2, C_{r/2})
        x = Conv2dLayer(table[r], 3, activation="lrelu", conv_clamp=clamp,
                        name=f"b{r}_conv0")(x)              # (B, r, r, C_r)
        x = Conv2dLayer(table[r // 2], 3, activation="lrelu", down=2, conv_clamp=clamp,
                        gain=half, name=f"b{r}_conv1")(x)   # (B, r/2, r/2, C_{r/2})
        if skip is not None:
            x = keras.layers.Add(name=f"b{r}_add")([skip, x])
        r //= 2

    # Epilogue at 4x4, in float32 as NVlabs' DiscriminatorEpilogue.
    c4 = table[4]
    if mbstd_channels > 0:
        x = MinibatchStd(mbstd_group, mbstd_channels, dtype="float32", name="b4_mbstd")(x)
    x = Conv2dLayer(c4, 3, activation="lrelu", conv_clamp=clamp, dtype="float32",
                    name="b4_conv")(x)                      # (B, 4, 4, C4)
    x = keras.layers.Flatten(dtype="float32", name="b4_flatten")(x)   # (B, 16 C4), HWC order
    x = FullyConnected(c4, activation="lrelu", dtype="float32", name="b4_fc")(x)
    if not num_classes:
        logit = FullyConnected(1, dtype="float32", name="b4_out")(x)  # (B, 1)
        return keras.Model(image, logit, name=name)
    cmap_dim = c4 if cmap_dim is None else errors.check_positive_int("cmap_dim", cmap_dim)
    out = FullyConnected(cmap_dim, dtype="float32", name="b4_out")(x)  # (B, cmap_dim)
    c = keras.Input(shape=(), dtype="int32", name="label")
    mapping = build_mapping(z_dim=0, w_dim=cmap_dim, num_ws=None, num_layers=mapping_layers,
                            num_classes=num_classes, name="mapping")
    cmap = mapping(c)                                       # (B, cmap_dim)
    logit = Projection(dtype="float32", name="projection")([out, cmap])
    return keras.Model([image, c], logit, name=name)


# --------------------------------------------------------------------------------------
# NVlabs' configurations (the network part of train.py's cfg_specs)
# --------------------------------------------------------------------------------------

CONFIGS = ("auto", "stylegan2", "paper256", "cifar")


def network_config(config, resolution, num_gpus=1):
    """Network keyword arguments of NVlabs' configuration ``config`` at ``resolution``.

    Returns dict(channel_base, channel_max, mapping_layers, mbstd_group, architecture,
    conv_clamp): fmaps x 32768 (auto: fmaps 1 if R >= 512 else 0.5), map layers, the mbstd
    group (auto: min(mb // gpus, 4) with mb = max(min(gpus min(4096 // R, 32), 64), gpus)),
    D 'orig' for cifar, conv_clamp 256 (NVlabs' train.py sets it for every configuration).
    """
    resolution = check_resolution(resolution)
    if config not in CONFIGS:
        raise UserError(f"--config must be one of {', '.join(CONFIGS)}, got {config!r}")
    if config == "auto":
        mb = max(min(num_gpus * min(4096 // resolution, 32), 64), num_gpus)
        fmaps, mapping_layers, mbstd = (1 if resolution >= 512 else 0.5), 2, min(mb // num_gpus, 4)
    else:
        fmaps, mapping_layers, mbstd = {"stylegan2": (1, 8, 4), "paper256": (0.5, 8, 8),
                                        "cifar": (1, 2, 32)}[config]
    return dict(channel_base=int(fmaps * 32768), channel_max=512,
                mapping_layers=mapping_layers, mbstd_group=mbstd,
                architecture="orig" if config == "cifar" else "resnet", conv_clamp=256)


def build_pair(resolution, config="auto", num_classes=0, channel_base=None, **overrides):
    """(generator, discriminator) at NVlabs' configuration; channel_base overrides fmaps."""
    kw = network_config(config, resolution)
    if channel_base is not None:
        kw["channel_base"] = channel_base
    kw.update(overrides)
    g = build_generator(resolution, mapping_layers=kw["mapping_layers"],
                        channel_base=kw["channel_base"], channel_max=kw["channel_max"],
                        num_classes=num_classes, conv_clamp=kw["conv_clamp"])
    d = build_discriminator(resolution, channel_base=kw["channel_base"],
                            channel_max=kw["channel_max"], mbstd_group=kw["mbstd_group"],
                            num_classes=num_classes, architecture=kw["architecture"],
                            conv_clamp=kw["conv_clamp"])
    return g, d


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

def _summaries(pair, suffix=""):
    """G's line, its mapping network's (parameters and ws shape), D's line."""
    generator, discriminator = pair
    mapping = get_mapping(generator)
    out = tuple(int(d) for d in mapping.outputs[0].shape[1:])
    return [summary_line(generator, f"stylegan2 generator{suffix}"),
            f"stylegan2 mapping{suffix.rstrip(',')}: {count_params(mapping):,} params, "
            f"output {out}",
            summary_line(discriminator, f"stylegan2 discriminator{suffix}")]


def main(argv=None):
    return summary_cli(
        argv, "StyleGAN2 (Karras et al. 2020; NVlabs stylegan2-ada-pytorch) generator and "
              "discriminator.",
        "a power of two, 8 to 1024", "--channel-base", int, None,
        "override the configuration's channel_base (fmaps x 32768)",
        lambda r, channel_base, k, config: build_pair(r, config, k, channel_base=channel_base),
        options={"--config": dict(default="auto", choices=CONFIGS,
                                  help="NVlabs' configuration (default auto): channel_base, "
                                       "mapping layers, mbstd group, D architecture")},
        lines=_summaries, shows="G, its mapping network and D")


if __name__ == "__main__":
    run_cli(main)
