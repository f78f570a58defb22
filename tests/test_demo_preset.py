"""Which family and preset `python train.py` trains on the built-in demo data (issue 23,
item 1): DCGAN's short preset, whose grid stays varied there (benchmarks/bench_demo.py);
real data keeps SL-StyleGAN and the papers' settings."""
import sys

from skingan.config import new_run_settings
from skingan.families import FAMILIES


def test_the_demo_trains_dcgan_with_its_demo_preset():
    cfg = new_run_settings({})
    assert cfg["model"] == "dcgan" and cfg["demo"]
    for key, value in FAMILIES["dcgan"].demo.items():
        assert cfg[key] == value
    assert (cfg["resolution"], cfg["batch_size"], cfg["steps"]) == (32, 64, 300)


def test_a_model_given_a_conditional_demo_and_real_data_are_as_before(tmp_path):
    assert new_run_settings({"model": "sl-stylegan"})["steps"] == 500
    # the multi-class demo: DCGAN's demo preset with mode seeking at MSGAN's weight 1
    multi = new_run_settings({"conditional": True})
    assert (multi["model"], multi["mode_seeking"], multi["steps"]) == ("dcgan", 1.0, 300)
    assert multi["batch_size"] == 64 and multi["class_name"] == "all"
    # a family named, or an explicit weight, is taken as given
    named = new_run_settings({"conditional": True, "model": "sl-stylegan"})
    assert (named["model"], named["mode_seeking"]) == ("sl-stylegan", 0.0)
    assert new_run_settings({"conditional": True, "mode_seeking": 0.5})["mode_seeking"] == 0.5
    assert new_run_settings({"model": "dcgan"})["mode_seeking"] == 0.0
    real = new_run_settings({"data": str(tmp_path)})
    assert real["model"] == "sl-stylegan" and not real["demo"]
    assert real["steps"] == FAMILIES["sl-stylegan"].defaults["steps"]


def test_choosing_the_settings_imports_no_tensorflow():
    import subprocess
    code = ("import sys; from skingan.config import new_run_settings; new_run_settings({}); "
            "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr
