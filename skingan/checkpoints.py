"""A run's checkpoints, in one place: what is saved, how the newest good one is restored (on
one device or on every worker), which are kept, and how a damaged run is recovered.

What is saved (RunCheckpoint): the networks' variables, both optimizers, the step counter
and the random generator of the train step, the EMA generator and ADA's state when the run
has them, and, with --eval-every, the best quality score so far and the step it was scored
at (optional on restore: runs from before they were saved still load).

Restored (Checkpoints.restore, restore_newest): the newest checkpoint that reads back; newer
ones that do not are set aside (renamed *.damaged, never deleted). Under several workers the
chief picks it and every worker restores that same one.

Kept (Checkpoints.save, rotate): the newest --keep-checkpoints ones and, besides them, the
checkpoint of the step the run scored best, which rotation never deletes (when a better
score arrives, the old best becomes an ordinary checkpoint and may rotate away). A failed
save leaves no partial files behind; a full disk stops the run with one line.

A checkpoint ckpt-<step> is an .index file and its data file(s). tf.train.CheckpointManager
writes them and a small state file, `checkpoint`, listing them. Here the files on disk are
the truth: the state file is rewritten from them whenever it disagrees (a checkpoint was
set aside or rotated away, the state file was garbled or lost).
"""
import contextlib
import errno
import glob
import logging
import os
import re
import shutil

from skingan.errors import UserError

STATE_FILE = "checkpoint"    # tf.train.CheckpointManager's list of checkpoints
DAMAGED = ".damaged"         # suffix of a file set aside because it does not restore


class DiskFullError(UserError):
    """The disk filled while the run wrote a file; what was written before is intact."""


def one_line(err, limit=200):
    """An exception as one short line. TensorFlow prefixes its op errors with
    '{{function_node ...}} ', which says nothing to a user: dropped."""
    text = str(err).strip()
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", text).splitlines()[0] if text else ""
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_disk_full(err):
    """Whether `err` means no space (or quota) left: Python raises OSError(ENOSPC), while
    TensorFlow's checkpoint writer raises an OpError whose message says so."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    import tensorflow as tf
    return isinstance(err, tf.errors.OpError) and (
        "No space left on device" in str(err) or "Disk quota exceeded" in str(err))


def last_good(step):
    return f"the last good checkpoint is step {step}" if step else \
        "no checkpoint was saved yet"


@contextlib.contextmanager
def quiet_tensorflow_log():
    """Silence TensorFlow's Python warnings (a garbled state file is reported by us, in one
    line; update_checkpoint_state warns that it is deprecated)."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# ---- what is saved --------------------------------------------------------------------------

BEST_STEP = "best_step"      # the step of the best quality score (-1: none yet)
BEST_SCORE = "best_score"    # the best score itself (lower is better; +inf: none yet)


def saved_items(parts):
    """What every checkpoint of a run built as `parts` (components.Components) must hold.
    Keras 3 models are not traversed by tf.train.Checkpoint, so their variables go in as
    lists: weights, BatchNorm statistics and Dropout's random state alike."""
    items = dict(generator=list(parts.generator.variables),
                 discriminator=list(parts.discriminator.variables),
                 g_optimizer=parts.g_optimizer, d_optimizer=parts.d_optimizer,
                 step=parts.step, rng=parts.rng)
    if parts.ema_generator is not None:
        items["ema_generator"] = list(parts.ema_generator.variables)
    if parts.ada is not None:
        items.update(parts.ada.checkpoint_items())     # p, its accumulators and r_t
    if parts.step_state is not None:                   # StyleGAN2's counters and pl_mean
        items.update(parts.step_state.checkpoint_items())
    return items


class RunCheckpoint:
    """The tf.train.Checkpoint of one set of components (and of the run's quality tracker,
    when it scores): saved whole, restored with everything in saved_items() required and
    the best score and step optional (a checkpoint written before they were saved, or by
    the run while it did not score, leaves them at 'none yet')."""

    def __init__(self, parts, tracker=None):
        import tensorflow as tf
        self.parts = parts
        self.required = saved_items(parts)
        self.optional = {}
        if tracker is not None:
            self.optional = {BEST_SCORE: tracker.best, BEST_STEP: tracker.best_step}
        self.checkpoint = tf.train.Checkpoint(**self.required, **self.optional)

    @property
    def step(self):
        return self.parts.step

    @property
    def best_step(self):
        """The step of the best score so far, or None (no tracker, or no score yet)."""
        if BEST_STEP not in self.optional:
            return None
        step = int(self.optional[BEST_STEP].numpy())
        return step if step >= 0 else None

    def restore_from(self, prefix):
        """Restore checkpoint `prefix`; raises when it does not restore (see try_restore)."""
        try:
            _restore_all(self.checkpoint, prefix)
            return
        except Exception:
            absent = [k for k in self.optional if not _holds(prefix, k)] if self.optional \
                else []
            if not absent:
                raise
        # an older checkpoint without the best score or step: restore the rest; those keep
        # their 'none yet'. Its save counter is carried over, as a whole restore would.
        import tensorflow as tf
        root = tf.train.Checkpoint(**self.required, **{k: v for k, v in self.optional.items()
                                                       if k not in absent})
        _restore_all(root, prefix)
        self.checkpoint.save_counter.assign(root.save_counter)


