"""train.py --check-run NAME: read every file of a run folder and print one line per file,
ok or what is wrong. Checkpoints are restored into the networks the run's settings build
and exports are loaded, as training and generate.py read them; the logs in the run's
Results folder (losses.csv, metrics.csv) are parsed and compared with the run's header
and its newest checkpoint; nothing is written. Run it before copying a run to another
machine (and after).

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


def check_run(models_dir, run, results_dir=None, log=print):
    """Check every file of run `run` in `models_dir`, and its logs in `results_dir`/`run`
    when given, one line each through `log`. Raises UserError (exit 2) when any is
    damaged; returns the number of files checked."""
    run_dir = os.path.join(models_dir, run)
    if not os.path.isdir(run_dir):
        raise UserError(f"no run folder {run_dir}")
    files = list_files(run_dir)
    verdicts = {rel: check_plain_file(run_dir, rel) for rel in files}
    verdicts.update(check_checkpoints(run_dir, files))
    out_dir = None if results_dir is None else os.path.join(results_dir, run)
    if out_dir and os.path.isdir(out_dir):
        restoring = [int(m.group(1)) for rel, (status, _) in verdicts.items()
                     if status == OK and (m := re.fullmatch(r"checkpoints/ckpt-(\d+)\.index",
                                                            rel))]
        logs = check_logs(out_dir, run_dir, max(restoring) if restoring else None)
        files += list(logs)
        verdicts.update(logs)
    bad = 0
    for rel in files:
        status, detail = verdicts[rel]
        bad += status == BAD
        log(f"{status:<8} {rel}: {detail}")
    if out_dir and not os.path.isdir(out_dir):
        log(f"{NOTE:<8} {out_dir}: no Results folder (sample grids and logs; the run "
            "resumes without it)")
    if bad:
        raise UserError(f"run '{run}': {bad} of {len(files)} files are damaged (lines "
                        "above); train.py resumes past damaged checkpoints and config.json, "
                        "generate.py exports a damaged generator.keras again")
    log(f"run '{run}': all {len(files)} files ok")
    return len(files)


def expected_headers(run_dir):
    """{log file: the header the run writes}, from its settings; {} when they cannot be
    read (config.json's own line says why)."""
    from skingan.config import LEGACY
    from skingan.families import FAMILIES
    try:
        settings = dict(LEGACY, **read_config(run_dir)["settings"])
        family = FAMILIES[settings["model"]]
    except Exception:  # noqa: BLE001  (a damaged or unknown config: reported on its own line)
        return {}
    ada = ("ada_p", "ada_rt") if settings.get("augment") == "ada" else ()
    # metrics.csv gains C_T and the near copies when the run holds images out (--exclude)
    scores = ["step", "swd", "fid"]
    return {"losses.csv": [["step", *family.metric_names, *ada]],
            "metrics.csv": [scores, scores + ["c_t", "near_copies"]]}


def check_logs(out_dir, run_dir, resume_step):
    """{'<Results>/<run>/<log>': (status, detail)} for the CSV logs a run appends to: torn
    rows (half written when the disk filled up or the process was killed), a header the
    run does not write, steps out of order, and rows after the newest checkpoint that
    restores (`resume_step`; None: no checkpoint restores)."""
    from skingan.fileio import read_csv_log
    label = "/".join(os.path.normpath(out_dir).split(os.sep)[-2:])   # Results/<run>
    headers = expected_headers(run_dir)
    verdicts = {}
    for name in ("losses.csv", "metrics.csv"):
        path = os.path.join(out_dir, name)
        if not os.path.exists(path):
            continue
        rel = f"{label}/{name}"
        try:
            header, rows, torn = read_csv_log(path)
        except OSError as err:
            verdicts[rel] = (BAD, f"cannot be read ({checkpoints.one_line(err)})")
            continue
        accepted = headers.get(name)          # the headers this run can write, or None
        steps = [int(float(row[0])) for row in rows]
        disorder = next((i for i in range(1, len(steps)) if steps[i] <= steps[i - 1]), None)
        if torn:
            number, why = torn[0]
            more = f" (and {len(torn) - 1} more)" if len(torn) > 1 else ""
            verdicts[rel] = (BAD, f"a torn row at line {number}{more}: {why}; the next resume "
                                  "drops it")
        elif header is None or header[0] != "step" or (accepted and header not in accepted):
            verdicts[rel] = (BAD, f"header {','.join(header or [])!r} is not the run's "
                                  f"{' or '.join(repr(','.join(h)) for h in accepted or [['step', '...']])}; the next resume "
                                  "starts this log again, empty")
        elif disorder is not None:
            verdicts[rel] = (BAD, f"steps out of order: {steps[disorder - 1]} then "
                                  f"{steps[disorder]}")
        elif resume_step is not None and steps and steps[-1] > resume_step:
            later = [s for s in steps if s > resume_step]
            verdicts[rel] = (NOTE, f"{len(later)} rows after step {resume_step}, the newest "
                                   f"checkpoint (steps {later[0]}-{later[-1]}): the next "
                                   "resume drops them and trains those steps again")
        else:
            verdicts[rel] = (OK, f"{len(rows)} rows" + (f", steps {steps[0]}-{steps[-1]}"
                                                        if steps else ""))
    return verdicts


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
