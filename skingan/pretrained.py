"""Pretrained ImageNet weights, fetched the way Keras fetches them.

Every pretrained network here (InceptionV3 for FID, the Keras Applications backbones of
classify.py) loads one Keras weights file. ``fetch(spec)`` finds it or gets it:

1. in Keras' cache, ``$KERAS_HOME/models/`` (default ``~/.keras/models/``): used as it is;
2. else, unless downloads are off, downloaded once into that folder by Keras' own
   ``keras.utils.get_file``, from the URL and with the md5 hash Keras Applications use (so
   ``keras.applications.X(weights="imagenet")`` finds the same file later), saying so in one
   line first;
3. else ``MissingWeightsError`` (a UserError: one line, exit code 2), naming the file, where it
   comes from and where to put it.

Downloads are off with ``--offline`` (``go_offline()``) or the environment variable
``SKINGAN_OFFLINE=1``; the test suite sets it for every test.
"""
import dataclasses
import os

from skingan.errors import UserError

OFFLINE_ENV = "SKINGAN_OFFLINE"
KERAS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"


class MissingWeightsError(UserError):
    """A pretrained network's weights are not on this machine and cannot be downloaded.
    str(): the whole remedy in one line; ``short()``: file, folder and why, for a line that
    points to --help for the rest."""

    def __init__(self, message, spec=None, why=None):
        super().__init__(message)
        self.spec, self.why = spec, why

    def short(self):
        if self.spec is None:
            return str(self)
        return f"no {self.spec.file_name} in {os.path.dirname(cache_path(self.spec))}/ ({self.why})"


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    network: str        # the keras.applications constructor, e.g. "InceptionV3"
    file_name: str      # its name in Keras' cache (the same name Keras Applications use)
    origin: str         # the URL Keras Applications download it from
    md5: str            # the hash Keras Applications check it against


# The include_top=False ("notop") weights, with the names, URLs and hashes of
# keras/src/applications/*.py (Keras 3); tests/test_pretrained.py checks each against what
# the Keras constructor itself asks keras.utils.get_file for.
INCEPTION_V3 = WeightsFile(
    "InceptionV3", "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    KERAS_BASE + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "bcbd6486424b2319ff4ef7d526e38f63")
EFFICIENTNET_B0 = WeightsFile(
    "EfficientNetB0", "efficientnetb0_notop.h5",
    "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
    "50bc09e76180e00e4465e1a485ddc09d")
RESNET50 = WeightsFile(
    "ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    KERAS_BASE + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "4d473c1dd8becc155b73f8504c6f6626")
DENSENET121 = WeightsFile(
    "DenseNet121", "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    KERAS_BASE + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "30ee3e1110167f948a6b9946edeeb738")
MOBILENET_V3_SMALL = WeightsFile(
    "MobileNetV3Small", "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    KERAS_BASE + "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    "d3e8ec802a04aa4fc771ee12a9a9b836")


def offline():
    """Whether downloads are off: SKINGAN_OFFLINE set to anything but '', '0', 'false', 'no'."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def go_offline():
    """--offline: no download for the rest of this process (and its children)."""
    os.environ[OFFLINE_ENV] = "1"


def keras_home():
    """$KERAS_HOME, else ~/.keras, read now (Keras reads it once, at import), so tests and
    users can point it elsewhere."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def cache_path(spec):
    """Where Keras keeps ``spec``'s file: <keras home>/models/<file name>."""
    return os.path.join(keras_home(), "models", spec.file_name)


def how_to_get(spec, flag):
    """The remedy, in one sentence: where the file comes from and where to put it."""
    return (f"put {spec.file_name} (from {spec.origin}) in {os.path.dirname(cache_path(spec))}"
            f"/, or pass {flag} FILE")


def fetch(spec, log=print, flag="--weights", also=""):
    """The path of ``spec``'s weights file: Keras' cached copy, or one downloaded now into
    Keras' cache. Raises MissingWeightsError when it is not there and downloads are off or
    fail. ``log``: where the download is announced (None: nowhere); ``flag``: the option
    that names a file instead; ``also``: text appended to the error (another way out, e.g.
    '--weights none')."""
    cached = cache_path(spec)
    if os.path.isfile(cached):
        return cached
    if offline():
        why = f"downloads are off: --offline or {OFFLINE_ENV}=1"
        raise MissingWeightsError(
            f"{spec.network}'s ImageNet weights are not in Keras' cache and downloads are off "
            f"(--offline or {OFFLINE_ENV}=1): {how_to_get(spec, flag)}{also}", spec, why)
    import keras
    log = log or (lambda *_: None)
    log(f"downloading {spec.network}'s ImageNet weights ({spec.file_name}), once, into "
        f"{os.path.dirname(cached)}/ (--offline: never download)")
    try:
        return keras.utils.get_file(spec.file_name, spec.origin, cache_subdir="models",
                                    file_hash=spec.md5, cache_dir=keras_home())
    except Exception as err:       # no network, proxy, disk full: one line, not a traceback
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MissingWeightsError(
            f"cannot download {spec.network}'s ImageNet weights ({reason}): "
            f"{how_to_get(spec, flag)}{also}", spec, f"the download failed: {reason}") from None