def _restore_all(checkpoint, prefix):
    checkpoint.restore(prefix).expect_partial().assert_existing_objects_matched()


def _holds(prefix, name):
    """Whether checkpoint `prefix` holds the root variable `name` (False if unreadable)."""
    import tensorflow as tf
    try:
        return tf.train.load_checkpoint(prefix).has_tensor(f"{name}/.ATTRIBUTES/VARIABLE_VALUE")
    except Exception:  # noqa: BLE001  (an unreadable index: it holds nothing)
        return False


def read_best_step(checkpoint_dir):
    """The step the run scored best, as its newest readable checkpoint records it; None
    when no checkpoint records one (the run does not score, or was not scored yet).
    Only the index and one scalar are read."""
    import tensorflow as tf
    kept = kept_checkpoints(checkpoint_dir)
    for step in sorted(kept, reverse=True):
        try:
            reader = tf.train.load_checkpoint(kept[step])
            key = f"{BEST_STEP}/.ATTRIBUTES/VARIABLE_VALUE"
            if not reader.has_tensor(key):
                return None
            best = int(reader.get_tensor(key))
        except Exception:  # noqa: BLE001  (a damaged checkpoint: the next older one)
            continue
        return best if best >= 0 else None
    return None


# ---- restored, and recovered when damaged -----------------------------------------------

def checkpoint_files(prefix):
    """The files of checkpoint `prefix` that exist: its .index and its data shards."""
    pattern = glob.escape(prefix)
    return sorted(glob.glob(pattern + ".index")
                  + glob.glob(pattern + ".data-[0-9][0-9][0-9][0-9][0-9]-of-[0-9]*[0-9]"))


def kept_checkpoints(checkpoint_dir):
    """{step: prefix} of the checkpoints with an .index file in the folder, oldest first."""
    found = {}
    if os.path.isdir(checkpoint_dir):
        for name in os.listdir(checkpoint_dir):
            match = re.fullmatch(r"ckpt-(\d+)\.index", name)
            if match:
                found[int(match.group(1))] = os.path.join(checkpoint_dir, name[:-len(".index")])
    return dict(sorted(found.items()))


def try_restore(checkpoint, prefix):
    """Restore checkpoint `prefix` into `checkpoint` (a RunCheckpoint or a plain
    tf.train.Checkpoint, all of whose objects are required): None when every object of `checkpoint`
    got its value, else what went wrong, in one line.

    A damaged file raises almost anything (a truncated data file gives IndexError 'Read
    less bytes than requested', a garbled one DataLossError, a garbled index OpError), so
    every Exception counts as 'does not restore'. A failed restore may have assigned some
    variables already; the next successful one assigns all of them
    (assert_existing_objects_matched), so no mix of two checkpoints survives."""
    try:
        if isinstance(checkpoint, RunCheckpoint):
            checkpoint.restore_from(prefix)
        else:
            _restore_all(checkpoint, prefix)
    except Exception as err:  # noqa: BLE001  (see above)
        return one_line(err)
    return None


def read_state(checkpoint_dir):
    """The manager's state (a CheckpointState) or None when there is none or it cannot be
    parsed. TensorFlow itself returns None for a syntax error but raises for bytes that
    are not text, which would stop the manager from being built at all."""
    import tensorflow as tf
    try:
        with quiet_tensorflow_log():
            return tf.train.get_checkpoint_state(checkpoint_dir)
    except Exception:  # noqa: BLE001  (garbage in the file: treated as unreadable)
        return None


