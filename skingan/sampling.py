"""Sampling from a trained generator: load it (from a run's export, a kept checkpoint or a
bare .keras file), draw each image's inputs from its own seed, and yield uint8 batches.

    bundle = load_generator("sl-stylegan-df-256px")          # a GeneratorBundle
    for seeds, images in generate_images(bundle, n=500, seed=0, truncation=0.7):
        ...                                                 # images: uint8 (b, R, R, 3)

Image i is drawn from seed + i, so the same seed always gives the same image, whatever n or
batch_size. generate.py, evaluate.py --run and classify.py's run sources all sample here.
"""
import dataclasses
import os
import sys

from skingan.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(ROOT, "SavedModels")  # where train.py writes run folders by default

W_AVG_SAMPLES = 10000  # latents averaged for the truncation trick's centre w_avg


@dataclasses.dataclass
class GeneratorBundle:
    model: object            # keras.Model: the family's inputs -> image
    family: object           # skingan.families.Family
    value_range: tuple       # pixel range of the model's output
    resolution: int
    latent_dim: int
    source: str              # the .keras file or checkpoint it came from
    run_dir: str = None      # the run folder, when it came from one
    classes: list = None     # a conditional generator's class names, in label order
    _w_avg: dict = dataclasses.field(default_factory=dict)
    _forward: object = None

    @property
    def uses_noise(self):
        return self.family.noise_input

    def check_class_given(self, given):
        """UserError when a class is missing for a conditional generator, or given for an
        unconditional one."""
        if self.classes is not None and not given:
            raise UserError("a class-conditional generator needs --class: one of "
                            f"{', '.join(self.classes)}, or all")
        if self.classes is None and given:
            raise UserError("--class needs a class-conditional run (train.py --conditional); "
                            "this generator was trained on one class")

    def class_index(self, name):
        """The label of class `name` (case-insensitive), or UserError naming the classes."""
        found = [k for k, c in enumerate(self.classes) if c.lower() == name.strip().lower()]
        if not found:
            raise UserError(f"class '{name}' is not one of this run's classes: "
                            f"{', '.join(self.classes)} (or 'all')")
        return found[0]

    def w_avg(self, label=None):
        """The centre the truncation trick pulls towards. StyleGAN2: the w_avg its mapping
        network tracked during training (NVlabs' G.mapping.w_avg, one for every class, as
        theirs). SL-StyleGAN: the mean style vector over W_AVG_SAMPLES latents, computed
        once; for a conditional generator, the mean over class `label`'s styles."""
        if self.family.tracks_w_avg:
            from skingan.stylegan2_step import find_w_avg
            return find_w_avg(self.model.get_layer("mapping")).numpy()
        if label not in self._w_avg:
            import numpy as np
            from SL_StyleGAN import get_mapping
            from skingan.conditional import with_labels
            z = np.random.RandomState(0).standard_normal(
                (W_AVG_SAMPLES, self.latent_dim)).astype("float32")
            labels = None if label is None else np.full(W_AVG_SAMPLES, label, np.int32)
            self._w_avg[label] = np.mean(get_mapping(self.model).predict(
                with_labels(z, labels), batch_size=1000, verbose=0), axis=0)
        return self._w_avg[label]

    def forward(self):
        """The model's compiled forward pass, traced once for any batch size and kept."""
        if self._forward is None:
            from skingan.writer import compiled_forward
            self._forward = compiled_forward(self.model)
        return self._forward


def find_run_dir(spec, models_dir):
    """A run name, a run folder, or a run's Results folder -> its folder in models_dir."""
    from skingan.runs import has_config
    for candidate in (spec, os.path.join(models_dir, spec),
                      os.path.join(models_dir, os.path.basename(os.path.normpath(spec)))):
        if has_config(candidate):
            return candidate
    runs = sorted(d for d in os.listdir(models_dir)
                  if has_config(os.path.join(models_dir, d))) \
        if os.path.isdir(models_dir) else []
    known = f"; runs in {models_dir}: {', '.join(runs)}" if runs else \
        f"; {models_dir} holds no runs yet"
    raise UserError(f"no run '{spec}' (runs live in {models_dir}){known}")


