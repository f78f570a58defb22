"""Import tensorflow-gan's losses and evaluation maths on TensorFlow >= 2.16.

tensorflow-gan 2.1.0 is the last release. Its package ``__init__`` imports
``tf.estimator`` (removed in TF 2.16, tensorflow/gan issue 55) and ``distutils``
(removed in Python 3.12), so ``import tensorflow_gan`` fails. The submodules we
need do not depend on either, so we register the parent packages as empty
namespace modules (their ``__init__`` never runs) and import the submodules
directly:

    from skingan.tfgan_compat import tfgan_losses, tfgan_eval
    tfgan_losses.least_squares_discriminator_loss(...)
    tfgan_eval.frechet_classifier_distance_from_activations(...)

``tfgan_eval`` (classifier_metrics) imports tensorflow-probability, which needs
the ``tf-keras`` package on TF >= 2.16; both are in requirements.txt.
"""
import importlib
import importlib.util
import os
import sys
import types


def _package_dir():
    module = sys.modules.get("tensorflow_gan")
    if module is not None:
        return module.__path__[0]
    spec = importlib.util.find_spec("tensorflow_gan")
    if spec is None:
        raise ImportError(
            "tensorflow-gan is not installed: run 'pip install -r requirements.txt'")
    return spec.submodule_search_locations[0]


def _register_namespace(name):
    """Put an empty package ``name`` in sys.modules without running its __init__."""
    if name in sys.modules:
        return
    root_dir = _package_dir()
    parts = name.split(".")[1:]
    module = types.ModuleType(name)
    module.__path__ = [os.path.join(root_dir, *parts)]
    module.__package__ = name
    sys.modules[name] = module


def _import_submodule(name):
    parts = name.split(".")
    for i in range(1, len(parts)):
        _register_namespace(".".join(parts[:i]))
    return importlib.import_module(name)


def _load_losses():
    return _import_submodule("tensorflow_gan.python.losses.losses_impl")


class _LazyModule(types.ModuleType):
    """Imports the eval maths on first attribute access (it pulls in TF-Probability)."""

    def __init__(self, name, loader):
        super().__init__(name)
        self._loader = loader
        self._module = None

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        if self._module is None:
            self._module = self._loader()
        return getattr(self._module, attr)


def _load_eval():
    classifier = _import_submodule("tensorflow_gan.python.eval.classifier_metrics")
    swd = _import_submodule("tensorflow_gan.python.eval.sliced_wasserstein")
    merged = types.SimpleNamespace()
    for module in (classifier, swd):
        for key in dir(module):
            if not key.startswith("_"):
                setattr(merged, key, getattr(module, key))
    return merged


tfgan_losses = _load_losses()
tfgan_eval = _LazyModule("tfgan_eval", _load_eval)