def restore_newest(checkpoint, checkpoint_dir, log):
    """On one device (or the chief): restore the newest checkpoint in `checkpoint_dir` that reads back and return the step
    it holds (0 when there is none). Newer ones that fail are set aside (renamed *.damaged)
    only once an older one has restored, each with one line saying so; when none restores,
    UserError, and nothing in the folder has changed."""
    kept = kept_checkpoints(checkpoint_dir)
    failed = []
    restored = None
    for step in sorted(kept, reverse=True):
        reason = try_restore(checkpoint, kept[step])
        if reason is None:
            restored = step
            break
        failed.append((kept[step], reason))
    if restored is None and failed:
        newest, reason = failed[0]
        raise UserError(
            f"no checkpoint in {checkpoint_dir} can be restored: "
            f"{', '.join(os.path.basename(p) for p, _ in failed)} are damaged or do not fit "
            f"the model these settings build ({os.path.basename(newest)}: {reason}); "
            "nothing was changed")
    for prefix, reason in failed:
        moved = set_aside(prefix)
        log(f"checkpoint {prefix} cannot be restored ({reason}); set aside as "
            f"{', '.join(moved)}; trying the next newest")
    sync_state(checkpoint_dir, [p for s, p in kept.items() if s <= (restored or 0)])
    return int(checkpoint.step.numpy()) if restored is not None else 0


def set_aside(path_or_prefix):
    """Rename a damaged file (or every file of checkpoint prefix) to <name>.damaged, or
    .damaged-2, ... if that name is taken. Returns the new names."""
    files = checkpoint_files(path_or_prefix) or [path_or_prefix]
    moved = []
    for path in files:
        target, n = path + DAMAGED, 1
        while os.path.exists(target):
            n += 1
            target = f"{path}{DAMAGED}-{n}"
        os.rename(path, target)
        moved.append(os.path.basename(target))
    return moved


def sync_state(checkpoint_dir, prefixes):
    """Make the state file list exactly `prefixes` (oldest first), keeping the manager's
    timestamps of those it knew, so that max_to_keep goes on deleting the oldest. Leaves a
    state file that already agrees untouched. An unparsable state file with no checkpoint
    left to list is set aside, since CheckpointManager cannot start on it."""
    import tensorflow as tf
    state_path = os.path.join(checkpoint_dir, STATE_FILE)
    state = read_state(checkpoint_dir)
    names = [os.path.basename(p) for p in prefixes]
    if not names:
        if os.path.exists(state_path) and state is None:
            set_aside(state_path)
        return
    if state is not None:
        listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
        if listed == names and os.path.basename(state.model_checkpoint_path) == names[-1]:
            return
        known = dict(zip(listed, state.all_model_checkpoint_timestamps))
    else:
        known = {}
    stamps = [known.get(name, os.path.getmtime(prefix + ".index"))
              for name, prefix in zip(names, prefixes)]
    preserved = min(stamps) - 1.0
    if state is not None and state.last_preserved_timestamp:
        preserved = min(preserved, state.last_preserved_timestamp)
    with quiet_tensorflow_log():  # relative names, as the manager writes them
        tf.compat.v1.train.update_checkpoint_state(
            checkpoint_dir, names[-1], names, all_model_checkpoint_timestamps=stamps,
            last_preserved_timestamp=preserved)




def restore(strategy, checkpoint, folder, log):
    """Restore the run's newest good checkpoint on this device or on every worker; return
    its step (0 when the run has none yet).

    On one device: restore_newest. Under several workers the chief picks it (restore_newest,
    which may set damaged ones aside) and tells the others its step; each other worker then
    restores exactly that checkpoint from the chief's folder, so all continue from the same
    state. A failure on any worker is told to all (UserError everywhere), so none is left
    waiting in a collective op."""
    from skingan import multiworker
    if multiworker.num_workers(strategy) == 1:
        return restore_newest(checkpoint, folder.checkpoint_dir, log)
    failed = None
    step = 0
    if multiworker.is_chief(strategy):
        try:
            step = restore_newest(checkpoint, folder.checkpoint_dir, log)
        except UserError as err:
            failed = err
    # The chief's step, or -1 when it failed (the others give 0).
    chief_step = int(multiworker.sum_over_workers(strategy, -1 if failed else step))
    if chief_step < 0:
        raise failed or UserError("the chief could not restore the run's checkpoints "
                                  "(its own error says why)")
    if not multiworker.is_chief(strategy) and chief_step > 0:
        prefix = os.path.join(folder.chief.checkpoint_dir, f"ckpt-{chief_step}")
        reason = try_restore(checkpoint, prefix)
        if reason is not None:
            failed = UserError(f"this worker cannot restore the chief's checkpoint {prefix} "
                               f"({reason}); is the chief's run folder on storage every "
                               "machine shares?")
        step = chief_step
    if multiworker.sum_over_workers(strategy, 1 if failed else 0):
        raise failed or UserError("another worker could not restore the chief's checkpoint "
                                  "(its own error says why)")
    return step


# ---- kept ----------------------------------------------------------------------------------

