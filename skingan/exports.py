"""Exported generators (<run>/generator.keras): loading one that may be damaged, and
exporting it again from the run's newest checkpoint that restores."""
import os
import zipfile

from skingan import checkpoints
from skingan.components import build_for_reading
from skingan.errors import UserError

EXPORT = "generator.keras"


class DamagedExport(UserError):
    """A .keras file that exists but does not load."""


def archive_problem(path):
    """None when `path` is a complete zip archive (a .keras file is one) whose members pass
    their checksums, else what is wrong, as a phrase. Keras reports a truncated archive
    as 'File not found', which is why this is checked first."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile:
        return f"not a complete .keras archive: {os.path.getsize(path)} bytes, truncated " \
               "or overwritten"
    except OSError as err:
        return f"unreadable: {err.strerror}"
    return f"its member {bad} fails its checksum" if bad else None


def load_export(path):
    """The keras.Model in a .keras file; DamagedExport saying what is wrong when it does not
    load (the caller checks that the file exists)."""
    import keras

    import dcgan  # noqa: F401  (registers the custom layers for deserialisation)
    import SL_StyleGAN  # noqa: F401
    import StyleGAN2  # noqa: F401
    problem = archive_problem(path)
    if problem is None:
        try:
            return keras.models.load_model(path, compile=False)
        except Exception as err:  # noqa: BLE001  (a foreign or garbled model: one line)
            problem = f"not a Keras model it can load: {checkpoints.one_line(err)}"
    raise DamagedExport(f"cannot load generator {path}: the file is damaged ({problem})")


def export_again(run_dir, settings, log):
    """Write <run_dir>/generator.keras again from the run's newest checkpoint that restores;
    a damaged export there is set aside first (generator.keras.damaged). Returns the
    checkpoint's step, or None when no checkpoint restores (then nothing is changed)."""
    from skingan.runs import RunFolder
    folder = RunFolder(os.path.dirname(run_dir), "", os.path.basename(run_dir))
    kept = checkpoints.kept_checkpoints(folder.checkpoint_dir)
    if not kept:
        return None
    parts = build_for_reading(settings)
    checkpoint = checkpoints.RunCheckpoint(parts)
    for step in reversed(kept):
        if checkpoints.try_restore(checkpoint, kept[step]) is None:
            path = os.path.join(run_dir, EXPORT)
            if os.path.exists(path):
                checkpoints.set_aside(path)
            folder.export(parts.shown)   # atomic, like the exports training writes
            return int(parts.step.numpy())
        log(f"checkpoint {kept[step]} does not restore either; trying an older one")
    return None
