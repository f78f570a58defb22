"""Train step of StyleGAN2-ADA (Karras et al. 2020), as NVlabs' stylegan2-ada-pytorch runs it
(training/loss.py StyleGAN2Loss, training/training_loop.py): one compiled function per
iteration, its four phases in NVlabs' order.

    Gmain  every iteration     G minimises softplus(-D(G(z)))                 (one Adam step)
    Greg   every PL_EVERY = 4  path-length penalty x pl_weight, times 4      (one Adam step)
    Dmain  every iteration     D minimises softplus(D(G(z))) + softplus(-D(x)) (one Adam step)
    Dreg   every r1_every = 16 R1 gamma/2 sum(grad_x D(x)^2), times 16        (one Adam step)

A regularised phase is its own optimizer step, and its loss is multiplied by its interval
k; the optimizers of a lazily regularised network use lr * k/(k+1) and beta ** (k/(k+1))
(components.make_optimizer with the family's reg_intervals, lazy_ratio). r1_every = 1 is NVlabs'
non-lazy 'Dboth': R1 joins D's main loss in one step, no correction. pl_weight = 0 (the
'cifar' configuration) skips Greg; G's optimizer keeps its correction, as in NVlabs,
whose Greg phase then steps with no gradient.

Every G pass maps z (and its class) to ws (B, num_ws, w_dim), mixes styles with
probability style_mixing (ws[:, cutoff:] from a second z, cutoff uniform in [1, num_ws)),
and synthesises from ws and fresh per-layer noise images. After each mapping pass on the
main z (Gmain, Greg, Dmain; not the mixing z) the mapping network's w_avg moves towards
the batch's mean w with decay W_AVG_DECAY = 0.995 (NVlabs does this inside its mapping
network; here the step does it). After the four phases G's EMA copy is updated with
NVlabs' half-life: beta = 0.5 ** (batch / ema_nimg), ema_nimg = ema_kimg * 1000, ramped
up as min(ema_nimg, images shown so far * ema_rampup); trainable weights are averaged,
w_avg is copied. Then ADA's p is adjusted every 4th iteration (steps._adapter): its
statistic E[sign(D(real))] counts every real pass of D (Dmain and Dreg), as NVlabs'.

Conditional runs: the mapping network takes the class (NVlabs' c embedding) and D projects
onto it; fake classes are drawn per phase from the class probabilities. Augmentation (ADA
or DiffAugment) runs inside D's critic, so R1 differentiates D(augment(x)) with respect to
the real images before augmentation, as NVlabs' run_D does; each real pass draws its own
augmentation.

Where the phases are due is a tf.cond on a checkpointed iteration counter (batch_idx, as
NVlabs names it), outside strategy.run (an optimizer step inside a cond inside a replica
function cannot synchronise the replicas): one graph for every iteration, no retracing.
The counter, the images shown (for the EMA ramp), pl_mean, w_avg (a generator variable),
the EMA weights and ADA's p are all checkpointed, so a run resumed anywhere in a
regularisation cycle draws and computes exactly what an uninterrupted run does.

Several replicas see exactly one device's computation: every random input is drawn for
the global batch, and replica k of R computes on global rows k, k + R, k + 2R, ... of
every batch, fakes and reals alike (_slice, _strided_reals), so that D's minibatch-stddev
groups are those one device forms; per-replica losses are divided by the number of
replicas, the path-length mean is summed over replicas before pl_mean moves (so its
gradient is the global batch's), w_avg moves by the mean w over all replicas, and ADA's
sign statistic is summed over them. The path-length batch is replicas * (local batch //
2), B // 2 on one device, drawn for that phase alone: G treats its images one by one, so
which of them a replica takes does not change the penalty. (NVlabs keeps one pl_mean and
one w_avg per GPU, each from its local batch, groups each GPU's rows for the minibatch
stddev, and takes the path length on the first half of each GPU's Greg z, gen_z[:B/2]:
the z are i.i.d., so any half is the same estimator.)
"""
import tensorflow as tf

from skingan import losses, steps
from skingan.conditional import with_labels
from skingan.steps import (SUMMED, _ada, _adapter, _augmenter, _compile, _critic,
                           _discriminator_stats, _global_batch, _label_drawer, _real_sign_stats,
                           _resolution, _split_batch, paired_variables)

