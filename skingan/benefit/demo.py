"""The built-in demo: a multi-class synthetic lesion set (skingan.demo_data), a short GAN
trained on the rare class's training fold, then the ordinary experiment.

``train_gan`` is the one place this package trains a GAN: the training loop itself, on the
rare class of the labelled data with the split's validation and test images excluded
(train.py's ``--exclude split.csv``); the run records the images it trained on in its
``trained_images.txt``, which the leak check reads.
"""
import dataclasses
import hashlib
import os

import data_loader
from skingan import demo_data
from skingan.benefit import split as split_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A DCGAN at 32 px, half the paper's channels: about 30 s on two CPU cores.
DEMO_GAN = dict(model="dcgan", resolution=32, steps=600, batch_size=32, channel_scale=0.5)


def train_gan(data, class_name, exclude, run, models_dir, results_dir, gan=None, log=print):
    """Train (or finish) GAN run ``run`` on class ``class_name`` of ``data`` without the
    images ``exclude`` (a split.csv) leaves out, with the settings ``gan`` (train.py's
    flags, default DEMO_GAN). Returns the run folder."""
    from skingan.config import resolve_config
    from skingan.loop import train
    gan = dict(gan or DEMO_GAN)
    explicit = dict(gan, data=data, class_name=class_name, exclude=exclude, run=run,
                    sample_every=gan["steps"], checkpoint_every=gan["steps"],
                    log_every=max(1, gan["steps"] // 12))   # a line about every 10 s on 2 cores
    run, cfg = resolve_config(explicit, models_dir)
    train(cfg, run, models_dir, results_dir, log=log, handle_signals=False)
    return os.path.join(models_dir, run)


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
    gan = dict(gan or DEMO_GAN)
    run = f"{gan['model']}-demo-{rare}-{tag}-{gan['resolution']}px"
    log(f"demo: training a {gan['model']} on the {len(training)} training-fold {rare} images "
        f"({gan['steps']} steps, run {run}); its first line comes once the train step is "
        "compiled ...")
    train_gan(data, rare, split_path, run, settings.models_dir, settings.results_dir, gan, log)
    return dataclasses.replace(settings, data=data, split_path=split_path,
                               synthetic_arms={"synthetic": [(rare, run)]})
