"""Run folders: where a run keeps what it needs to continue, and what it leaves to look at.

    SavedModels/<run>/config.json         settings, data description, versions, command
    SavedModels/<run>/config.last-good.json  a copy, used when config.json is damaged
    SavedModels/<run>/trained_images.txt  ids of the images the GAN trained on (leak checks)
    SavedModels/<run>/checkpoints/        tf.train.Checkpoint files, ckpt-<step>
    SavedModels/<run>/generator.keras     the latest generator (the EMA one with --ema)
    SavedModels/<run>/generator_best.keras  the best by quality score (with --eval-every)
    Results/<run>/                        sample grids, losses.csv/png, metrics.csv, TensorBoard

A file found damaged is renamed <name>.damaged and left for the user (checkpoints.py).
"""
import json
import os
import platform
import sys

from skingan.errors import UserError
from skingan.fileio import atomic_path, write_json, write_lines

CONFIG = "config.json"
LAST_GOOD_CONFIG = "config.last-good.json"  # used when config.json is damaged
TRAINED_IMAGES = "trained_images.txt"
_announced = set()  # config.json files already reported as unreadable


def read_config(run_dir):
    """The stored config.json document of a run folder, or None when there is none.

    When config.json is unreadable (or gone) but its last good copy is not, the copy is
    used and one line on stderr says so; when neither can be read, UserError naming the
    file and what is wrong."""
    path, backup = os.path.join(run_dir, CONFIG), os.path.join(run_dir, LAST_GOOD_CONFIG)
    if not os.path.exists(path) and not os.path.exists(backup):
        return None
    problem = config_problem(path)
    if problem is None:
        return _load_json(path)
    if config_problem(backup) is None:
        if path not in _announced:  # read more than once per run: said once
            _announced.add(path)
            print(f"warning: {path} {problem}; using its last good copy {backup}",
                  file=sys.stderr, flush=True)
        return _load_json(backup)
    raise UserError(f"{path} {problem}, and there is no readable last good copy "
                    f"({LAST_GOOD_CONFIG}) to fall back on")


def config_problem(path):
    """None when `path` is a readable run config, else what is wrong with it, as a phrase."""
    if not os.path.exists(path):
        return "is missing"
    try:
        doc = _load_json(path)
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    except ValueError as err:  # JSONDecodeError, or bytes that are not UTF-8
        return f"is not valid JSON ({str(err).splitlines()[0]})"
    if not isinstance(doc, dict) or not isinstance(doc.get("settings"), dict):
        return "has no 'settings' (not a run config)"
    return None


def _load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def has_config(run_dir):
    """Whether `run_dir` is a run folder: it has config.json or its last good copy."""
    return any(os.path.isfile(os.path.join(run_dir, name))
               for name in (CONFIG, LAST_GOOD_CONFIG))


def folder_bytes(path):
    """Total size of the files below `path` (0 when it does not exist)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:  # removed meanwhile (an old checkpoint being replaced)
                pass
    return total


def format_bytes(n):
    """1234567 -> '1.2 MB' (powers of 1000, as `du --si` and file managers show)."""
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


def package_versions():
    import keras
    import numpy
    import tensorflow as tf
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__,
            "platform": platform.platform()}


class RunFolder:
    """The two folders of one run and the files in them."""

    def __init__(self, models_dir, results_dir, run):
        self.run = run
        self.run_dir = os.path.join(models_dir, run)
        self.out_dir = os.path.join(results_dir, run)
        self.config_path = os.path.join(self.run_dir, CONFIG)
        self.checkpoint_dir = os.path.join(self.run_dir, "checkpoints")

    def exists(self):
        return has_config(self.run_dir)

    def check_can_start(self):
        """A new run may not write into folders that hold someone else's files."""
        for folder in (self.run_dir, self.out_dir):
            if os.path.isdir(folder) and os.listdir(folder):
                raise UserError(f"{folder} already holds files but no run config; move it "
                                "away or choose another --run name (nothing was overwritten)")

    def read_config(self):
        return read_config(self.run_dir)

    def write_config(self, settings, data_info, value_range):
        """config.json first, so that whatever is written next belongs to a known run."""
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.out_dir, exist_ok=True)
        doc = {"run": self.run, "settings": settings, "data": data_info,
               "versions": package_versions(), "command": sys.argv,
               "value_range": list(value_range)}
        write_json(self.config_path, doc)
        # The copy is written second: while config.json is being replaced, the copy still
        # holds the previous good one.
        write_json(os.path.join(self.run_dir, LAST_GOOD_CONFIG), doc)

    def write_trained_images(self, image_ids):
        write_lines(os.path.join(self.run_dir, TRAINED_IMAGES), image_ids)

    def export(self, model, name="generator"):
        """Save a generator as <name>.keras, replacing the previous one only when complete."""
        with atomic_path(os.path.join(self.run_dir, f"{name}.keras")) as tmp:
            model.save(tmp)

    def disk_usage_text(self):
        """One line: how much disk the run's two folders take."""
        return (f"disk: {format_bytes(folder_bytes(self.run_dir))} in {self.run_dir} "
                f"(checkpoints, exports), {format_bytes(folder_bytes(self.out_dir))} in "
                f"{self.out_dir}")