PL_EVERY = 4            # NVlabs' G_reg_interval
R1_EVERY = 16           # NVlabs' D_reg_interval
PL_BATCH_SHRINK = 2
PL_DECAY = 0.01
W_AVG_DECAY = 0.995
# The four batches D sees per iteration, each augmented with its own parameters.
AUG_NAMES = ("real", "real_reg", "fake_d", "fake_g")


class StyleGAN2State(tf.Module):
    """The step's own state beyond networks and optimizers: the iteration counter the
    phases are scheduled on, the images shown (EMA ramp-up) and the path-length mean.
    Build it inside the strategy's scope."""

    def __init__(self, name="stylegan2"):
        super().__init__(name=name)
        scalar = dict(trainable=False)
        self.batch_idx = tf.Variable(0, dtype=tf.int64, name="batch_idx", **scalar)
        self.cur_nimg = tf.Variable(0, dtype=tf.int64, name="cur_nimg", **scalar)
        self.pl_mean = tf.Variable(0.0, dtype=tf.float32, name="pl_mean", **scalar)

    def checkpoint_items(self):
        return {"sg2_batch_idx": self.batch_idx, "sg2_cur_nimg": self.cur_nimg,
                "sg2_pl_mean": self.pl_mean}


def ema_beta(batch, cur_nimg, ema_kimg, ema_rampup=None):
    """G_ema's decay for one iteration of `batch` images after `cur_nimg` shown, a float64
    scalar tensor: 0.5 ** (batch / ema_nimg), ema_nimg = ema_kimg * 1000, and with a
    ramp-up min(ema_nimg, cur_nimg * ema_rampup)."""
    batch, cur_nimg = (tf.cast(t, tf.float64) for t in (batch, cur_nimg))
    ema_nimg = tf.constant(ema_kimg * 1000.0, tf.float64)
    if ema_rampup is not None:
        ema_nimg = tf.minimum(ema_nimg, cur_nimg * ema_rampup)
    return tf.pow(tf.constant(0.5, tf.float64), batch / tf.maximum(ema_nimg, 1e-8))


def find_w_avg(mapping):
    """The mapping network's non-trainable w_avg variable (w_dim,)."""
    found = [v for v in mapping.non_trainable_variables
             if "w_avg" in getattr(v, "path", v.name).split("/")[-1]]
    if len(found) != 1:
        raise ValueError(f"expected one w_avg variable in {mapping.name}, found {len(found)}")
    return found[0]


def make_ema_update(generator, ema_generator, ema_kimg, ema_rampup):
    """update(batch, cur_nimg): G_ema <- lerp(G, G_ema, beta) for trainable weights, copies
    of the others (w_avg), as NVlabs' training loop after each iteration."""
    pairs = [(e, v) for e, v in paired_variables(generator, ema_generator)
             if "float" in str(v.dtype)]

    def update(batch, cur_nimg):
        beta = ema_beta(batch, cur_nimg, float(ema_kimg),
                        None if ema_rampup is None else float(ema_rampup))
        for ema_var, var in pairs:
            if var.trainable:
                b = tf.cast(beta, var.dtype)
                ema_var.assign(var + b * (ema_var - var))
            else:
                ema_var.assign(var)
    return update


def _sanitised_update(optimizer, tape, scaled_loss, model):
    """One Adam step from `tape`'s gradient (scaled_loss computed under the tape), NaN
    gradients set to 0 and infinities to +-1e5 first (NVlabs' misc.nan_to_num before each
    phase's opt.step()). Variables the loss does not reach (the path-length penalty does
    not depend on the last ToRGB's bias, say) are left out of the step, moments and all,
    as torch's Adam skips a parameter whose grad is None."""
    pairs = []
    for g, v in zip(tape.gradient(scaled_loss, model.trainable_variables),
                    model.trainable_variables):
        if g is None:
            continue
        g = tf.where(tf.math.is_nan(g), tf.zeros_like(g), g)
        pairs.append((tf.where(tf.math.is_inf(g), tf.sign(g) * 1e5, g), v))
    optimizer.apply_gradients(pairs)


