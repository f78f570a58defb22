"""Synthesise images in bulk from a trained run or an exported generator.

    python generate.py --run sl-stylegan-df-256px --n 500 --out Results/df_synthetic
    python generate.py --run SavedModels/dcgan-akiec-64px/generator.keras --n 64 --grid
    python generate.py --run sl-stylegan-df-256px --n 500 --truncation 0.7

Image i is drawn from its own seed (--seed + i) and written as seed0042.png, so the same
seed always gives the same file, whatever --n or --batch-size.
"""
import argparse
import dataclasses
import json
import os
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from skingan.errors import UserError, run_cli  # noqa: E402

W_AVG_SAMPLES = 10000  # latents averaged for the truncation trick's centre w_avg


@dataclasses.dataclass
class GeneratorBundle:
    model: object            # keras.Model: z -> image, or [z, noise] -> image
    value_range: tuple       # pixel range of the model's output
    uses_noise: bool         # SL-StyleGAN's extra noise-image input
    resolution: int
    latent_dim: int
    source: str              # the .keras file it came from
    _w_avg: object = None

    def w_avg(self):
        """Mean style vector over W_AVG_SAMPLES latents (SL-StyleGAN), computed once."""
        if self._w_avg is None:
            import numpy as np
            from SL_StyleGAN import get_mapping
            z = np.random.RandomState(0).standard_normal(
                (W_AVG_SAMPLES, self.latent_dim)).astype("float32")
            self._w_avg = np.mean(get_mapping(self.model).predict(z, batch_size=1000,
                                                                   verbose=0), axis=0)
        return self._w_avg


def resolve_model_path(spec, models_dir):
    """A run name, a run folder or a .keras file -> the .keras file to load."""
    if spec.endswith(".keras"):
        if not os.path.isfile(spec):
            raise UserError(f"generator file not found: {spec}")
        return spec
    run_dir = spec if os.path.isdir(spec) else os.path.join(models_dir, spec)
    if not os.path.isdir(run_dir):
        runs = sorted(d for d in os.listdir(models_dir)
                      if os.path.isfile(os.path.join(models_dir, d, "config.json"))) \
            if os.path.isdir(models_dir) else []
        known = f"; runs in {models_dir}: {', '.join(runs)}" if runs else \
            f"; {models_dir} holds no runs yet"
        raise UserError(f"no run '{spec}'{known}")
    path = os.path.join(run_dir, "generator.keras")
    if not os.path.isfile(path):
        raise UserError(f"run '{spec}' has no saved generator yet: it has not reached its "
                        "first checkpoint (train it further with train.py)")
    return path


def load_generator(spec, models_dir=os.path.join(ROOT, "SavedModels")):
    """Load a generator from a run name, run folder or .keras path into a GeneratorBundle."""
    import keras

    import dcgan  # also registers the custom layers for deserialisation
    import SL_StyleGAN

    path = resolve_model_path(spec, models_dir)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # a truncated or foreign file: say so in one line
        raise UserError(f"cannot load generator {path}: {str(err).splitlines()[0]}") from None
    uses_noise = len(model.inputs) == 2
    config_path = os.path.join(os.path.dirname(path), "config.json")
    if os.path.isfile(config_path):
        with open(config_path) as f:
            value_range = tuple(json.load(f)["value_range"])
    else:  # a bare export: SL-StyleGAN (sigmoid) has the noise input, DCGAN (tanh) not
        value_range = SL_StyleGAN.VALUE_RANGE if uses_noise else dcgan.VALUE_RANGE
    return GeneratorBundle(model=model, value_range=value_range, uses_noise=uses_noise,
                           resolution=int(model.outputs[0].shape[1]),
                           latent_dim=int(model.inputs[0].shape[-1]), source=path)


