"""GAN losses as pure functions of discriminator logits, plus the R1 penalty.

Conventions, stated once for the whole project:
- Discriminator outputs are raw, linear logits of shape (B, 1): no sigmoid in the models.
- SL-StyleGAN (Qin et al. 2020) uses least squares with the LSGAN coding a=-1, b=+1, c=0:
  D pushes D(real) -> +1 and D(fake) -> -1, G pushes D(fake) -> 0. The authors compile
  Keras' plain 'mse' for each term, so
      L_D = mean((D(x) - 1)^2) + mean((D(G(z)) + 1)^2) + 5 * mean_i ||grad_x D(x_i)||^2
      L_G = mean(D(G(z))^2)
  tensorflow-gan's least-squares losses carry a factor 1/2 on every squared term, so we
  multiply them by 2 to keep the authors' balance between the LS terms and R1.
- DCGAN (Radford et al. 2015; Bhavsar et al. 2021) uses binary cross-entropy with real=1 and
  fake=0 on sigmoid(logit); G uses the non-saturating form, maximising log D(G(z)):
      L_D = -mean(log sigmoid(D(x))) - mean(log(1 - sigmoid(D(G(z)))))
      L_G = -mean(log sigmoid(D(G(z))))
  tensorflow-gan's `modified_*` losses are exactly these once its default label smoothing
  (0.25) is switched off.
- R1 (Mescheder et al. 2018) takes a critic callable, as tensorflow-gan's penalties take a
  `discriminator_fn`: `critic(images (B, H, W, C)) -> logits (B, 1)`. The step builds it,
  closing over whatever else D needs (a conditional D's labels, `training=True`), so the
  loss never knows the model's inputs:
      critic = lambda x: discriminator(with_labels(x, labels), training=True)
      real_logits, r1 = discriminator_with_r1(critic, real_images, weight)
  Lazy R1 (StyleGAN2's every-K-iterations regularisation) is the caller's schedule: it calls
  this on one iteration in K with weight K * w, and the critic alone on the others.
"""
import tensorflow as tf

from skingan.tfgan_compat import tfgan_losses

R1_WEIGHT = 5.0  # Qin et al.: gradient penalty weight 5 on real images

_SUM_OVER_BATCH = tf.compat.v1.losses.Reduction.SUM_BY_NONZERO_WEIGHTS


def lsgan_discriminator_loss(real_logits, fake_logits):
    """mean((D(x) - 1)^2) + mean((D(G(z)) + 1)^2), targets +1 for real and -1 for fake."""
    return 2.0 * tfgan_losses.least_squares_discriminator_loss(
        real_logits, fake_logits, real_label=1.0, fake_label=-1.0,
        loss_collection=None, reduction=_SUM_OVER_BATCH)


def lsgan_generator_loss(fake_logits):
    """mean(D(G(z))^2): G aims at 0, halfway between the real and fake targets."""
    return 2.0 * tfgan_losses.least_squares_generator_loss(
        fake_logits, real_label=0.0, loss_collection=None, reduction=_SUM_OVER_BATCH)


def bce_discriminator_loss(real_logits, fake_logits):
    """Binary cross-entropy, real -> 1, fake -> 0, on logits (sigmoid inside)."""
    return tfgan_losses.modified_discriminator_loss(
        real_logits, fake_logits, label_smoothing=0.0,
        loss_collection=None, reduction=_SUM_OVER_BATCH)


def bce_generator_loss(fake_logits):
    """Non-saturating generator loss -mean(log sigmoid(D(G(z))))."""
    return tfgan_losses.modified_generator_loss(
        fake_logits, label_smoothing=0.0, loss_collection=None, reduction=_SUM_OVER_BATCH)


def r1_from_gradients(grads, weight=R1_WEIGHT):
    """weight * mean over the batch of the squared L2 norm of grad_x D(x), grads (B, H, W, C)."""
    grads = tf.cast(grads, tf.float32)
    per_image = tf.reduce_sum(tf.square(grads), axis=tf.range(1, tf.rank(grads)))  # (B,)
    return weight * tf.reduce_mean(per_image)


def discriminator_with_r1(critic, real_images, weight=R1_WEIGHT):
    """Run critic(real_images) -> logits (B, 1) and return (logits, R1 penalty), the penalty
    weight * mean_i ||grad_x critic(x)_i||^2. The gradient is with respect to the images
    only (a conditional critic's labels are closed over, not differentiated).

    The gradient is taken with a nested tape, so a surrounding GradientTape can
    differentiate the penalty with respect to D's weights (a second-order term).
    Each image's logit depends only on that image, so the gradient of the summed logits
    gives every image's own gradient.
    """
    with tf.GradientTape() as tape:
        tape.watch(real_images)
        logits = critic(real_images)
        total = tf.reduce_sum(tf.cast(logits, tf.float32))
    grads = tape.gradient(total, real_images)
    return logits, r1_from_gradients(grads, weight)


