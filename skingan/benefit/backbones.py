"""The classifiers: Keras Applications backbones (ImageNet weights from Keras' cache,
downloaded into it once on first use, as Keras does: skingan.pretrained) and a small CNN for
CPUs and tests.

Every model takes float images (B, R, R, 3) in [0, 255] and returns class probabilities
(B, C) in float32 (also under mixed precision). Each backbone gets the input scaling its
ImageNet weights expect: EfficientNet and MobileNetV3 rescale inside the model; ResNet50
(caffe: BGR, mean subtracted) and DenseNet121 (torch: [0, 1], ImageNet mean/std) get their
``preprocess_input`` as the first layer.
"""
import os

from skingan import pretrained
from skingan.errors import UserError

# name: (keras.applications constructor, preprocess module or None, its notop weights file)
APPLICATIONS = {
    "efficientnetb0": ("EfficientNetB0", None, pretrained.EFFICIENTNET_B0),
    "resnet50": ("ResNet50", "resnet50", pretrained.RESNET50),
    "densenet121": ("DenseNet121", "densenet", pretrained.DENSENET121),
    "mobilenetv3small": ("MobileNetV3Small", None, pretrained.MOBILENET_V3_SMALL),
}
SMALL = "small"
BACKBONES = tuple(APPLICATIONS) + (SMALL,)
SMALL_FILTERS = (32, 64, 128)      # channels of the small CNN's three blocks
IMAGENET, NONE = "imagenet", "none"   # the two words --weights takes besides a file


def check_weights_choice(backbone, weights):
    """--weights before anything is read: 'imagenet' (the default for a Keras Applications
    backbone), 'none' (random initialisation, asked for), or an existing file."""
    if backbone == SMALL:
        if weights not in (None, NONE):
            raise UserError("--weights is for the Keras Applications backbones; the small CNN "
                            "has no pretrained weights")
        return
    if weights not in (None, IMAGENET, NONE) and not os.path.isfile(weights):
        raise UserError(f"--weights: file not found: {weights} (or give 'imagenet' or "
                        "'none')")


def find_weights(backbone, weights=None, log=print):
    """The ImageNet weights file to load for ``backbone``, or None (random initialisation).

    weights: None or 'imagenet' (Keras' cache, downloaded into it on first use unless
    offline: skingan.pretrained.fetch), 'none' (random initialisation, said in one line) or
    a file. Raises MissingWeightsError (one line, exit 2) when the ImageNet file is neither
    cached nor downloadable: never a silent fall-back to random weights."""
    check_weights_choice(backbone, weights)
    if backbone == SMALL:
        return None
    if weights == NONE:
        log(f"{backbone}: random initialisation (--weights none), no ImageNet weights")
        return None
    if weights not in (None, IMAGENET):
        return weights
    spec = APPLICATIONS[backbone][2]
    path = pretrained.fetch(spec, log, flag="--weights",
                            also=" (--weights none: random initialisation, which needs far "
                                 "more data)")
    log(f"{backbone}: ImageNet weights {path}")
    return path


def small_cnn(resolution, num_classes, filters=SMALL_FILTERS, dropout=0.3):
    """Three blocks of Conv 3x3 -> BatchNorm -> ReLU -> MaxPool 2, global average pooling,
    dropout, softmax. About 0.1 M parameters; at R = 32 the maps are 32 -> 16 -> 8 -> 4."""
    import keras
    from keras import layers
    inputs = keras.Input((resolution, resolution, 3))          # [0, 255]
    x = layers.Rescaling(1.0 / 255.0)(inputs)                   # (B, R, R, 3) in [0, 1]
    for f in filters:
        x = layers.Conv2D(f, 3, padding="same")(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)                           # (B, R/2^k, R/2^k, f)
    x = layers.GlobalAveragePooling2D()(x)                      # (B, filters[-1])
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def application(backbone, resolution, num_classes, weights_file=None, dropout=0.2):
    """A Keras Applications backbone (no top, average pooling) with a new softmax head."""
    import keras
    from keras import layers
    constructor, preprocess, _ = APPLICATIONS[backbone]
    inputs = keras.Input((resolution, resolution, 3))          # [0, 255]
    x = inputs
    if preprocess:
        module = getattr(keras.applications, preprocess)
        x = layers.Lambda(module.preprocess_input, name="preprocess")(x)
    base = getattr(keras.applications, constructor)(
        include_top=False, weights=weights_file, input_shape=(resolution, resolution, 3),
        pooling="avg")
    x = base(x)                                                 # (B, features)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"{backbone}_classifier")


def build_classifier(backbone, resolution, num_classes, weights_file=None,
                     mixed_precision=False):
    """The classifier for ``backbone``; built under the mixed_bfloat16 policy when asked
    (the softmax head stays float32)."""
    import keras
    if backbone not in BACKBONES:
        raise UserError(f"unknown backbone '{backbone}'; choose one of {', '.join(BACKBONES)}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed_precision else "float32")
    try:
        if backbone == SMALL:
            return small_cnn(resolution, num_classes)
        return application(backbone, resolution, num_classes, weights_file)
    finally:
        keras.mixed_precision.set_global_policy(previous)
