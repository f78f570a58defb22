"""Train one classifier on one arm's training set and predict the test fold.

Input is the project's tf.data stream (``data_loader.make_dataset``): float batches in
[0, 255] with random flips and 90 degree turns (label-preserving for dermoscopy), the batch of
step s a pure function of (seed, s); the labels of the same samples are streamed beside it.
An epoch is ceil(M / B) steps over the M training images. Training stops early on the
validation loss and the best epoch's weights are restored before predicting the test fold.
Validation and test predictions are eager model calls (``predict``): no tf.function is built
for them, so nothing is retraced from one repeat's new model to the next.
"""
import dataclasses
import math
import time

import numpy as np

import data_loader


@dataclasses.dataclass
class TrainSettings:
    backbone: str = "small"
    resolution: int = 32
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 5              # epochs without a better validation loss before stopping
    class_weight: bool = False     # weight the loss by n / (C * n_class) ('balanced')
    weights_file: str = None       # ImageNet weights for a Keras Applications backbone
    mixed_precision: bool = False
    xla: bool = False


def training_stream(images, labels, batch_size, seed):
    """Infinite tf.data stream of (images (B, R, R, 3) float32 in [0, 255], labels (B,))."""
    import tensorflow as tf
    pixels = data_loader.make_dataset(images, batch_size, seed, value_range=(0.0, 255.0),
                                      hflip=True, vflip=True, rot90=True)

    def batch_labels(step):
        # the same sample indices make_dataset draws for this step
        index, _ = data_loader.batch_indices(int(step), batch_size, len(labels), seed)
        return labels[index].astype(np.int32)

    def to_labels(step):
        y = tf.numpy_function(batch_labels, [step], tf.int32, stateful=False)
        y.set_shape((batch_size,))
        return y

    classes = tf.data.Dataset.counter(dtype=tf.int64).map(to_labels)
    return tf.data.Dataset.zip((pixels, classes))


def predict(model, images, batch_size):
    """Class probabilities (N, C) of uint8 images (N, R, R, 3), one eager model call per
    batch. Keras' model.predict would build and trace a new tf.function for every repeat's
    new model and call it only a few times, so TensorFlow warns of retracing after a few
    repeats; an eager call traces nothing (over the few batches of a test or validation
    fold, tracing costs more than it saves)."""
    batches = [np.asarray(model(images[i:i + batch_size].astype(np.float32), training=False))
               for i in range(0, len(images), batch_size)]
    return np.concatenate(batches) if batches else np.zeros((0, model.output_shape[-1]))


def balanced_class_weights(labels, num_classes):
    """{class: n / (C * n_class)}, scikit-learn's 'balanced' weights."""
    from sklearn.utils.class_weight import compute_class_weight
    weights = compute_class_weight("balanced", classes=np.arange(num_classes), y=labels)
    return {k: float(w) for k, w in enumerate(weights)}


def _eager_validation(images, labels, batch_size):
    """A Keras callback putting val_loss (sparse categorical cross-entropy, Keras' own) and
    val_accuracy into each epoch's logs, from one eager pass over the validation fold (see
    ``predict``: Keras' validation would trace a new function for every repeat's model, called
    only a few times when training is short). Listed before EarlyStopping, which reads them."""
    import keras

    class EagerValidation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            probabilities = predict(self.model, images, batch_size)           # (N, C)
            loss = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            logs["val_loss"] = float(np.mean(np.asarray(loss)))
            logs["val_accuracy"] = float(np.mean(probabilities.argmax(axis=1) == labels))
    return EagerValidation()


def _epoch_line(tag, epochs, log):
    """A Keras callback printing one line per epoch."""
    import keras

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log(f"{tag} epoch {epoch + 1}/{epochs}  loss {logs.get('loss', float('nan')):.4f}"
                f"  val_loss {logs.get('val_loss', float('nan')):.4f}"
                f"  val_acc {logs.get('val_accuracy', float('nan')):.3f}"
                f"  {time.perf_counter() - self.start:.1f} s")
    return EpochLine()


def fit_and_predict(settings, train_set, val_images, val_labels, test_images, num_classes,
                    seed, tag="", log=print):
    """Train a fresh classifier (init and data order from ``seed``) and predict the test
    fold. Returns {'probabilities': (N_test, C), 'history': {metric: per-epoch list},
    'best_epoch', 'epochs_run', 'seconds'}."""
    import keras

    from skingan.benefit.backbones import build_classifier
    log(f"{tag} seed {seed}: up to {settings.epochs} epochs (the first one also compiles "
        "the train step) ...")
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build_classifier(settings.backbone, settings.resolution, num_classes,
                             settings.weights_file, settings.mixed_precision)
    model.compile(optimizer=keras.optimizers.Adam(settings.lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=bool(settings.xla))
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience,
                                            restore_best_weights=True)
    weights = balanced_class_weights(train_set.labels, num_classes) \
        if settings.class_weight else None
    start = time.perf_counter()
    history = model.fit(
        training_stream(train_set.images, train_set.labels, settings.batch_size, seed),
        steps_per_epoch=math.ceil(len(train_set.labels) / settings.batch_size),
        epochs=settings.epochs, class_weight=weights,
        callbacks=[_eager_validation(val_images, val_labels, settings.batch_size), stopper,
                   _epoch_line(tag, settings.epochs, log)], shuffle=False, verbose=0)
    probabilities = predict(model, test_images, settings.batch_size)
    epochs_run = len(history.history["loss"])
    return {"probabilities": np.asarray(probabilities, np.float64),
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "best_epoch": int(stopper.best_epoch) + 1, "epochs_run": epochs_run,
            "seconds": time.perf_counter() - start}