def discriminator_accuracy(real_logits, fake_logits):
    """Fraction of reals with logit > 0 and of fakes with logit < 0.

    Zero is the decision boundary for both conventions: BCE's sigmoid(0) = 0.5, and the
    midpoint of the least-squares targets -1 and +1.
    """
    real_acc = tf.reduce_mean(tf.cast(real_logits > 0, tf.float32))
    fake_acc = tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32))
    return real_acc, fake_acc


# ---- StyleGAN2 (Karras et al. 2020; NVlabs stylegan2-ada-pytorch, training/loss.py) ------
# Non-saturating logistic loss on D's raw logits:
#     L_D = mean(softplus(D(G(z)))) + mean(softplus(-D(x)))     = -log(1 - s(D(G(z)))) - log s(D(x))
#     L_G = mean(softplus(-D(G(z))))                             = -log s(D(G(z)))
# R1 (on reals): gamma / 2 * sum over pixels of grad_x D(x)^2, per image, mean over the batch.
# Path length: for ws (B, num_ws, w_dim) and y = noise / sqrt(H W) with noise ~ N(0, I),
#     a = sqrt(mean over num_ws of sum over w_dim of (d sum(G(ws) * y) / d ws)^2)   (B,)
#     pl_mean <- pl_mean + decay * (mean(a) - pl_mean);   penalty = (a - pl_mean)^2 (B,)


def logistic_discriminator_loss(real_logits, fake_logits):
    """mean(softplus(D(G(z)))) + mean(softplus(-D(x))), logits (B, 1) as float32."""
    return (tf.reduce_mean(tf.nn.softplus(tf.cast(fake_logits, tf.float32)))
            + tf.reduce_mean(tf.nn.softplus(-tf.cast(real_logits, tf.float32))))


def logistic_generator_loss(fake_logits):
    """mean(softplus(-D(G(z)))): G maximises log D(G(z)), the non-saturating form."""
    return tf.reduce_mean(tf.nn.softplus(-tf.cast(fake_logits, tf.float32)))


def stylegan2_r1_weight(gamma):
    """The weight r1_from_gradients takes for StyleGAN2's R1, gamma / 2."""
    return gamma / 2.0


def path_lengths(ws_grads):
    """Per-image path lengths (B,) from the gradient of sum(G(ws) * y) w.r.t. ws
    (B, num_ws, w_dim): the root of the mean over layers of the squared gradient norm."""
    g = tf.cast(ws_grads, tf.float32)
    return tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(g), axis=2), axis=1))


def path_length_penalty(lengths, lengths_mean, pl_mean, decay=0.01):
    """(penalty (B,), new pl_mean): pl_mean moved towards the batch's mean length by
    `decay`, penalty (a - new pl_mean)^2. lengths_mean: the mean of the lengths over the
    whole batch (over every replica's under several), differentiable as NVlabs' is."""
    new_mean = pl_mean + decay * (lengths_mean - pl_mean)
    return tf.square(lengths - new_mean), new_mean


# ---- Mode seeking (Mao et al. 2019, MSGAN; HelenMao/MSGAN's DCGAN-Mode-Seeking) ----------
# For two latents z1, z2 given the same condition c (or none):
#     L_ms = mean|G(z1, c) - G(z2, c)| / mean|z1 - z2|      (means over every element)
# and G's loss gains lambda / (L_ms + eps), eps = 1e-5, lambda = 1 in the authors' code: G is
# pushed away from mapping different latents to the same image (a collapse in which G
# ignores z). Here the pairs are rows (0, 1), (2, 3), ... of one batch (see the steps).
MODE_SEEKING_EPS = 1e-5


def mode_seeking_ratio(images, z):
    """L_ms over the pairs of adjacent rows of a batch: images (B, H, W, C) made from latents
    z (B, d), row 2k paired with row 2k + 1 (an odd last row is left unpaired). 0 when the
    batch holds no pair (a last partial batch of one image)."""
    images, z = tf.cast(images, tf.float32), tf.cast(z, tf.float32)
    pairs = tf.shape(images)[0] // 2
    image_gap = tf.abs(images[0:2 * pairs:2] - images[1:2 * pairs:2])    # (pairs, H, W, C)
    z_gap = tf.abs(z[0:2 * pairs:2] - z[1:2 * pairs:2])                  # (pairs, d)
    # means over every element; divide_no_nan keeps an empty batch (and its gradient) finite
    image_mean = tf.math.divide_no_nan(tf.reduce_sum(image_gap),
                                       tf.cast(tf.size(image_gap), tf.float32))
    z_mean = tf.math.divide_no_nan(tf.reduce_sum(z_gap), tf.cast(tf.size(z_gap), tf.float32))
    return tf.math.divide_no_nan(image_mean, z_mean)


def mode_seeking_loss(images, z, weight, eps=MODE_SEEKING_EPS):
    """(weight / (L_ms + eps), L_ms) for G's loss, L_ms = mode_seeking_ratio(images, z);
    the term is 0 when the batch holds no pair."""
    ratio = mode_seeking_ratio(images, z)
    has_pairs = tf.shape(images)[0] >= 2
    term = tf.where(has_pairs, weight / (ratio + eps), 0.0)
    return term, ratio
