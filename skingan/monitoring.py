"""What a training run records as it goes: the loss log, the loss curve, TensorBoard, and
warnings when training has gone unhealthy (D has won, samples have collapsed)."""
import math
import os

import numpy as np
import tensorflow as tf

from skingan.fileio import CsvAppender, atomic_path, csv_text, read_csv_log


def restart_csv(path, fields, resume_step):
    """Rewrite the per-step CSV at `path` as a resumed run needs it: header `fields`, then
    only the complete rows of steps <= resume_step (later ones are about to be trained again
    from the checkpoint; a torn row, half written when the disk filled up or the process was
    killed, is left out: fileio.read_csv_log). A missing file, or one with another header,
    starts empty. The rewrite is atomic. Returns the kept rows (lists of strings)."""
    header, rows, _torn = read_csv_log(path)
    kept = [row for row in rows if int(float(row[0])) <= resume_step] \
        if header == list(fields) else []
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            f.write(csv_text([fields] + kept))
    return kept


class TrainingLog:
    """One CSV row per step (`losses.csv`), a loss curve (`losses.png`) and TensorBoard
    scalars and images (`tensorboard/`), all under the run's Results folder.

    On resume the rows after the restored step are dropped: those steps are about to be
    trained again from the checkpoint, and the log must describe the run that exists.
    """

    def __init__(self, results_dir, fields, resume_step=0):
        self.path = os.path.join(results_dir, "losses.csv")
        self.fields = ["step"] + list(fields)
        self.curve_path = os.path.join(results_dir, "losses.png")
        kept = restart_csv(self.path, self.fields, resume_step)
        self.rows = [[float(x) for x in row] for row in kept]
        self._file = CsvAppender(self.path)     # whole rows, one write per interval
        self.tensorboard = tf.summary.create_file_writer(os.path.join(results_dir, "tensorboard"))
        self._write_scalars = self._compile_scalar_writer()

    def add(self, step, metrics):
        """metrics: dict of floats for one step."""
        self.add_rows([(step, metrics)])

    def add_rows(self, rows):
        """rows: [(step, {name: float})], e.g. one log interval's steps, in order.

        The TensorBoard scalars of all the rows are written by one compiled call: eager
        summary ops cost ~0.4 ms each, 2 ms per step for six metrics, which is a sizeable
        share of a fast GPU step.
        """
        if not rows:
            return
        table = [[step] + [float(metrics[k]) for k in self.fields[1:]] for step, metrics in rows]
        self._file.append([[row[0]] + [f"{x:.6g}" for x in row[1:]] for row in table])
        self.rows += [[float(x) for x in row] for row in table]
        self._write_scalars(tf.constant([row[0] for row in table], tf.int64),
                            tf.constant([row[1:] for row in table], tf.float32))

    def _compile_scalar_writer(self):
        from tensorboard.plugins.scalar import metadata as scalar_plugin
        names, writer = self.fields[1:], self.tensorboard
        # what tf.summary.scalar writes, minus its name scope (here "while/") in the tag
        as_scalar = scalar_plugin.create_summary_metadata(display_name=None, description=None)

        def write(steps, values):
            # steps: (n,) int64; values: (n, len(names)) float32, one row per step
            with writer.as_default():
                for i in tf.range(tf.shape(steps)[0]):
                    for j, name in enumerate(names):
                        tf.summary.write(name, values[i, j], step=steps[i], metadata=as_scalar)
        return tf.function(write, input_signature=[
            tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, len(names)], tf.float32)])

    def scalars(self, step, values):
        """TensorBoard only: scalars that are not per-step losses (quality scores)."""
        with self.tensorboard.as_default(step=step):
            for key, value in values.items():
                tf.summary.scalar(key, value)

    def add_image(self, tag, image_uint8, step):
        with self.tensorboard.as_default(step=step):
            tf.summary.image(tag, image_uint8[None], max_outputs=1)

    def flush(self):
        self.tensorboard.flush()        # the CSV has no buffer: rows are written whole

    def plot(self, title=""):
        """Redraw the loss curve: raw per-step losses, faint, and a running mean on top;
        with ADA, its augmentation probability p on a second axis (right, 0 to 1)."""
        if len(self.rows) < 2:
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        data = np.asarray(self.rows)
        steps = data[:, 0]
        window = max(1, len(steps) // 50)
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        for name, color in (("d_loss", "tab:blue"), ("g_loss", "tab:orange")):
            values = data[:, self.fields.index(name)]
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1:], smooth, color=color, label=f"{name} (mean of {window})")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        if "ada_p" in self.fields:
            p_axis = ax.twinx()
            p_axis.plot(steps, data[:, self.fields.index("ada_p")], color="tab:green",
                        label="ADA p")
            p_axis.set_ylim(0.0, 1.0)
            p_axis.set_ylabel("ADA augmentation probability p")
            p_axis.legend(loc="upper right")
        fig.tight_layout()
        with atomic_path(self.curve_path) as tmp:
            fig.savefig(tmp)
        plt.close(fig)

    def close(self):
        self.flush()
        self._file.close()
        self.tensorboard.close()


def first_non_finite(rows):
    """(step, name, value) of the first NaN or Inf in [(step, {name: float})], else None."""
    for step, metrics in rows:
        for name, value in metrics.items():
            if not math.isfinite(value):
                return step, name, value
    return None


