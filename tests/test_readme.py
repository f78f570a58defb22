"""The README's commands, run exactly as written, in a copy of the project (so the run,
the demo images and the outputs land in a temporary folder, not in this checkout)."""
import os
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_block(marker):
    """The lines of the fenced code block after `<!-- readme-recipe: marker -->`."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    after = text.split(f"<!-- readme-recipe: {marker} -->", 1)[1]
    body = after.split("```", 2)[1]                  # "bash\n<lines>\n"
    return [line for line in body.splitlines()[1:] if line.strip()]


def copy_project(dest):
    """The scripts and the package, without data, runs or tests."""
    os.makedirs(dest)
    for name in os.listdir(ROOT):
        if name.endswith(".py"):
            shutil.copy(os.path.join(ROOT, name), dest)
    shutil.copytree(os.path.join(ROOT, "skingan"), os.path.join(dest, "skingan"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def run(line, cwd, env):
    args = shlex.split(line)
    assert args[0] == "python", line
    return subprocess.run([sys.executable] + args[1:], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=400)


@pytest.mark.slow
def test_generate_then_evaluate_recipe_runs_as_written(tmp_path):
    project = copy_project(str(tmp_path / "project"))
    # no InceptionV3 weights in this HOME: evaluate.py reports SWD and says how to get them
    env = dict(os.environ, HOME=str(tmp_path), KERAS_HOME=str(tmp_path / "keras"),
               CUDA_VISIBLE_DEVICES="")
    # the quick start's `python train.py`, made tiny: the demo data and the demo run's name
    trained = run("python train.py --steps 2 --channel-scale 0.125 --batch-size 4 "
                  "--sample-every 2 --checkpoint-every 2 --cache-dir none", project, env)
    assert trained.returncode == 0, trained.stderr
    assert os.path.isdir(os.path.join(project, "SavedModels", "dcgan-demo-32px"))

    outputs = [run(line, project, env) for line in readme_block("generate-evaluate")]
    for proc in outputs:
        assert proc.returncode == 0, proc.stderr
    assert "SWD average" in outputs[-1].stdout
    assert "real images 300, fake images 300, 32 px" in outputs[-1].stdout
    assert os.path.isfile(os.path.join(project, "Results", "demo_synthetic_grid.png"))
