"""skingan.quiet_tf: TensorFlow's harmless start-up lines are dropped, anything else is
shown, and the scripts print one device line instead."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import TF_STARTUP_NOISE
from skingan import quiet_tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTUP = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1.2 1 port.cc:153] oneDNN custom operations are on. You may see ...
I0000 00:00:1.2 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1.3 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""


def test_harmless_lines_are_dropped_and_others_kept():
    assert quiet_tf.shown_lines(STARTUP) == []
    real = "E0000 cuda_dnn.cc:1] Loaded runtime CuDNN library: 8.1 but source was compiled with 9.3"
    assert quiet_tf.shown_lines(STARTUP + real) == [real]
    # with a driver present, cuInit failing is a real problem: shown
    with_driver = "\n".join(line for line in STARTUP.splitlines() if "cuda drivers" not in line)
    assert quiet_tf.shown_lines(with_driver) == [STARTUP.splitlines()[-1]]


def test_capture_replays_unknown_lines_and_restores_stderr(tmp_path):
    """A stand-in `tensorflow` package that prints start-up noise and one real error."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(textwrap.dedent('''
        import os, types
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\\n")
        os.write(2, b"E0000 something real went wrong\\n")
        config = types.SimpleNamespace(list_physical_devices=lambda kind: [])
    '''))
    code = ("import sys; from skingan import quiet_tf; quiet_tf.import_tensorflow(); "
            "print('later error', file=sys.stderr)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "device: CPU only (no GPU found)\n"
    assert proc.stderr.splitlines() == ["E0000 something real went wrong", "later error"]


@pytest.mark.slow
def test_real_import_prints_only_the_device_line():
    code = "from skingan import quiet_tf; quiet_tf.import_tensorflow()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("device: ")
    for text in TF_STARTUP_NOISE:
        assert text not in proc.stderr