class HealthMonitor:
    """Warns, once per episode, when D has won or the samples have lost their diversity.

    D has won: over `window` consecutive steps D classified more than `threshold` of both
    real and fake images correctly; G then gets almost no useful gradient (the collapse the
    faithful DCGAN recipe shows on small dermoscopy sets within a few hundred steps).

    Lost diversity: a typical pair of samples (the median over all pairs of the grid's
    samples) is less than `min_diversity` times as far apart as a typical pair of real
    images, distances taken on 8 x 8 thumbnails (see `diversity`): different latents give
    nearly the same image, mode collapse. Calibrated on the demo data at 32 px (tests/
    test_monitoring.py): SL-StyleGAN's visibly collapsed grids at 700-1,000 iterations score
    0.32-0.33, DCGAN's varied grids at 200-300 iterations 0.72-0.92, real images 1.
    A conditional grid is judged class by class, each class's samples against its own real
    images (`ratios`).
    """

    def __init__(self, window=200, threshold=0.99, min_diversity=0.5, warmup_steps=200):
        self.window = window
        self.threshold = threshold
        self.min_diversity = min_diversity
        self.warmup_steps = warmup_steps
        self.d_won_streak = 0
        self.d_won_warned = False
        self.collapsed = set()   # what is below min_diversity now: {None} (unconditional) or labels

    def update(self, step, metrics):
        """Feed one step's metrics; returns a warning string or None."""
        if min(metrics["acc_real"], metrics["acc_fake"]) >= self.threshold:
            self.d_won_streak += 1
        else:
            self.d_won_streak = 0
            self.d_won_warned = False
        if self.d_won_streak >= self.window and not self.d_won_warned:
            self.d_won_warned = True
            return (f"WARNING step {step}: the discriminator has won for {self.d_won_streak} "
                    f"steps (accuracy >= {self.threshold:.0%} on real and fake, D loss "
                    f"{metrics['d_loss']:.3g}); the generator gets no useful gradient. Look at "
                    "the sample grids: if they are one texture, the run has collapsed. "
                    "Try a lower --lr, more data, or --model sl-stylegan (its R1 penalty "
                    "keeps D in check).")
        return None

    @staticmethod
    def diversity(images_uint8, thumbnail=8):
        """Median over all pairs of images of their RMS difference (pixels in [0, 1]) on
        `thumbnail` x `thumbnail` block means: 0 when all images are the same.

        Thumbnails compare what the eye compares in a grid (colour, shape, layout), not
        per-pixel noise, which SL-StyleGAN's noise inputs add even to collapsed samples;
        the median describes a typical pair, where a few odd samples would lift a mean.
        """
        x = np.asarray(images_uint8, np.float32) / 255.0          # (N, R, R, 3)
        n, side = x.shape[0], x.shape[1]
        size = min(thumbnail, side)
        block = side // size
        x = x[:, :size * block, :size * block].reshape(n, size, block, size, block, 3)
        x = x.mean(axis=(2, 4)).reshape(n, -1)                    # (N, size * size * 3)
        squared = np.sum(x * x, axis=1)
        d2 = squared[:, None] + squared[None, :] - 2.0 * (x @ x.T)  # pairwise squared
        pairs = np.triu_indices(n, 1)
        return float(np.median(np.sqrt(np.maximum(d2[pairs], 0.0) / x.shape[1])))

    def ratios(self, fake_uint8, real_diversity, labels=None):
        """{class: the samples' diversity over the real images'}, the figures the collapse
        check compares with `min_diversity`.

        Unconditional (labels None): one entry, key None, for the whole grid; real_diversity
        is a number. Conditional: labels (N,) gives each sample's class and real_diversity
        maps a class to the diversity of its own real images; each class's samples are
        judged against those alone. Pooling the rows would hide a grid whose every row
        repeats one lesion (the rows differ from one another). Classes with fewer than two
        samples or no real diversity are not judged."""
        if labels is None:
            if real_diversity <= 0:
                return {}
            return {None: self.diversity(fake_uint8) / real_diversity}
        fake, labels = np.asarray(fake_uint8), np.asarray(labels)
        found = {}
        for label in np.unique(labels):
            mine, real = fake[labels == label], real_diversity.get(int(label), 0.0)
            if len(mine) >= 2 and real > 0:
                found[int(label)] = self.diversity(mine) / real
        return found

    def check_samples(self, step, fake_uint8, real_diversity, labels=None, class_names=None):
        """A warning string when the grid's samples have collapsed (see the class docstring
        and `ratios`), else None. Once per episode: a class (or the whole unconditional
        grid) warns when it falls below `min_diversity` and not again until it has been
        above it; the one line names every class whose episode begins at this grid.
        class_names: label -> name for the message (default: the label)."""
        if step < self.warmup_steps:
            return None
        ratios = self.ratios(fake_uint8, real_diversity, labels)
        if not ratios:
            return None
        low = {c: r for c, r in ratios.items() if r < self.min_diversity}
        new = {c: r for c, r in low.items() if c not in self.collapsed}
        self.collapsed = set(low)
        if not new:
            return None
        if None in new:
            return (f"WARNING step {step}: the samples have lost their diversity (a "
                    f"typical pair of samples differs {new[None]:.0%} as much as a typical "
                    "pair of real images): mode collapse. Earlier checkpoints may be "
                    "better; see the sample grids.")
        name = (lambda c: class_names[c]) if class_names is not None else str
        classes = sorted(new)
        several = len(classes) > 1
        return (f"WARNING step {step}: the samples of class{'es' if several else ''} "
                f"{', '.join(name(c) for c in classes)} have lost their diversity (a typical "
                f"pair of {'a' if several else 'the'} class's samples differs "
                f"{', '.join(f'{new[c]:.0%}' for c in classes)} as much as a typical pair of "
                f"its real images): mode collapse within the class. Earlier checkpoints may "
                "be better; see the sample grid's row"
                f"{'s' if several else ''}.")
