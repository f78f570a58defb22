"""train.py --check-run NAME: read every file of a run folder and print one line per file,
ok or what is wrong. Checkpoints are restored into the networks the run's settings build
and exports are loaded, as training and generate.py read them; nothing is written. Run it
before copying a run to another machine (and after).

Each line is `<status> <file>: <detail>`, status one of
    ok       the file reads back and the run can use it
    note     a file the run does not use: set aside as damaged earlier, or left by an
             interrupted write; safe to delete once no longer wanted
    DAMAGED  the file does not read back (or cannot be used): the run falls back past it
"""
import os
import re

from skingan import checkpoints
from skingan.components import build_for_reading
from skingan.errors import UserError
from skingan.runs import CONFIG, LAST_GOOD_CONFIG, TRAINED_IMAGES, config_problem, read_config

OK, NOTE, BAD = "ok", "note", "DAMAGED"
DATA_FILE = re.compile(r"(ckpt-\d+)\.data-\d{5}-of-\d{5}")


def check_run(models_dir, run, log=print):
    """Check every file of run `run` in `models_dir`, one line each through `log`. Raises
    UserError (exit 2) when any is damaged; returns the number of files checked."""
    run_dir = os.path.join(models_dir, run)
    if not os.path.isdir(run_dir):
        raise UserError(f"no run folder {run_dir}")
    files = list_files(run_dir)
    verdicts = {rel: check_plain_file(run_dir, rel) for rel in files}
    verdicts.update(check_checkpoints(run_dir, files))
    bad = 0
    for rel in files:
        status, detail = verdicts[rel]
        bad += status == BAD
        log(f"{status:<8} {rel}: {detail}")
    if bad:
        raise UserError(f"run '{run}': {bad} of {len(files)} files are damaged (lines "
                        "above); train.py resumes past damaged checkpoints and config.json, "
                        "generate.py exports a damaged generator.keras again")
    log(f"run '{run}': all {len(files)} files ok")
    return len(files)


def list_files(run_dir):
    """Paths of every file below run_dir, relative to it, with '/' separators, sorted."""
    found = []
    for root, _dirs, names in os.walk(run_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), run_dir)
            found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def check_plain_file(run_dir, rel):
    """(status, detail) for a file that is not part of a checkpoint (those are done by
    check_checkpoints, which overrides these verdicts)."""
    path = os.path.join(run_dir, rel)
    name = os.path.basename(rel)
    if re.search(r"\.damaged(-\d+)?$", name):
        return NOTE, "set aside as damaged by an earlier run; not used"
    if is_leftover(rel):
        return NOTE, "left by an interrupted write; not used"
    if rel in (CONFIG, LAST_GOOD_CONFIG):
        problem = config_problem(path)
        return (BAD, problem) if problem else (OK, "the run's settings")
    if name.endswith(".keras"):
        from skingan.exports import DamagedExport, load_export
        try:
            model = load_export(path)
        except DamagedExport as err:
            return BAD, str(err).split(": ", 1)[-1]   # the message without the path
        return OK, f"loads: a generator of {int(model.outputs[0].shape[1])} px images"
    try:
        with open(path, "rb") as f:
            data = f.read()
        if rel == TRAINED_IMAGES:
            return OK, f"{len(data.decode('utf-8').split())} image ids"
    except (OSError, UnicodeDecodeError) as err:
        return BAD, f"cannot be read ({checkpoints.one_line(err)})"
    return OK, f"read ({len(data)} bytes)"


def check_checkpoints(run_dir, files):
    """{file: (status, detail)} for the files of the checkpoints folder: each kept
    checkpoint restored into the run's networks, its files sharing its verdict, and the
    manager's state file compared with what is on disk."""
    checkpoint_dir = os.path.join(run_dir, "checkpoints")
    kept = checkpoints.kept_checkpoints(checkpoint_dir)
    verdicts = {}
    for rel in files:  # data files whose .index is gone cannot be restored
        match = DATA_FILE.fullmatch(os.path.basename(rel))
        if rel.startswith("checkpoints/") and match:
            verdicts[rel] = (BAD, f"no {match.group(1)}.index beside it, so it cannot be "
                                  "restored (an interrupted save or an incomplete copy)")
    if "checkpoints/" + checkpoints.STATE_FILE in files:
        verdicts["checkpoints/" + checkpoints.STATE_FILE] = check_state(checkpoint_dir)
    if not kept:
        return verdicts
    restore, cannot = restorer(run_dir)
    for step, prefix in kept.items():
        problem = restore(prefix) if restore else cannot
        verdict = (BAD, f"does not restore ({problem})") if problem else \
            (OK, f"checkpoint ckpt-{step} restores")
        for path in checkpoints.checkpoint_files(prefix):
            verdicts["checkpoints/" + os.path.basename(path)] = verdict
    return verdicts


def restorer(run_dir):
    """(restore, None): restore(prefix) -> None or what is wrong, restoring into the
    networks the run's settings build; (None, why) when they cannot be built."""
    from skingan.config import LEGACY
    try:
        settings = dict(LEGACY, **read_config(run_dir)["settings"])
        parts = build_for_reading(settings)
    except Exception as err:  # noqa: BLE001  (no config, or one that builds nothing)
        return None, f"not checked: the run's settings do not build its networks ({err})"
    checkpoint = checkpoints.RunCheckpoint(parts)
    return (lambda prefix: checkpoints.try_restore(checkpoint, prefix)), None


def is_leftover(rel):
    """Temporary files of a write that did not finish: atomic_path's <name>.tmp-<pid>.<ext>,
    TensorFlow's ckpt-<step>_temp/ folder and checkpoint.tmp<hex> state files."""
    name = os.path.basename(rel)
    return ".tmp-" in name or "_temp/" in rel or name.startswith(
        checkpoints.STATE_FILE + ".tmp")


def check_state(checkpoint_dir):
    """(status, detail) for CheckpointManager's state file."""
    state = checkpoints.read_state(checkpoint_dir)
    if state is None:
        return BAD, "cannot be parsed (the next resume rewrites it from the checkpoints)"
    listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    missing = [name for name in listed if not os.path.exists(
        os.path.join(checkpoint_dir, name + ".index"))]
    if missing:
        return BAD, (f"lists {', '.join(missing)}, which the folder does not hold (the next "
                     "resume rewrites it from the checkpoints)")
    return OK, f"lists {len(listed)} checkpoint(s), newest {listed[-1] if listed else 'none'}"