# Which rows of the global batch a replica holds. D's minibatch-stddev layer groups the
# rows it sees strided (row s of N joins group s mod N/G, NVlabs' reshape (G, -1, ...)), so
# one device's groups are the residue classes mod N/G. Replica k of R holds global rows
# k, k + R, k + 2R, ...: its groups are then exactly one device's groups (R divides N/G:
# the batch is a multiple of G x R, families._build_stylegan2), and D sees what one device
# sees. (Contiguous rows [k b, (k+1) b) would group other images together than one device,
# as NVlabs' per-GPU groups do: the same estimator, other numbers.) Everything that has
# rows follows the same assignment: the fakes' random inputs, their classes and ADA's
# parameters (_slice) and the real images and their classes (_strided_reals).

def _slice(tree, rows):
    """This replica's `rows` rows of every batched tensor in `tree` (a dict of tensors and
    lists of tensors, `rows` x replicas rows each): rows k, k + R, ... on replica k of R.
    Scalars (the style-mixing cutoff) are shared."""
    ctx = tf.distribute.get_replica_context()
    replica, replicas = ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync

    def one(t):
        return t if t.shape.rank == 0 else t[replica::replicas][:rows]
    return tf.nest.map_structure(one, tree)


def _strided_reals(tree):
    """The real rows (images, and their classes) this replica computes on: the data stream
    hands replica k the contiguous rows [k b, (k+1) b) of the global batch; gathered over
    the replicas (in replica order: the global batch) and taken strided as _slice takes
    the fakes' rows. The identity on one device."""
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync
    if replicas == 1:
        return tree
    replica = ctx.replica_id_in_sync_group
    # all_gather sends to the tensor's device. MultiWorkerMirroredStrategy with one device
    # per worker traces the replica function without a device scope, so the rows carry
    # none ("destinations can not be empty"): place them on the worker's device first.
    local = tf.distribute.get_strategy().extended.worker_devices[0]

    def one(t):
        with tf.device(t.device or local):
            t = tf.identity(t)
        everyone = ctx.all_gather(t, axis=0)[replica::replicas]
        return tf.reshape(everyone, [-1] + t.shape[1:].as_list())   # the static sizes back
    return tf.nest.map_structure(one, tree)