def _load_keras(path):
    from skingan.exports import load_export
    if not os.path.isfile(path):
        raise UserError(f"generator file not found: {path}")
    return load_export(path)


def _load_run_export(run_dir, settings):
    """The run's generator.keras. When it is damaged or missing but a checkpoint of the run
    restores, it is exported again from the newest such checkpoint first (one line says
    so); when none restores, UserError saying what is wrong."""
    from skingan import exports
    path = os.path.join(run_dir, exports.EXPORT)
    if os.path.isfile(path):
        try:
            return exports.load_export(path)
        except exports.DamagedExport as err:
            problem = str(err)
    else:
        problem = f"generator {path} is missing"
    step = exports.export_again(run_dir, settings, log=_note)
    if step is None:
        if not os.path.isfile(path):
            raise UserError(f"run '{os.path.basename(run_dir)}' has no exported generator "
                            "yet: it has not reached its first checkpoint (train it further "
                            "with train.py)")
        raise UserError(f"{problem}; the run has no checkpoint that restores to export it "
                        "again from (python train.py --check-run "
                        f"{os.path.basename(run_dir)} lists what is intact)")
    _note(f"{problem}; exported it again from the run's checkpoint at step {step}")
    return exports.load_export(path)


def _note(line):
    print(line, file=sys.stderr, flush=True)


def _from_checkpoint(run_dir, settings, step):
    """The generator (the EMA one with --ema) as it was at kept checkpoint `step`."""
    from skingan.checkpoints import RunCheckpoint, kept_checkpoints, try_restore
    from skingan.components import build_for_reading
    kept = kept_checkpoints(os.path.join(run_dir, "checkpoints"))
    if step not in kept:
        raise UserError(f"run {run_dir} has no checkpoint at step {step}; kept: "
                        f"{', '.join(map(str, kept)) or 'none'} (train with "
                        "--keep-checkpoints all to keep every one)")
    parts = build_for_reading(dict(settings, mixed_precision=False))
    problem = try_restore(RunCheckpoint(parts), kept[step])
    if problem:
        raise UserError(f"cannot restore checkpoint {kept[step]}: {problem}")
    return parts.shown, kept[step]


def load_generator(spec, models_dir=MODELS_DIR, step=None, best=False):
    """A GeneratorBundle from a run (name, run folder or Results folder; its exported
    generator.keras, the checkpoint at `step`, or with `best` the checkpoint of the step
    the run scored best, loaded exactly as `step` would load it) or a bare .keras file."""
    from skingan.config import LEGACY
    from skingan.families import get_family
    from skingan.runs import has_config, read_config
    is_file = spec.endswith(".keras")
    if best and step is not None:
        raise UserError("give --best or --step, not both")
    if is_file and (step is not None or best):
        raise UserError(f"--{'best' if best else 'step'} needs a run, not a .keras file")
    # A run's own generator.keras is loaded as the run's export: when it is damaged, the
    # run's checkpoints can export it again.
    own_export = is_file and os.path.basename(spec) == "generator.keras" and \
        has_config(os.path.dirname(os.path.abspath(spec)))
    if is_file and not own_export:
        run_dir = os.path.dirname(os.path.abspath(spec))
        doc = read_config(run_dir) if has_config(run_dir) else None
        model, source = _load_keras(spec), spec
    else:
        run_dir = os.path.dirname(os.path.abspath(spec)) if own_export \
            else find_run_dir(spec, models_dir)
        doc = read_config(run_dir)
        settings = dict(LEGACY, **doc["settings"])
        if best:
            from skingan.checkpoints import best_kept_step
            step = best_kept_step(os.path.join(run_dir, "checkpoints"))
            _note(f"generating from the best checkpoint: step {step}")
        if step is not None:
            model, source = _from_checkpoint(run_dir, settings, step)
        else:
            source = os.path.join(run_dir, "generator.keras")
            model = _load_run_export(run_dir, settings)
    conditional = any(t.dtype.startswith("int") for t in model.inputs)  # the label input
    classes = None
    if doc is not None:
        family = get_family(doc["settings"]["model"])
        if conditional:
            classes = list(doc["settings"]["classes"])
    else:  # a bare export: SL-StyleGAN's generator has one noise image, StyleGAN2's several
        noise = sum(len(t.shape) == 4 for t in model.inputs)
        family = get_family("stylegan2" if noise > 1 else "sl-stylegan" if noise else "dcgan")
        run_dir = None
        if conditional:
            raise UserError(f"{spec} is a class-conditional generator: generate from its run "
                            "folder (its config.json names the classes)")
    return GeneratorBundle(model=model, family=family, value_range=family.value_range,
                           resolution=int(model.outputs[0].shape[1]),
                           latent_dim=int(model.inputs[0].shape[-1]), source=source,
                           run_dir=run_dir, classes=classes)


