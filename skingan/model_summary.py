"""One-line model summaries and an analytic forward-pass FLOPs counter.

Shared by ``SL_StyleGAN.py``, ``dcgan.py`` and ``StyleGAN2.py`` (their ``--summary`` CLI)
and usable on any functional Keras model:

    >>> from model_summary import count_flops, summary_line
    >>> summary_line(generator)
    'sl-stylegan generator 256px: 9,266,195 params, output (256, 256, 3), 12.3 GFLOPs/image'

FLOPs are computed from each layer's configuration and its symbolic input/output shapes,
walking nested models recursively; nothing is run. Convention: one multiply-accumulate is
2 FLOPs; only Conv2D, Conv2DTranspose and Dense (the layers that hold practically all the
work) are counted. Biases, activations, normalisation, pooling, upsampling and element-wise
adds are ignored, as is usual for published GFLOPs figures.
"""
import math

import keras

from skingan.errors import UserError

__all__ = ["count_flops", "count_params", "summary_line", "train_step_flops"]


def _shape(tensor):
    """Static shape of a symbolic tensor without the batch axis, as a tuple of ints."""
    return tuple(int(d) for d in tensor.shape[1:])


def _layer_flops(layer):
    """FLOPs per image of one (non-model) layer, 0 for layers that are not counted."""
    if hasattr(layer, "flops_per_image"):
        # A custom layer that counts its own work (StyleGAN2's modulated convolutions).
        return int(layer.flops_per_image())
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Every input pixel scatters a kh x kw x C_in -> C_out kernel into the output, so the
        # MACs depend on the *input* size: H_in * W_in * kh * kw * C_in * C_out.
        h_in, w_in, c_in = _shape(layer.input)
        kh, kw = layer.kernel_size
        return 2 * h_in * w_in * kh * kw * c_in * layer.filters
    if isinstance(layer, keras.layers.Conv2D):
        # Each output value is a dot product over kh x kw x (C_in / groups) inputs.
        h_out, w_out, c_out = _shape(layer.output)
        c_in = _shape(layer.input)[-1]
        kh, kw = layer.kernel_size
        return 2 * h_out * w_out * c_out * kh * kw * (c_in // layer.groups)
    if isinstance(layer, keras.layers.Dense):
        # Dense acts on the last axis; any leading (non-batch) axes multiply the work.
        in_shape = _shape(layer.input)
        positions = math.prod(in_shape[:-1])
        return 2 * positions * in_shape[-1] * layer.units
    return 0


def count_flops(model):
    """Forward-pass FLOPs for one image (multiply-add = 2 FLOPs), as an int.

    Counts Conv2D, Conv2DTranspose and Dense layers from their configs and the model's static
    shapes, descending into nested models. Each layer is assumed to be called once (true of
    every model in this project); a shared layer would be counted once.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_flops(layer)
        else:
            total += _layer_flops(layer)
    return total


def train_step_flops(family, generator, discriminator, r1_every=None):
    """FLOPs per image of one training iteration, as skingan/steps.py runs it; r1_every: the
    run's lazy-R1 interval (cfg["r1_every"]), needed for a family with R1.

    Returns [(what, FLOPs per image)], the parts summing to the total. F_G and F_D are the
    forward passes (count_flops). Convention: a backward pass that takes the gradients with
    respect to both the weights and the activations costs 2 x the forward (each convolution
    or matmul has two of the same size, one per gradient); one that needs only one of them
    costs 1 x: D inside G's update (nothing of D is updated there: activation gradients
    only) and R1's gradient of D with respect to its input image. R1's backward-of-backward
    (D's update differentiates that input gradient with respect to D's weights) is counted
    2 x the input-gradient pass it differentiates: for each of its convolutions one of the
    same size for the gradient with respect to its incoming gradient and one for the weights;
    nothing flows back into the forward pass (LeakyReLU's derivative is piecewise constant).
    So the reals with R1 cost 1 + 2 (forward, backward for the least-squares term) + 1 + 2
    (R1) = 6 F_D. Small terms are left out: the first layer's input gradient where the image
    needs none, and the element-wise work count_flops ignores.

    SL-StyleGAN (one D update, then one G update with fresh z and noise):
        G forward, fakes for D's update                           1 F_G
        G forward + backward, G's update                          3 F_G
        D forward + backward on reals (least squares)             3 F_D
        R1 on reals: input gradient + its backward                3 F_D / r1_every
        D forward + backward on the fakes, D's update             3 F_D
        D forward + input gradient, G's update                    2 F_D
    = 4 F_G + (8 + 3 / r1_every) F_D; with lazy R1 (r1_every K) the R1 part runs on one
    iteration in K and is averaged over them.
    DCGAN (one batch of fakes for both updates):
        G forward + backward (G's update)                         3 F_G
        D forward + backward on reals, on fakes (D's update)      3 F_D + 3 F_D
        D forward + input gradient on the fakes, G's update       2 F_D
    = 3 F_G + 8 F_D.
    """
    f_g, f_d = count_flops(generator), count_flops(discriminator)
    if family == "sl-stylegan":
        if r1_every is None:
            raise ValueError("sl-stylegan's accounting needs the run's r1_every")
        return [("G forward, fakes for D's update (1 F_G)", f_g),
                ("G forward + backward, G's update (3 F_G)", 3 * f_g),
                ("D forward + backward on reals (3 F_D)", 3 * f_d),
                (f"R1: D's input gradient + its backward (3 F_D / {r1_every})",
                 3 * f_d / r1_every),
                ("D forward + backward on fakes, D's update (3 F_D)", 3 * f_d),
                ("D forward + input gradient, G's update (2 F_D)", 2 * f_d)]
    if family == "dcgan":
        return [("G forward + backward, G's update (3 F_G)", 3 * f_g),
                ("D forward + backward on reals (3 F_D)", 3 * f_d),
                ("D forward + backward on fakes, D's update (3 F_D)", 3 * f_d),
                ("D forward + input gradient, G's update (2 F_D)", 2 * f_d)]
    raise ValueError(f"no FLOPs accounting for family {family!r}")


def count_params(model):
    """Number of trainable parameters (what the papers report)."""
    return int(sum(math.prod(v.shape) for v in model.trainable_weights))


def _format_flops(flops):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.1f} {unit}FLOPs/image"
    return f"{flops} FLOPs/image"


def summary_line(model, label=None):
    """One line: label, resolution, trainable params, output shape, FLOPs per image.

    ``label`` defaults to the model's name with underscores as spaces (the builders name
    their models ``sl-stylegan_generator``, ``dcgan_discriminator`` ...). The resolution is
    the spatial size of the image the model produces (generators) or reads (discriminators).
    """
    if label is None:
        label = model.name.replace("_", " ")
    out_shape = _shape(model.outputs[0])
    if len(out_shape) == 3:
        resolution = out_shape[0]
    else:
        # A discriminator: take the image input (the first input with 3 spatial+channel axes).
        resolution = next(_shape(t)[0] for t in model.inputs if len(_shape(t)) == 3)
    return (
        f"{label} {resolution}px: {count_params(model):,} params, "
        f"output {out_shape}, {_format_flops(count_flops(model))}"
    )


def pair_lines(models, suffix=""):
    """summary_line for each model, labelled by its name (+ suffix: ', conditional on K
    classes,')."""
    return [summary_line(m, m.name.replace("_", " ") + suffix) for m in models]


def summary_cli(argv, description, resolution_help, width_flag, width_type, width_default,
                width_help, build_pair, *, options=None, lines=pair_lines, shows="G and D"):
    """The ``--summary RESOLUTION`` command line the model files share.

    build_pair(resolution, width, num_classes, **options' values) -> (generator,
    discriminator); ``width_flag`` is the family's channel-width option
    (``--channel-scale``, ``--base-filters``, ``--channel-base``). options: more flags,
    {flag: argparse keywords}, passed to build_pair by their dest (StyleGAN2's --config).
    lines(pair, suffix) -> the printed lines (default: one summary_line per network);
    shows: what they describe, for --help. With ``--classes K`` the class-conditional pair
    is summarised after the unconditional one.
    """
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--summary", type=int, metavar="RESOLUTION",
                        help=f"print one summary line each for {shows} at this resolution "
                             f"({resolution_help}) and exit")
    parser.add_argument(width_flag, dest="width", type=width_type, default=width_default,
                        metavar=width_flag.lstrip("-").replace("-", "_").upper(),
                        help=width_help)
    extra = [parser.add_argument(flag, **kw).dest for flag, kw in (options or {}).items()]
    parser.add_argument("--classes", type=int, default=0, metavar="K",
                        help="also summarise the class-conditional networks for K classes")
    args = parser.parse_args(argv)
    if args.summary is None:
        parser.print_help()
        return 0
    if args.classes < 0:
        raise UserError(f"--classes must be 0 or more, got {args.classes}")
    kw = {dest: getattr(args, dest) for dest in extra}
    for line in lines(build_pair(args.summary, args.width, 0, **kw)):
        print(line)
    if args.classes:
        pair = build_pair(args.summary, args.width, args.classes, **kw)
        for line in lines(pair, f", conditional on {args.classes} classes,"):
            print(line)
    return 0
