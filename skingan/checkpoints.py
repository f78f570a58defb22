"""A run's checkpoints when some of them may be damaged: restore the newest one that reads
back, set aside (never delete) the newer ones that do not, and save without leaving the
partial files of a failed write behind.

A checkpoint ckpt-<step> is an .index file and its data file(s). tf.train.CheckpointManager
also keeps a small state file, `checkpoint`, listing them; it decides what max_to_keep
deletes. Here the files on disk are the truth: the state file is rewritten from them
whenever it disagrees (a checkpoint was set aside, the state file was garbled or lost), so
the manager built afterwards keeps and deletes the right ones.
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
    """Restore checkpoint `prefix` into `checkpoint`: None when every object of `checkpoint`
    got its value, else what went wrong, in one line.

    A damaged file raises almost anything (a truncated data file gives IndexError 'Read
    less bytes than requested', a garbled one DataLossError, a garbled index OpError), so
    every Exception counts as 'does not restore'. A failed restore may have assigned some
    variables already; the next successful one assigns all of them
    (assert_existing_objects_matched), so no mix of two checkpoints survives."""
    try:
        checkpoint.restore(prefix).expect_partial().assert_existing_objects_matched()
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
    """Restore the newest checkpoint in `checkpoint_dir` that reads back and return the step
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


def save(manager, step):
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