def make_stylegan2_step(generator, discriminator, g_optimizer, d_optimizer, rng, *,
                        draw_inputs, state, strategy=None, jit_compile=False,
                        augment=None, value_range=(-1.0, 1.0), ema_update=None,
                        class_probabilities=None, gamma=10.0, r1_every=R1_EVERY,
                        pl_weight=2.0, style_mixing=0.9, ema_generator=None, ema_kimg=10.0,
                        ema_rampup=None):
    """The compiled StyleGAN2-ADA iteration: step(batch) -> metrics (scalars).

    generator: Model([z, noise..., (c)]) with layers "mapping" (z[, c] -> ws) and
    "synthesis" ([ws, noise...] -> images); draw_inputs(normal, n) -> [z, noise...];
    state: a StyleGAN2State; the optimizers already carry the lazy-regularisation
    correction. ema_generator (with ema_kimg, ema_rampup): NVlabs' G_ema, updated here
    (ema_update, the other families' fixed-decay EMA, is not used).
    Metrics: d_loss and g_loss (main phases), r1 and pl (the R1 term gamma/2 E[|grad|^2]
    and the mean path-length penalty where their phase ran, else 0), D's statistics on
    Dmain, and ADA's p and r_t.
    """
    del ema_update
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    mapping, synthesis = generator.get_layer("mapping"), generator.get_layer("synthesis")
    num_ws = int(mapping.output.shape[1])
    w_avg = find_w_avg(mapping)
    ada = _ada(augment)
    draw_aug, aug = _augmenter(rng, augment, value_range, names=AUG_NAMES)
    phases_g = ("fake_gmain", "fake_greg", "fake_dmain")
    draw_labels = _label_drawer(rng, class_probabilities, phases_g)
    r1_weight = losses.stylegan2_r1_weight(gamma)
    lazy_r1 = r1_every > 1 and gamma != 0
    with_pl = pl_weight != 0
    update_ema = (make_ema_update(generator, ema_generator, ema_kimg, ema_rampup)
                  if ema_generator is not None else None)
    adapt = _adapter(ada, d_optimizer, iteration=lambda: state.batch_idx - 1)
    reduce_op = tf.distribute.ReduceOp

    def reduce(per_replica):
        return {k: strategy.reduce(reduce_op.SUM if k in SUMMED else reduce_op.MEAN, v,
                                   axis=None) for k, v in per_replica.items()}

    def draw_g(n):
        """One G pass's random inputs for n images: z, noise images, and the style-mixing
        z and cutoff (num_ws: no mixing)."""
        inputs = draw_inputs(rng.normal, n)
        g = {"z": inputs[0], "noise": list(inputs[1:])}
        if style_mixing > 0:
            cutoff = rng.uniform([], minval=1, maxval=num_ws, dtype=tf.int32)
            mix = rng.uniform([]) < style_mixing
            g["cutoff"] = tf.where(mix, cutoff, num_ws)
            g["z_mix"] = rng.normal(tf.shape(g["z"]))
        return g

    def mapped(g, label):
        """ws (b, num_ws, w_dim) with style mixing, and the batch mean of w (w_dim,)."""
        ws = mapping(with_labels(g["z"], label), training=True)
        w_mean = tf.reduce_mean(tf.cast(ws[:, 0], tf.float32), axis=0)
        if "cutoff" in g:
            ws_mix = mapping(with_labels(g["z_mix"], label), training=True)
            keep = tf.range(num_ws) < g["cutoff"]                       # (num_ws,)
            ws = tf.where(keep[None, :, None], ws, ws_mix)
        return ws, w_mean

    def synthesise(ws, g):
        return synthesis([ws] + g["noise"], training=True)

    def move_w_avg(w_mean):
        # w_avg <- lerp(mean w, w_avg, 0.995), as NVlabs' mapping network in training mode
        w_avg.assign(tf.cast(w_mean + W_AVG_DECAY * (tf.cast(w_avg, tf.float32) - w_mean),
                             w_avg.dtype))

    # ---- the four phases, each run on every replica -------------------------------------

    def g_main(real, g, labels, aug_params):
        b = tf.shape(real)[0]
        g, labels, aug_params = _slice((g, labels, aug_params), b)
        label = labels.get("fake_gmain")
        with tf.GradientTape() as tape:
            ws, w_mean = mapped(g, label)
            fake_logits = _critic(discriminator, aug(synthesise(ws, g), aug_params.get("fake_g")),
                                  label)
            g_loss = losses.logistic_generator_loss(fake_logits)
            scaled = g_loss / replicas
        _sanitised_update(g_optimizer, tape, scaled, generator)
        return {"g_loss": g_loss, "w_mean": w_mean}

    def g_reg(real, g, labels, pl_noise, pl_batch):
        half = tf.maximum(tf.shape(real)[0] // PL_BATCH_SHRINK, 1)
        g, labels, pl_noise = _slice((g, labels, pl_noise), half)
        label = labels.get("fake_greg")
        with tf.GradientTape() as tape:
            ws, w_mean = mapped(g, label)
            with tf.GradientTape() as pl_tape:
                pl_tape.watch(ws)
                images = tf.cast(synthesise(ws, g), tf.float32)
                out = tf.reduce_sum(images * pl_noise)
            lengths = losses.path_lengths(pl_tape.gradient(out, ws))          # (b/2,)
            ctx = tf.distribute.get_replica_context()
            total = ctx.all_reduce(reduce_op.SUM, tf.reduce_sum(lengths))
            penalty, pl_mean = losses.path_length_penalty(
                lengths, total / tf.cast(pl_batch, tf.float32), state.pl_mean, PL_DECAY)
            # this replica's share of mean_global(penalty) * pl_weight * PL_EVERY
            loss = (tf.reduce_sum(penalty) * pl_weight * PL_EVERY
                    / tf.cast(pl_batch, tf.float32))
        _sanitised_update(g_optimizer, tape, loss, generator)
        return {"pl": tf.reduce_mean(penalty), "pl_mean": tf.stop_gradient(pl_mean),
                "w_mean": w_mean}

    def d_main(real, real_labels, g, labels, aug_params):
        real, real_labels = _strided_reals((real, real_labels))
        b = tf.shape(real)[0]
        g, labels, aug_params = _slice((g, labels, aug_params), b)
        label, real_label = labels.get("fake_dmain"), real_labels.get("real")
        ws, w_mean = mapped(g, label)
        fake = tf.stop_gradient(synthesise(ws, g))

        def critic(x):
            return _critic(discriminator, aug(x, aug_params.get("real")), real_label)
        with tf.GradientTape() as tape:
            fake_logits = _critic(discriminator, aug(fake, aug_params.get("fake_d")), label)
            if lazy_r1 or gamma == 0:
                real_logits, r1 = tf.cast(critic(real), tf.float32), tf.constant(0.0)
            else:                                   # NVlabs' 'Dboth': R1 in the main step
                real_logits, r1 = losses.discriminator_with_r1(critic, real, r1_weight)
                real_logits = tf.cast(real_logits, tf.float32)
            d_loss = losses.logistic_discriminator_loss(real_logits, fake_logits)
            scaled = (d_loss + r1) / replicas
        _sanitised_update(d_optimizer, tape, scaled, discriminator)
        return dict(d_loss=d_loss, r1=r1, w_mean=w_mean,
                    **_discriminator_stats(real_logits, fake_logits),
                    **_real_sign_stats(ada, real_logits, fake_logits))

    def d_reg(real, real_labels, aug_params):
        real, real_labels = _strided_reals((real, real_labels))
        aug_params = _slice(aug_params, tf.shape(real)[0])
        real_label = real_labels.get("real")

        def critic(x):
            return _critic(discriminator, aug(x, aug_params.get("real_reg")), real_label)
        with tf.GradientTape() as tape:
            real_logits, r1 = losses.discriminator_with_r1(critic, real, r1_weight)
            scaled = r1 * r1_every / replicas
        _sanitised_update(d_optimizer, tape, scaled, discriminator)
        return dict(r1=r1, **_real_sign_stats(ada, real_logits))

    def step(batch):
        real, real_labels = _split_batch(batch)
        n = _global_batch(strategy, real)
        local = n // replicas
        pl_batch = replicas * tf.maximum(local // PL_BATCH_SHRINK, 1)
        resolution = _resolution(strategy, real)
        # Every iteration draws the same things in the same order, whichever phases run.
        g_in = {"gmain": draw_g(n), "greg": draw_g(pl_batch), "dmain": draw_g(n)}
        labels = draw_labels(n)
        labels = {k: (v[:pl_batch] if k == "fake_greg" else v) for k, v in labels.items()}
        pl_noise = rng.normal([pl_batch, resolution, resolution, 3]) / float(resolution)
        aug_params = draw_aug(n, resolution)
        idx = state.batch_idx

        def only(name):   # the labels of one phase's fakes ({} when unconditional)
            return {k: v for k, v in labels.items() if k == name}

        metrics = reduce(strategy.run(g_main, args=(real, g_in["gmain"], only("fake_gmain"),
                                                    aug_params)))
        move_w_avg(metrics.pop("w_mean"))

        def run_g_reg():
            out = reduce(strategy.run(g_reg, args=(real, g_in["greg"], only("fake_greg"),
                                                   pl_noise, pl_batch)))
            state.pl_mean.assign(out["pl_mean"])
            move_w_avg(out["w_mean"])
            return out["pl"]
        metrics["pl"] = (tf.cond(tf.equal(idx % PL_EVERY, 0), run_g_reg,
                                 lambda: tf.constant(0.0))
                         if with_pl else tf.constant(0.0))     # 'cifar': no Greg at all

        d_metrics = reduce(strategy.run(d_main, args=(real, real_labels, g_in["dmain"],
                                                      only("fake_dmain"), aug_params)))
        move_w_avg(d_metrics.pop("w_mean"))
        metrics.update(d_metrics)

        sign_keys = [k for k in SUMMED if k in d_metrics]

        def run_d_reg():
            out = reduce(strategy.run(d_reg, args=(real, real_labels, aug_params)))
            return [out["r1"]] + [out[k] for k in sign_keys]
        if lazy_r1:    # else R1 ran inside Dmain ('Dboth') or gamma is 0
            reg = tf.cond(tf.equal(idx % r1_every, 0), run_d_reg,
                          lambda: [tf.constant(0.0)] + [tf.constant(0.0) for _ in sign_keys])
            metrics["r1"] = metrics["r1"] + reg[0]
            for key, value in zip(sign_keys, reg[1:]):
                metrics[key] = metrics[key] + value

        if update_ema is not None:
            update_ema(n, state.cur_nimg)
        state.cur_nimg.assign_add(tf.cast(n, tf.int64))
        state.batch_idx.assign_add(1)
        return adapt(metrics, n)

    # R1 and the path length are double backwards through D's and G's conv + bias + lrelu:
    # the remapper's `remapper failed` line where oneDNN is on (steps.R1_GRAPPLER_OPTIONS)
    return _compile(step, strategy, jit_compile, steps.R1_GRAPPLER_OPTIONS)
