"""The PyTorch SL-StyleGAN of benchmarks/bench_vs_pytorch.py is our network: the same
trainable parameter counts, shapes in and out, and its step runs (skipped without torch,
which is no project dependency)."""
import pytest

torch = pytest.importorskip("torch")

import SL_StyleGAN  # noqa: E402
from benchmarks import bench_vs_pytorch  # noqa: E402
from skingan.model_summary import count_params  # noqa: E402


@pytest.mark.parametrize("resolution", [8, 32])
def test_same_parameter_counts_as_keras(resolution):
    table = SL_StyleGAN.channel_table(resolution)
    g, d = bench_vs_pytorch.torch_sl_stylegan(table)
    assert bench_vs_pytorch.torch_params(g) == count_params(
        SL_StyleGAN.build_generator(resolution))
    assert bench_vs_pytorch.torch_params(d) == count_params(
        SL_StyleGAN.build_discriminator(resolution))
    with torch.no_grad():
        images = g(torch.randn(2, 100), torch.randn(2, 1, resolution, resolution))
        assert images.shape == (2, 3, resolution, resolution)
        assert 0 <= float(images.min()) and float(images.max()) <= 1
        assert d(images).shape == (2, 1)


def test_step_runs_and_returns_finite_losses():
    spec = dict(table={str(r): c for r, c in SL_StyleGAN.channel_table(8, 0.25).items()},
                r1_weight=5.0, latent_dim=100)
    run, out = bench_vs_pytorch.pytorch_sl_stylegan_worker(8, 2, spec)
    run(2)
    assert out["params"][0] > 0 and out["params"][1] > 0
