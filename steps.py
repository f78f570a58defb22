"""One custom training step per GAN family, each made by a factory returning a tf.function.

A step does one discriminator update then one generator update on one global batch and
returns a dict of scalar metrics. The shared loop in train.py calls it without knowing the
family. Random inputs (latents, noise images) come from a checkpointed tf.random.Generator,
so a resumed run draws exactly what an uninterrupted one would.

Several devices: the step runs under the strategy it is given (the default strategy, or
tf.distribute.MirroredStrategy). The random inputs are drawn once for the global batch and
each replica takes its own slice, so R replicas see exactly the inputs one device would.
Each replica's losses are means over its local batch, divided by R before differentiation:
the optimizer sums gradients over replicas, which then equals the global-batch mean.
"""
import tensorflow as tf

import losses


def _replica_slice(tensor, local_batch):
    """The rows of a global-batch tensor that belong to the current replica."""
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return tensor[replica * local_batch:(replica + 1) * local_batch]


def _compile(fn, strategy, jit_compile):
    """tf.function over the whole step; XLA on a single device when asked.

    Under several replicas the step stays un-jitted: the optimizers' cross-replica
    all-reduce (a merge_call) cannot live inside an XLA cluster.
    """
    single = strategy.num_replicas_in_sync == 1
    return tf.function(fn, jit_compile=bool(jit_compile and single))


def make_sl_stylegan_step(generator, discriminator, g_optimizer, d_optimizer, rng, *,
                          global_batch, latent_dim, resolution, strategy=None,
                          r1_weight=losses.R1_WEIGHT, jit_compile=False):
    """Train step of SL-StyleGAN: least squares (+1 real, -1 fake, G aims at 0) and R1."""
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    local_batch = global_batch // replicas

    def replica_step(real, z_d, noise_d, z_g, noise_g):
        # real: (b, R, R, 3) in [0, 1]; z: (b, latent_dim); noise: (b, R, R, 1), b = local batch
        z_d, noise_d, z_g, noise_g = (_replica_slice(t, local_batch)
                                      for t in (z_d, noise_d, z_g, noise_g))

        # (1) Update D: minimise (D(x) - 1)^2 + (D(G(z)) + 1)^2 + 5 * ||grad_x D(x)||^2
        fake = generator([z_d, noise_d], training=True)
        with tf.GradientTape() as d_tape:
            real_logits, r1 = losses.discriminator_with_r1(discriminator, real, r1_weight)
            fake_logits = discriminator(fake, training=True)
            real_logits = tf.cast(real_logits, tf.float32)
            fake_logits = tf.cast(fake_logits, tf.float32)
            d_ls = losses.lsgan_discriminator_loss(real_logits, fake_logits)
            d_loss = d_ls + r1
            d_scaled = d_loss / replicas
        d_vars = discriminator.trainable_variables
        d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_vars), d_vars))

        # (2) Update G: minimise D(G(z))^2 with fresh z and noise
        with tf.GradientTape() as g_tape:
            fake_g = generator([z_g, noise_g], training=True)
            fake_g_logits = tf.cast(discriminator(fake_g, training=True), tf.float32)
            g_loss = losses.lsgan_generator_loss(fake_g_logits)
            g_scaled = g_loss / replicas
        g_vars = generator.trainable_variables
        g_optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_vars), g_vars))

        acc_real, acc_fake = losses.discriminator_accuracy(real_logits, fake_logits)
        return {"d_loss": d_loss, "g_loss": g_loss, "r1": r1,
                "d_real": tf.reduce_mean(real_logits), "d_fake": tf.reduce_mean(fake_logits),
                "acc_real": acc_real, "acc_fake": acc_fake}

    def step(real):
        z_d = rng.normal([global_batch, latent_dim])
        noise_d = rng.normal([global_batch, resolution, resolution, 1])
        z_g = rng.normal([global_batch, latent_dim])
        noise_g = rng.normal([global_batch, resolution, resolution, 1])
        per_replica = strategy.run(replica_step, args=(real, z_d, noise_d, z_g, noise_g))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica.items()}

    return _compile(step, strategy, jit_compile)


def make_dcgan_step(generator, discriminator, g_optimizer, d_optimizer, rng, *,
                    global_batch, latent_dim, strategy=None, jit_compile=False, **_):
    """Train step of DCGAN: binary cross-entropy, non-saturating G loss.

    As in the PyTorch DCGAN the source project follows, one batch of fakes serves both
    updates: D sees it detached, then G is scored by the freshly updated D on it.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    local_batch = global_batch // replicas

    def replica_step(real, z):
        # real: (b, R, R, 3) in [-1, 1]; z: (b, latent_dim)
        z = _replica_slice(z, local_batch)
        with tf.GradientTape() as g_tape:
            fake = generator(z, training=True)

        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        with tf.GradientTape() as d_tape:
            real_logits = tf.cast(discriminator(real, training=True), tf.float32)
            fake_logits = tf.cast(discriminator(tf.stop_gradient(fake), training=True),
                                  tf.float32)
            d_loss = losses.bce_discriminator_loss(real_logits, fake_logits)
            d_scaled = d_loss / replicas
        d_vars = discriminator.trainable_variables
        d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_vars), d_vars))

        # (2) Update G: maximise log D(G(z)), scored by the updated D
        with g_tape:
            fake_logits_g = tf.cast(discriminator(fake, training=True), tf.float32)
            g_loss = losses.bce_generator_loss(fake_logits_g)
            g_scaled = g_loss / replicas
        g_vars = generator.trainable_variables
        g_optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_vars), g_vars))

        acc_real, acc_fake = losses.discriminator_accuracy(real_logits, fake_logits)
        return {"d_loss": d_loss, "g_loss": g_loss,
                "d_real": tf.reduce_mean(real_logits), "d_fake": tf.reduce_mean(fake_logits),
                "acc_real": acc_real, "acc_fake": acc_fake}

    def step(real):
        z = rng.normal([global_batch, latent_dim])
        per_replica = strategy.run(replica_step, args=(real, z))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica.items()}

    return _compile(step, strategy, jit_compile)
