"""The scripts' start: flag mistakes answer before TensorFlow is imported, and a Ctrl-C while
it is imported is one line and exit code 130, as later (issue 23, item 10).

A stand-in `tensorflow` package first on PYTHONPATH shows, without timing, whether and when
a script imports TensorFlow: one that fails loudly if imported, one that waits (a marker file
says it has begun) until it is interrupted.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import write_pngs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERRUPTED = "interrupted; nothing saved since the last checkpoint"   # train.py's line


def stand_in_tensorflow(folder, body):
    package = folder / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(body))
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), ROOT]))


@pytest.mark.parametrize("script,flags,message", [
    ("train.py", ["--resolution", "100"], "error: DCGAN resolution must be a power of two"),
    ("train.py", ["--model", "sl-stylegan", "--resolution", "4"],
     "error: SL-StyleGAN resolution must be"),
    ("train.py", ["--batch-size", "0"], "--batch-size: must be positive"),
    ("train.py", ["--data", "no/such/folder"], "error: data path not found"),
    ("train.py", ["--model", "dcgan", "--r1-every", "4"], "error: --r1-every applies to"),
    # StyleGAN2's --config auto counts GPUs (TensorFlow) only after these checks
    ("train.py", ["--model", "stylegan2", "--resolution", "100"],
     "error: StyleGAN2-ADA resolution must be a power of two"),
    ("train.py", ["--model", "stylegan2", "--augment", "", "--ada-target", "0.5"],
     "error: --ada-target needs --augment ada"),
    ("train.py", ["--model", "stylegan2", "--config", "bogus"],
     "argument --config: invalid choice: 'bogus'"),
    ("generate.py", ["--run", "no-such-run"], "error: no run 'no-such-run'"),
])
def test_flag_mistakes_answer_before_tensorflow_is_imported(tmp_path, script, flags, message):
    env = stand_in_tensorflow(tmp_path, """
        import sys
        print("tensorflow was imported", file=sys.stderr)
        sys.exit(99)
    """)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script), *flags,
                           "--models-dir", str(tmp_path / "models")],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=120)
    assert "tensorflow was imported" not in proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_family_resolutions_are_the_model_files():
    """Family.check_resolution works without the model files (so without TensorFlow): its
    list must be theirs."""
    from skingan.families import FAMILIES
    for family in FAMILIES.values():
        assert family.resolutions == family.builders().ALLOWED_RESOLUTIONS, family.name


def default_sigint():
    """preexec_fn: the child starts with SIGINT's default disposition, as under a terminal
    (a shell's background job, CI's for one, inherits SIGINT ignored, and Python then
    installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_when(proc, started, timeout=120):
    """Send SIGINT to `proc` once started() is true; False if it ended first."""
    deadline = time.monotonic() + timeout
    while not started():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    return True


@pytest.mark.parametrize("script,flags,line", [
    ("train.py", ["--steps", "5"], INTERRUPTED),
    ("generate.py", ["--run", "some.keras"], "interrupted"),
    ("evaluate.py", ["--real", "DATA", "--fake", "DATA"], "interrupted"),
])
def test_ctrl_c_while_tensorflow_loads_is_one_line(tmp_path, script, flags, line):
    marker = tmp_path / "importing"
    env = stand_in_tensorflow(tmp_path, f"""
        import time
        open({str(marker)!r}, "w").close()
        time.sleep(120)                     # a slow import, until Ctrl-C
    """)
    data = write_pngs(str(tmp_path / "data"), 4, 16, 0)
    flags = [data if f == "DATA" else f for f in flags]
    if script == "train.py":
        flags += ["--data", data, "--models-dir", str(tmp_path / "models"),
                  "--results-dir", str(tmp_path / "results"), "--cache-dir", "none"]
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, script), *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=str(tmp_path), preexec_fn=default_sigint)
    try:
        assert interrupt_when(proc, marker.exists), proc.communicate()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [line], err
    assert out == ""


@pytest.mark.slow
def test_ctrl_c_during_the_real_tensorflow_import(tmp_path):
    """The real import: SIGINT once TensorFlow's library is mapped into the process (Linux's
    /proc), usually mid-import; if the import finished first the signal reaches the data
    loading or the training, which answer in one line too. Never a traceback."""
    maps = "/proc/self/maps"
    if not os.path.exists(maps):
        pytest.skip("needs Linux's /proc")
    data = write_pngs(str(tmp_path / "data"), 4, 16, 0)
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "train.py"), "--data", data, "--steps", "2000",
         "--resolution", "16", "--channel-scale", "0.05", "--models-dir",
         str(tmp_path / "models"), "--results-dir", str(tmp_path / "results"),
         "--cache-dir", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path),
        preexec_fn=default_sigint)

    def tensorflow_mapped():
        try:
            with open(f"/proc/{proc.pid}/maps") as f:
                return "tensorflow" in f.read()
        except OSError:
            return False
    try:
        assert interrupt_when(proc, tensorflow_mapped), proc.communicate()
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1] if err.strip() else out.strip().splitlines()[-1]
    assert last == INTERRUPTED or last.startswith("stopped at step"), (out, err)