def latent_inputs(bundle, seeds, label=None):
    """Each image's generator inputs drawn from its own seed, stacked over `seeds`; a
    conditional generator's get class `label` as their last input. Image i of a class
    has the latents of image i of every other class: only the class differs."""
    import numpy as np

    from skingan.conditional import with_labels
    from skingan.families import numpy_normal
    per_seed = [bundle.family.draw_inputs(numpy_normal(s), 1, bundle.latent_dim,
                                          bundle.resolution) for s in seeds]
    if isinstance(per_seed[0], list):
        inputs = [np.concatenate(parts) for parts in zip(*per_seed)]
    else:
        inputs = np.concatenate(per_seed)
    return with_labels(inputs, None if label is None
                       else np.full(len(seeds), label, np.int32))


def generate_images(bundle, n, seed=0, batch_size=64, truncation=None, normalize="none",
                    label=None):
    """Yield (seeds, uint8 images (b, R, R, 3)) batches for seeds seed .. seed + n - 1.

    truncation psi (SL-StyleGAN, StyleGAN2): w' = w_avg + psi * (w - w_avg) pulls styles
    towards the average (every layer's w, as NVlabs' truncation_psi without a cutoff),
    trading diversity for fidelity; psi = 1 is no truncation. For a conditional generator,
    images of class `label` (an index), truncated towards that class's w_avg (StyleGAN2:
    the one tracked w_avg, as NVlabs).
    normalize: 'none' maps the model's pixel range linearly to 0-255; 'minmax' stretches
    each image to its own full range, as both source projects export.
    """
    bundle.check_class_given(label is not None)
    from skingan.images import minmax_to_uint8, to_uint8
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    if truncation is not None and not bundle.family.style_based:
        raise UserError("--truncation needs a style-based generator (sl-stylegan or "
                        "stylegan2); "
                        "DCGAN has no mapping network")
    from skingan.writer import ahead
    if truncation is not None:
        mapping = bundle.model.get_layer("mapping")        # z [, c] -> w or ws
        synthesis = bundle.model.get_layer("synthesis")    # [w or ws, noise...] -> image
        w_avg = bundle.w_avg(label)
        k = len(bundle.family.noise_shapes(bundle.resolution))
    # one compiled forward pass for every batch (one trace); the next batch's inputs are
    # drawn in a background thread while this one computes
    forward = bundle.forward()
    batches = [list(range(start, min(start + batch_size, seed + n)))
               for start in range(seed, seed + n, batch_size)]
    for seeds, inputs in ahead(lambda seeds: (seeds, latent_inputs(bundle, seeds, label)),
                               batches):
        if truncation is not None:
            z, noise = inputs[0], list(inputs[1:1 + k])
            w = mapping(z if label is None else [z, inputs[-1]], training=False).numpy()
            out = synthesis([w_avg + truncation * (w - w_avg)] + noise, training=False)
        else:
            out = forward(*inputs) if isinstance(inputs, list) else forward(inputs)
        out = out.numpy()
        yield seeds, (minmax_to_uint8(out) if normalize == "minmax"
                      else to_uint8(out, bundle.value_range))