def latent_inputs(bundle, seeds):
    """Each image's z (and noise image) drawn from its own seed: (b, latent), (b, R, R, 1)."""
    import numpy as np
    zs, noises = [], []
    for seed in seeds:
        draw = np.random.RandomState(seed)
        zs.append(draw.standard_normal(bundle.latent_dim))
        if bundle.uses_noise:
            noises.append(draw.standard_normal((bundle.resolution, bundle.resolution, 1)))
    z = np.asarray(zs, "float32")
    return z, (np.asarray(noises, "float32") if bundle.uses_noise else None)


def generate_images(bundle, n, seed=0, batch_size=64, truncation=None):
    """Yield (seeds, uint8 images (b, R, R, 3)) batches for seeds seed .. seed + n - 1.

    truncation psi (SL-StyleGAN): w' = w_avg + psi * (w - w_avg) pulls styles towards the
    average, trading diversity for fidelity; psi = 1 is no truncation.
    """
    from skingan.images import to_uint8
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    if truncation is not None and not bundle.uses_noise:
        raise UserError("--truncation needs a style-based generator (sl-stylegan); "
                        "DCGAN has no mapping network")
    import tensorflow as tf
    if truncation is not None:
        from SL_StyleGAN import get_mapping, get_synthesis
        mapping, synthesis = get_mapping(bundle.model), get_synthesis(bundle.model)
        w_avg = bundle.w_avg()
    # one compiled forward pass per batch shape, instead of an eager call per batch
    forward = tf.function(lambda inputs: bundle.model(inputs, training=False))
    for start in range(seed, seed + n, batch_size):
        seeds = list(range(start, min(start + batch_size, seed + n)))
        z, noise = latent_inputs(bundle, seeds)
        if truncation is not None:
            w = mapping(z, training=False).numpy()
            w = w_avg + truncation * (w - w_avg)
            out = synthesis([w, noise], training=False)
        else:
            out = forward([z, noise] if bundle.uses_noise else z)
        yield seeds, to_uint8(out.numpy(), bundle.value_range)


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Generate PNG images from a trained generator.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", required=True,
                   help="run name in --models-dir, a run folder, or a .keras generator file")
    p.add_argument("--n", type=int, default=100, help="number of images")
    p.add_argument("--out", help="output folder (default: Results/<run>/generated)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first image")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--truncation", type=float,
                   help="truncation psi for sl-stylegan (e.g. 0.7); off by default")
    p.add_argument("--grid", action="store_true",
                   help="also write grid.png, an overview of the first (up to 64) images")
    p.add_argument("--models-dir", default=os.path.join(ROOT, "SavedModels"),
                   help="where run folders are")
    args = p.parse_args(argv)
    if args.n <= 0:
        raise UserError(f"--n must be positive, got {args.n}")
    if args.batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {args.batch_size}")

    bundle = load_generator(args.run, args.models_dir)
    out = args.out or os.path.join(
        ROOT, "Results", os.path.basename(os.path.dirname(bundle.source)), "generated")
    os.makedirs(out, exist_ok=True)

    import numpy as np

    from skingan.images import make_grid, save_png
    width = max(4, len(str(args.seed + args.n - 1)))
    done, first, started = 0, [], time.perf_counter()
    for seeds, batch in generate_images(bundle, args.n, args.seed, args.batch_size,
                                        args.truncation):
        for s, img in zip(seeds, batch):
            save_png(img, os.path.join(out, f"seed{s:0{width}d}.png"))
        if len(first) < 64:
            first.extend(batch[:64 - len(first)])
        done += len(seeds)
        rate = done / (time.perf_counter() - started)
        print(f"\rgenerated {done}/{args.n} ({rate:.1f} img/s)", end="", flush=True)
    print()
    if args.grid:
        cols = int(np.ceil(np.sqrt(len(first))))
        rows = int(np.ceil(len(first) / cols))
        tiles = np.zeros((rows * cols,) + first[0].shape, np.uint8) + 255
        tiles[:len(first)] = first
        save_png(make_grid(tiles, rows, cols), os.path.join(out, "grid.png"))
    print(f"wrote {args.n} images to {out}" + (" and grid.png" if args.grid else ""))


if __name__ == "__main__":
    run_cli(main)
