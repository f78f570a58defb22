"""The built-in demo: a multi-class synthetic lesion set (skingan.demo_data), a short GAN
trained on the rare class's training fold, then the ordinary experiment.

``train_gan`` is the one place this package calls train.py. Until train.py learns to exclude
a split's validation and test images itself (``--exclude split.csv``), the demo copies the
rare class's training-fold images into their own folder, trains on that folder, and writes
the run's ``trained_images.txt`` itself.
"""
import dataclasses
import hashlib
import os
import shutil
import tempfile

import data_loader
from skingan import demo_data
from skingan.benefit import sources, split as split_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A DCGAN at 32 px, half the paper's channels: about 30 s on two CPU cores.
DEMO_GAN = dict(model="dcgan", resolution=32, steps=600, batch_size=32, channel_scale=0.5)


def train_gan(image_folder, run, models_dir, results_dir, gan=None, log=print):
    """Train (or finish) GAN run ``run`` on every image in ``image_folder`` with the settings
    ``gan`` (train.py's config keys, default DEMO_GAN), through train.py's own functions; make
    sure its run folder lists the images it trained on. Returns the run folder."""
    import train
    gan = dict(gan or DEMO_GAN)
    explicit = dict(gan, data=image_folder, run=run, sample_every=gan["steps"],
                    checkpoint_every=gan["steps"], log_every=max(1, gan["steps"] // 5))
    run, cfg = train.resolve_config(explicit, models_dir)
    train.train(cfg, run, models_dir, results_dir, log=log, handle_signals=False)
    run_dir = os.path.join(models_dir, run)
    listing = os.path.join(run_dir, sources.TRAINED_IMAGES)
    if not os.path.exists(listing):
        stems = sorted(os.path.splitext(os.path.basename(p))[0]
                       for p in data_loader._walk_images(image_folder))
        with open(listing, "w") as f:
            f.writelines(stem + "\n" for stem in stems)
    return run_dir


def _copy_images(records, folder):
    """Copy the records' files into ``folder`` (written whole under a temporary name)."""
    if os.path.isdir(folder):
        return folder
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(folder) + ".tmp-", dir=parent)
    for r in records:
        shutil.copy(r.path, tmp)
    os.rename(tmp, folder)
    return folder


def prepare_demo(settings, datasets_dir=None, gan=None, counts=None, log=print):
    """Fill ``settings`` (experiment.Settings) for the demo: write the demo set, split it,
    train a GAN on the rare class's training fold and list that run as its synthetic source.
    The GAN's run name carries a hash of the images it trains on, so a new split gets a new
    GAN and a rerun reuses the finished one."""
    datasets_dir = datasets_dir or os.path.join(ROOT, "Datasets")
    data = demo_data.ensure_multiclass_demo_data(os.path.join(datasets_dir, "demo-classes"),
                                                 counts=counts, log=log)
    records = data_loader.list_labelled_images(data)
    split_path = settings.split_path or os.path.join(settings.out_dir, "split.csv")
    split, _ = split_module.load_or_make_split(split_path, records, settings.test_fraction,
                                               settings.val_fraction, settings.seed, log)
    rare = demo_data.DEMO_RARE_CLASS
    training = [r for r in records if r.class_name == rare and split[r.image_id] == "train"]
    tag = hashlib.sha1("\n".join(r.image_id for r in training).encode()).hexdigest()[:8]
    folder = _copy_images(training, os.path.join(datasets_dir, f"demo-classes-{rare}-train-{tag}"))
    gan = dict(gan or DEMO_GAN)
    run = f"{gan['model']}-demo-{rare}-{tag}-{gan['resolution']}px"
    log(f"demo: training a {gan['model']} on the {len(training)} training-fold {rare} images "
        f"({gan['steps']} steps, run {run}) ...")
    train_gan(folder, run, settings.models_dir, settings.results_dir, gan, log)
    return dataclasses.replace(settings, data=data, split_path=split_path,
                               synthetic_arms={"synthetic": [(rare, run)]})
