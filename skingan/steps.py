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

Class-conditional runs (an option beyond the papers): the step takes (images, labels)
batches, the labels aligned with their images by the data stream. Fake labels are drawn
from the checkpointed generator too, with the classes' probabilities in the real batches
(--class-balance), once per generator pass and sliced per replica like the latents. G gets
the label as its last input, D as its second; R1 differentiates with respect to the images
only, and augmentation touches the images only.

Augmentation before D (options beyond the papers), one argument `augment`: None (off), a
DiffAugment policy (a tuple of transform names, augment.py), or an ada.AdaController (ADA
with its adaptive p); components.make_augment builds it from --augment. ADA's parameters
are drawn like the latents, for
the global batch with the controller's current p, and sliced per replica. Each replica also
returns (sum of sign(D(real)), or of D(real) with the 'lsgan' heuristic, count) on its
augmented reals; after the replicas ran, the step sums them over replicas, feeds the
controller and lets it adjust p every 4th iteration (cross-replica context, so every
replica and one device see the same p).
"""
import numpy as np
import tensorflow as tf

from skingan import ada as ada_core
from skingan import augment as diffaugment
from skingan import losses
from skingan.conditional import with_labels

# Per-replica outputs that are summed over replicas (ADA's statistics), not averaged.
SUMMED = ("real_sign_sum", "real_count")

# Grappler options for the steps with R1, in force while the step runs (see
# _WithGrapplerOptions). Where oneDNN's fusions are on (CPUs with AVX-512 and newer, or
# TF_ENABLE_ONEDNN_OPTS=1), Grappler's remapper fuses D's Conv2D + BiasAdd + LeakyReLU and
# deletes the BiasAdd that R1's double backward still reads (LeakyReluGrad's features), then
# rejects its own result: "remapper failed: ... Mutation::Apply error: fanout
# '.../LeakyReluGrad' exist for missing node '.../BiasAdd'", and the graph runs as it was
# before the pass. Switching the pass off for this function alone gives that same graph,
# without the line (docs/bench-remapper.md measures it); every other function keeps it.
# A new step factory with R1 compiles with _compile(..., R1_GRAPPLER_OPTIONS) too.
R1_GRAPPLER_OPTIONS = {"remapping": False}


def _global_batch(strategy, real):
    """Images in this iteration's global batch: a scalar tensor, since an epoch's last
    batch may be partial. Under several replicas, the sum of the replicas' local batches;
    under several workers this worker holds `len(local)` of the equal shares
    (loop.check_replicas), so the sum scales by replicas / local replicas."""
    local = strategy.experimental_local_results(real)
    return tf.add_n([tf.shape(r)[0] for r in local]) * (
        strategy.num_replicas_in_sync // len(local))


def _replica_slice(tensor, local_batch):
    """The rows of a global-batch tensor (or dict of them) that belong to this replica."""
    if isinstance(tensor, dict):
        return {k: _replica_slice(v, local_batch) for k, v in tensor.items()}
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return tensor[replica * local_batch:(replica + 1) * local_batch]


def _split_batch(batch):
    """(images, {"real": labels}) of a conditional batch, (images, {}) of an unconditional
    one: the labels travel in a dict, empty when there are none, like aug_params."""
    if isinstance(batch, (tuple, list)):
        images, labels = batch
        return images, {"real": labels}
    return batch, {}


def _label_drawer(rng, probabilities, names):
    """draw(n) -> {} for an unconditional step; for a conditional one {name: labels (n,)
    int32} for each fake batch in `names`, class k drawn with probabilities[k]
    (inverse CDF of rng.uniform; nothing is drawn unconditionally, so the faithful runs'
    random stream is unchanged)."""
    if probabilities is None:
        return lambda n: {}
    cdf = tf.constant(np.cumsum(probabilities), tf.float32)            # (K,)
    last = len(probabilities) - 1

    def draw(n):
        def one():
            u = rng.uniform(tf.reshape(n, [1]), dtype=tf.float32)       # (n,) in [0, 1)
            return tf.minimum(tf.searchsorted(cdf, u, side="right", out_type=tf.int32), last)
        return {name: one() for name in names}
    return draw


def _pair_labels(labels):
    """Labels (b,) with row 2k + 1 given row 2k's label, so that the mode-seeking pairs
    (rows 2k, 2k + 1, losses.mode_seeking_ratio) share their condition; None stays None.
    Applied to each replica's own rows, so pairs never straddle two replicas. Each class is
    still drawn with its probability (every pair's label is one draw)."""
    if labels is None:
        return None
    return tf.gather(labels, (tf.range(tf.shape(labels)[0]) // 2) * 2)


def _with_mode_seeking(g_loss, weight, images, z):
    """G's loss plus its mode-seeking term weight / (L_ms + eps) over `images` made from `z`;
    with weight 0 (the option off) the loss itself, so the graph is the faithful step's."""
    if not weight:
        return g_loss
    term, _ = losses.mode_seeking_loss(images, z, weight)
    return g_loss + term


def _critic(discriminator, images, labels):
    """D's logits (b, 1) as float32, given the images' labels when D is conditional."""
    return tf.cast(discriminator(with_labels(images, labels), training=True), tf.float32)


def _resolution(strategy, real):
    """The side in pixels of the real batch (a Python int, from its static shape)."""
    return strategy.experimental_local_results(real)[0].shape[1]


def _ada(augment):
    """The AdaController when `augment` is ADA, else None."""
    return augment if isinstance(augment, ada_core.AdaController) else None


def _augmenter(rng, augment, value_range, names=("real", "fake_d", "fake_g")):
    """(draw, apply) for the augmentation before D: draw(global_batch, resolution) gives the
    parameters of the batches D sees in one iteration, one params dict per name (reals, fakes
    of the D update, fakes of the G update; StyleGAN2 has a fourth, its R1 pass); only ADA
    reads the resolution (its shifts scale with it).
    augment: an AdaController (ADA with its p), a DiffAugment policy, or None (off: nothing
    is drawn, so the random stream is the faithful runs' own)."""
    ada = _ada(augment)
    if ada is not None:
        def draw_ada(global_batch, resolution):
            return {name: ada_core.draw_params(rng, global_batch, ada.p, resolution,
                                               ada.transforms)
                    for name in names}
        return draw_ada, (lambda images, params: ada_core.apply(images, params, value_range,
                                                                 ada.transforms))
    if not augment:
        return (lambda *_: {}), (lambda images, params: images)
    policy = tuple(augment)

    def draw(global_batch, _resolution):
        return {name: diffaugment.draw_params(rng, global_batch, policy) for name in names}
    return draw, (lambda images, params: diffaugment.apply(images, params, value_range))


def _real_sign_stats(ada, real_logits, fake_logits=None):
    """This replica's contribution to ADA's r_t (see SUMMED); nothing when ADA is off.
    fake_logits: D's logits on the fakes of the same D update, which the 'rank' heuristic
    pairs with the reals row by row; a pass without fakes (StyleGAN2's lazy R1 pass)
    contributes no pairs to it."""
    if ada is None:
        return {}
    if ada.heuristic == "rank" and fake_logits is None:
        return {"real_sign_sum": tf.constant(0.0), "real_count": tf.constant(0.0)}
    sign_sum, count = ada_core.real_sign_stats(real_logits, ada.heuristic, fake_logits)
    return {"real_sign_sum": sign_sum, "real_count": count}


def _adapter(ada, d_optimizer, iteration=None):
    """adapt(metrics, global_batch) -> metrics, run once per iteration after the replicas.
    With ADA: the summed sign statistics go into the controller, which adjusts p after every
    4th iteration, and the metrics gain ada_p (p after this iteration, i.e. the p of the next
    one) and ada_rt (r_t at the last adjustment). Without ADA: the metrics as they are.
    iteration: () -> the 0-based index of this iteration (default: from D's optimizer,
    which makes one update per iteration in the papers' families)."""
    if ada is None:
        return lambda metrics, global_batch: metrics

    def adapt(metrics, global_batch):
        metrics = dict(metrics)
        ada.accumulate_stats(metrics.pop("real_sign_sum"), metrics.pop("real_count"))
        # D's optimizer made one update per iteration, this one included (it is in the
        # checkpoint, so the count resumes exactly): the 0-based index of this iteration.
        index = iteration() if iteration is not None else d_optimizer.iterations - 1
        ada.maybe_adjust(index, global_batch)
        return dict(metrics, ada_p=ada.p.read_value(), ada_rt=ada.rt.read_value())
    return adapt


def _update(optimizer, tape, scaled_loss, model):
    """One optimizer step on `model`'s trainable variables from `tape`'s gradient."""
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))


def _discriminator_stats(real_logits, fake_logits):
    """Mean logits and D's accuracy on real and fake: what the log and health checks read."""
    acc_real, acc_fake = losses.discriminator_accuracy(real_logits, fake_logits)
    return {"d_real": tf.reduce_mean(real_logits), "d_fake": tf.reduce_mean(fake_logits),
            "acc_real": acc_real, "acc_fake": acc_fake}


def _replicated(strategy, replica_step, ema_update):
    """Run replica_step on every replica, update the EMA, and average the metrics (sum the
    SUMMED statistics)."""
    def run(*args):
        per_replica = strategy.run(replica_step, args=args)
        if ema_update:
            ema_update()
        op = tf.distribute.ReduceOp
        return {k: strategy.reduce(op.SUM if k in SUMMED else op.MEAN, v, axis=None)
                for k, v in per_replica.items()}
    return run


def paired_variables(generator, ema_generator):
    """[(ema variable, generator variable)] of a generator and its clone, matched by path
    (a clone may list them in another order, e.g. when the original model also holds one
    as an attribute), or in list order where paths are not unique."""
    ours, theirs = generator.variables, ema_generator.variables
    paths = [v.path for v in ours]
    if len(set(paths)) == len(paths) and sorted(paths) == sorted(v.path for v in theirs):
        by_path = {v.path: v for v in ours}
        return [(e, by_path[e.path]) for e in theirs]
    return list(zip(theirs, ours))


def make_ema_update(generator, ema_generator, decay):
    """Exponential moving average of G's weights, ema <- decay * ema + (1 - decay) * w,
    run after each G update; the averaged generator is the one sampled and exported."""
    pairs = [(e, v) for e, v in paired_variables(generator, ema_generator)
             if "float" in str(v.dtype)]

    def update():
        for ema_var, var in pairs:
            ema_var.assign(decay * ema_var + (1.0 - decay) * var)
    return update


class _WithGrapplerOptions:
    """A tf.function called with Grappler `options` (tf.config.optimizer's names) in force
    during each call, and the previous ones back after it. TensorFlow optimizes a function's
    graph when it is first called, with the options in force then, so these apply to this
    function's graphs only. Everything else is the tf.function's own
    (get_concrete_function, experimental_get_tracing_count, ...)."""

    def __init__(self, function, options):
        self._function, self._options = function, dict(options)

    def __call__(self, *args):
        saved = tf.config.optimizer.get_experimental_options()
        tf.config.optimizer.set_experimental_options(self._options)
        try:
            return self._function(*args)
        finally:
            # options that were not set before are put back to TensorFlow's default (on)
            tf.config.optimizer.set_experimental_options(
                {k: saved.get(k, True) for k in self._options})

    def __getattr__(self, name):
        return getattr(self._function, name)


# The steps are written with TensorFlow's own control flow (tf.cond, tf.where) and Python
# loops over layers only, so AutoGraph has nothing to convert; skipping its source-to-source
# pass makes a step's first call 21-30 % cheaper (benchmarks/bench_trace.py, which sets
# this to True for its comparison arm).
AUTOGRAPH = False


def _compile(fn, strategy, jit_compile, grappler_options=None):
    """tf.function over the whole step; XLA on a single device when asked. The batch
    dimension may vary (an epoch's partial last batch): reduce_retracing makes the second
    batch size trace a shape-generic graph instead of one graph per size.
    grappler_options: Grappler options for this step's graphs only (_WithGrapplerOptions).

    Under several replicas the step stays un-jitted: the optimizers' cross-replica
    all-reduce (a merge_call) cannot live inside an XLA cluster.
    """
    single = strategy.num_replicas_in_sync == 1
    step = tf.function(fn, jit_compile=bool(jit_compile and single), reduce_retracing=True,
                       autograph=AUTOGRAPH)
    return _WithGrapplerOptions(step, grappler_options) if grappler_options else step


def make_sl_stylegan_step(generator, discriminator, g_optimizer, d_optimizer, rng, *,
                          draw_inputs, r1_every, strategy=None, r1_weight=losses.R1_WEIGHT,
                          jit_compile=False, augment=None, value_range=(0.0, 1.0),
                          ema_update=None, class_probabilities=None, mode_seeking=0.0):
    """Train step of SL-StyleGAN: least squares (+1 real, -1 fake, G aims at 0) and R1.

    draw_inputs(normal, n) -> [z, noise] for n images (the family's Family.draw_inputs).
    r1_every K (the run's setting; the paper's 1 is the family's default): K = 1 takes R1 on
    every iteration, a graph without any schedule. K > 1: lazy R1 (StyleGAN2): the penalty
    only on iterations 0, K, 2K, ... (D's update count), with weight K * r1_weight; the other
    iterations run D on the reals once, without the penalty's gradient passes, and report
    r1 = 0. One graph (a tf.cond on the count).

    Options beyond the paper: augment (see the module docstring: DiffAugment or ADA before
    D); with it, R1 is taken on the augmented reals D actually sees. ema_update (from
    make_ema_update). class_probabilities (K,): a conditional G and D, trained on
    (images, labels) batches. mode_seeking lambda > 0: G's loss gains MSGAN's mode-seeking
    term over the pairs of adjacent rows of its batch (which then share their labels);
    0 is off and builds exactly the step without it.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    ada = _ada(augment)
    draw_aug, aug = _augmenter(rng, augment, value_range)
    draw_labels = _label_drawer(rng, class_probabilities, ("fake_d", "fake_g"))
    adapt = _adapter(ada, d_optimizer)

    def real_pass(real_in, labels):
        """(D's logits on the reals (with their labels when conditional), the R1 term
        added to D's loss)."""
        def critic(images):
            return _critic(discriminator, images, labels)
        if r1_every == 1:
            return losses.discriminator_with_r1(critic, real_in, r1_weight)
        return tf.cond(
            d_optimizer.iterations % r1_every == 0,
            lambda: losses.discriminator_with_r1(critic, real_in, r1_weight * r1_every),
            lambda: (critic(real_in), tf.constant(0.0)))

    def replica_step(real, real_labels, z_d, noise_d, z_g, noise_g, fake_labels, aug_params):
        # real: (b, R, R, 3) in [0, 1]; z: (b, latent_dim); noise: (b, R, R, 1), b = local batch
        # labels (conditional only): (b,) int32
        local_batch = tf.shape(real)[0]
        z_d, noise_d, z_g, noise_g, fake_labels, aug_params = (
            _replica_slice(t, local_batch)
            for t in (z_d, noise_d, z_g, noise_g, fake_labels, aug_params))
        if mode_seeking:       # G's pairs (rows 2k, 2k + 1) share their class
            fake_labels = dict(fake_labels, fake_g=_pair_labels(fake_labels.get("fake_g")))
        labels = dict(real_labels, **fake_labels)

        # (1) Update D: minimise (D(x) - 1)^2 + (D(G(z)) + 1)^2 + 5 * ||grad_x D(x)||^2
        fake = generator(with_labels([z_d, noise_d], labels.get("fake_d")), training=True)
        with tf.GradientTape() as d_tape:
            real_in = aug(real, aug_params.get("real"))
            real_logits, r1 = real_pass(real_in, labels.get("real"))
            real_logits = tf.cast(real_logits, tf.float32)
            fake_logits = _critic(discriminator, aug(fake, aug_params.get("fake_d")),
                                  labels.get("fake_d"))
            d_ls = losses.lsgan_discriminator_loss(real_logits, fake_logits)
            d_loss = d_ls + r1
            d_scaled = d_loss / replicas
        _update(d_optimizer, d_tape, d_scaled, discriminator)

        # (2) Update G: minimise D(G(z))^2 with fresh z and noise
        with tf.GradientTape() as g_tape:
            fake_g = generator(with_labels([z_g, noise_g], labels.get("fake_g")), training=True)
            fake_g_logits = _critic(discriminator, aug(fake_g, aug_params.get("fake_g")),
                                    labels.get("fake_g"))
            g_loss = losses.lsgan_generator_loss(fake_g_logits)
            # + lambda / (L_ms + eps) with --mode-seeking (g_loss logs the LS part alone)
            g_scaled = _with_mode_seeking(g_loss, mode_seeking, fake_g, z_g) / replicas
        _update(g_optimizer, g_tape, g_scaled, generator)
        return dict(d_loss=d_loss, g_loss=g_loss, r1=r1,
                    **_discriminator_stats(real_logits, fake_logits),
                    **_real_sign_stats(ada, real_logits, fake_logits))

    run_replicas = _replicated(strategy, replica_step, ema_update)

    def step(batch):
        real, real_labels = _split_batch(batch)
        n = _global_batch(strategy, real)
        z_d, noise_d = draw_inputs(rng.normal, n)
        z_g, noise_g = draw_inputs(rng.normal, n)
        fake_labels = draw_labels(n)
        aug_params = draw_aug(n, _resolution(strategy, real))
        return adapt(run_replicas(real, real_labels, z_d, noise_d, z_g, noise_g, fake_labels,
                                  aug_params), n)

    return _compile(step, strategy, jit_compile, R1_GRAPPLER_OPTIONS)


def make_dcgan_step(generator, discriminator, g_optimizer, d_optimizer, rng, *,
                    draw_inputs, strategy=None, jit_compile=False, augment=None,
                    value_range=(-1.0, 1.0), ema_update=None, class_probabilities=None,
                    mode_seeking=0.0):
    """Train step of DCGAN: binary cross-entropy, non-saturating G loss.

    draw_inputs(normal, n) -> z (n, latent_dim) (the family's Family.draw_inputs).

    As in the PyTorch DCGAN the source project follows, one batch of fakes serves both
    updates: D sees it detached, then G is scored by the freshly updated D on it.
    Options beyond the paper: augment (see the module docstring: DiffAugment or ADA before
    D), and ema_update. class_probabilities (K,): a conditional G and D, trained on
    (images, labels) batches; the one fake batch has one set of labels.

    mode_seeking lambda > 0 (Mao et al. 2019, an option beyond the paper): G's loss gains
    lambda / (L_ms + eps), L_ms over the pairs of adjacent rows of the one fake batch (rows
    2k and 2k + 1, given the same label). MSGAN's authors draw a second z for the same
    labels and run G on a doubled batch; pairing rows of the batch G already makes costs
    nothing extra (one G pass, one D pass on the fakes, as without the option), at the price
    of B / 2 pairs instead of B. 0 is off and builds exactly the step without it.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    ada = _ada(augment)
    draw_aug, aug = _augmenter(rng, augment, value_range)
    draw_labels = _label_drawer(rng, class_probabilities, ("fake_d",))  # one fake batch
    adapt = _adapter(ada, d_optimizer)

    def replica_step(real, real_labels, z, fake_labels, aug_params):
        # real: (b, R, R, 3) in [-1, 1]; z: (b, latent_dim); labels (conditional): (b,) int32
        local_batch = tf.shape(real)[0]
        z, fake_labels, aug_params = (_replica_slice(t, local_batch)
                                      for t in (z, fake_labels, aug_params))
        real_label, fake_label = real_labels.get("real"), fake_labels.get("fake_d")
        if mode_seeking:       # the pairs (rows 2k, 2k + 1) share their class
            fake_label = _pair_labels(fake_label)
        with tf.GradientTape() as g_tape:
            fake = generator(with_labels(z, fake_label), training=True)

        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        with tf.GradientTape() as d_tape:
            real_logits = _critic(discriminator, aug(real, aug_params.get("real")), real_label)
            fake_in = aug(tf.stop_gradient(fake), aug_params.get("fake_d"))
            fake_logits = _critic(discriminator, fake_in, fake_label)
            d_loss = losses.bce_discriminator_loss(real_logits, fake_logits)
            d_scaled = d_loss / replicas
        _update(d_optimizer, d_tape, d_scaled, discriminator)

        # (2) Update G: maximise log D(G(z)), scored by the updated D
        with g_tape:
            fake_logits_g = _critic(discriminator, aug(fake, aug_params.get("fake_g")),
                                    fake_label)
            g_loss = losses.bce_generator_loss(fake_logits_g)
            # + lambda / (L_ms + eps) with --mode-seeking (g_loss logs the BCE part alone)
            g_scaled = _with_mode_seeking(g_loss, mode_seeking, fake, z) / replicas
        _update(g_optimizer, g_tape, g_scaled, generator)
        return dict(d_loss=d_loss, g_loss=g_loss, **_discriminator_stats(real_logits, fake_logits),
                    **_real_sign_stats(ada, real_logits, fake_logits))

    run_replicas = _replicated(strategy, replica_step, ema_update)

    def step(batch):
        real, real_labels = _split_batch(batch)
        n = _global_batch(strategy, real)
        z = draw_inputs(rng.normal, n)
        fake_labels = draw_labels(n)
        aug_params = draw_aug(n, _resolution(strategy, real))
        return adapt(run_replicas(real, real_labels, z, fake_labels, aug_params), n)

    return _compile(step, strategy, jit_compile)