class Checkpoints:
    """A training run's checkpoints: the loop restores and saves through this, the events
    call save() and save_best().

    keep: how many of the newest checkpoints rotation keeps (0: all); the best-scoring one
    (state.best_step) is kept besides them. Each save also exports the shown generator
    (the EMA one with --ema) as generator.keras."""

    def __init__(self, state, folder, keep, log=print):
        self.state, self.folder, self.keep, self.log = state, folder, keep, log
        self.last_saved = None      # the step of the newest checkpoint this run wrote or restored

    def restore(self):
        """Restore the newest good checkpoint (every worker alike) before anything is
        written: when none restores, the folder is left exactly as it was."""
        self.last_saved = restore(self.state.parts.strategy, self.state, self.folder,
                                  self.log)
        return self.last_saved

    def save(self, step):
        """Checkpoint step `step`, rotate, and export generator.keras; nothing to do when
        this step is saved already (a best score and the schedule on the same step).

        A full disk stops the run with one line (DiskFullError); the failed write's partial
        files are removed, so the previous checkpoint and export stay as they were."""
        if self.last_saved == step:
            return
        import tensorflow as tf
        self.state.step.assign(step)
        directory = self.folder.checkpoint_dir
        prefix = os.path.join(directory, f"ckpt-{step}")
        with disk_full_stops(f"checkpoint {prefix}", last_good(self.last_saved)):
            # the manager writes the files and the state file; rotation is ours (below)
            save_files(tf.train.CheckpointManager(self.state.checkpoint, directory,
                                                  max_to_keep=None), step)
            rotate(directory, self.keep, self.state.best_step)
        previous, self.last_saved = self.last_saved, step
        old_export = (f"generator.keras is still the export of step {previous}" if previous
                      else "no generator.keras was exported yet")
        with disk_full_stops(os.path.join(self.folder.run_dir, "generator.keras"),
                             f"{last_good(step)} ({old_export})"):
            self.folder.export(self.state.parts.shown)  # atomic: the old export stays on failure

    def save_best(self, step):
        """Step `step` scored best so far (the tracker has recorded it): make sure its
        checkpoint exists, so that it can be kept and generated from (generate.py --best)."""
        self.save(step)


def rotate(checkpoint_dir, keep, best_step=None):
    """Delete the checkpoints that are neither among the newest `keep` (0: keep all) nor the
    one of `best_step`, and make the state file list those left."""
    kept = kept_checkpoints(checkpoint_dir)
    if not keep or len(kept) <= keep:
        return
    newest = sorted(kept)[-keep:]
    for step, prefix in kept.items():
        if step not in newest and step != best_step:
            for path in checkpoint_files(prefix):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
    sync_state(checkpoint_dir, list(kept_checkpoints(checkpoint_dir).values()))


def best_kept_step(checkpoint_dir):
    """The step of the run's best checkpoint, for generate.py --best: UserError in one line
    when the run records no best score yet, or its checkpoint is gone."""
    kept = kept_checkpoints(checkpoint_dir)
    best = read_best_step(checkpoint_dir)
    if best is None:
        raise UserError(f"{os.path.dirname(checkpoint_dir)} has no best checkpoint: the run "
                        "has not been scored yet (quality scores come every --eval-every "
                        "iterations; train further, or give --step N)")
    if best not in kept:
        raise UserError(f"the run's best checkpoint (step {best}) is no longer in "
                        f"{checkpoint_dir}; kept: {', '.join(map(str, kept)) or 'none'}")
    return best


def save_files(manager, step):
    """manager.save(step). If it fails (a full disk, an interrupt), remove what the failed
    write left (the new checkpoint's files, TensorFlow's <prefix>_temp folder, temporary
    state files) and re-raise; the state file is replaced atomically by TensorFlow, so it
    still lists the previous checkpoints."""
    prefix = os.path.join(manager.directory, f"ckpt-{step}")
    existed = bool(checkpoint_files(prefix))
    try:
        manager.save(checkpoint_number=step)
    except BaseException:
        remove_partial_save(prefix, keep_checkpoint=existed)
        raise


def remove_partial_save(prefix, keep_checkpoint=False):
    folder = os.path.dirname(prefix)
    leftovers = glob.glob(glob.escape(prefix) + "_temp*")
    leftovers += glob.glob(os.path.join(glob.escape(folder), STATE_FILE + ".tmp*"))
    if not keep_checkpoint:  # a checkpoint of that step from before is not ours to remove
        leftovers += checkpoint_files(prefix)
    for path in leftovers:
        with contextlib.suppress(OSError):
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


@contextlib.contextmanager
def disk_full_stops(what, last_good):
    """Turn a full disk while writing `what` (None: the file the error names) into one line
    (DiskFullError, exit 2) saying what is still good; other errors pass unchanged."""
    try:
        yield
    except Exception as err:
        if not is_disk_full(err):
            raise
        what = what or getattr(err, "filename", None) or "the run's files"
        raise DiskFullError(
            f"disk full while writing {what}: {last_good}; free some space and rerun the "
            "same command to resume") from None
