"""The class-conditional parts both families share (an option beyond the papers, whose GANs
are trained one class at a time): a class embedding for the generator, the projection term
for the discriminator. Labels are integer class indices, shape (B,).

- Generator (StyleGAN2-ADA's way): embed(c) and z are each normalised to unit second moment,
  x * rsqrt(mean(x^2) + 1e-8), and concatenated, so neither dominates the first layer.
- Discriminator (Miyato and Koyama 2018, projection): logit(x, c) = psi(phi(x)) +
  <embed(c), phi(x)>, phi(x) the features before the last layer; the class moves the logit
  along a learned direction per class instead of entering as an extra input channel.
- `with_labels` appends the labels to a network's inputs: the last input of a conditional G
  or D (the step, the sampling code and the loop's events all give labels this way).
"""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="skingan")
class SecondMomentNorm(keras.layers.Layer):
    """x / sqrt(mean(x^2 over the last axis) + epsilon), per sample. No weights."""

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)

    def get_config(self):
        return dict(super().get_config(), epsilon=self.epsilon)


def with_labels(inputs, labels):
    """A network's inputs (G's from Family.draw_inputs, or D's images) with the class labels
    (n,) appended: the last input of a conditional G or D. Unchanged when labels is None."""
    if labels is None:
        return inputs
    return (list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]) + [labels]


def label_input(name="label"):
    return keras.Input(shape=(), dtype="int32", name=name)


def embed_with_latent(z, label, num_classes, embed_dim, name="class_embed"):
    """[normalise(z), normalise(embed(label))]: (B, latent_dim + embed_dim)."""
    embedded = keras.layers.Embedding(num_classes, embed_dim, name=name)(label)  # (B, embed)
    return keras.layers.Concatenate(name=f"{name}_concat")([
        SecondMomentNorm(name="z_norm")(z), SecondMomentNorm(name=f"{name}_norm")(embedded)])


def projection_logit(logit, features, label, num_classes, name="class_projection"):
    """logit + <embed(label), features>: (B, 1), features (B, F) flattened."""
    embedded = keras.layers.Embedding(num_classes, features.shape[-1], dtype="float32",
                                      name=name)(label)                        # (B, F)
    features = keras.layers.Activation("linear", dtype="float32",
                                       name=f"{name}_features")(features)
    dot = keras.layers.Dot(axes=1, dtype="float32", name=f"{name}_dot")([embedded, features])
    return keras.layers.Add(dtype="float32", name=f"{name}_logit")([logit, dot])  # (B, 1)
