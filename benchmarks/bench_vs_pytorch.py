"""Our DCGAN training step against the same DCGAN in PyTorch, interleaved on one machine.

    pip install torch==2.13.0                      # benchmark only; not a project dependency
    python -m benchmarks.bench_vs_pytorch          # ~5 min on 2 CPU cores
    python -m benchmarks.bench_vs_pytorch --rounds 10 --steps 4
    python -m benchmarks.bench_vs_pytorch --keras-batchnorm   # also time Keras' own BN

Why: the issue's speed target is relative to PyTorch (the DCGAN loop at >= 1.2x a PyTorch
DCGAN's images/s), and this machine's speed drifts 2-3x within minutes, more than the
difference being measured. Normalising by a matmul timed beside the run (bench_train.py)
follows some of the drift; timing both frameworks in alternation follows all of it.

How: two worker processes, one per framework, each builds its DCGAN (64 px, batch 64, the
authors' full-size networks), warms up, then waits. The parent asks them in turn to train
--steps iterations, in forward then reverse order in alternate rounds so that a linear
drift cancels, and only one works at any time. Each round gives a ratio TensorFlow / PyTorch
images/s from neighbouring seconds; the median ratio over the rounds is the result.
--keras-batchnorm adds a third worker, our step with Keras' own BatchNormalization in place
of dcgan.BatchNorm (the fused kernel), to show what that layer is worth.

- TensorFlow: what train.py runs (bench_train.build_train_step: the family's builders,
  train.make_optimizer, steps.make_dcgan_step), fed by data_loader.make_dataset (the
  training tf.data stream), the metrics read back every step. (Logging and checkpoint checks are left out; bench_train.py
  measures them at ~0.15 % of the loop's time.)
- PyTorch: the DCGAN recipe as the source project (Bhavsar et al.) trains it: the same
  layers, N(0, 0.02) init, Adam 2e-4 (0.5, 0.999), BCE on logits, D on real then on the
  detached fakes, then G through the updated D on the same fakes, `.item()` of the losses
  every step. Real batches are pre-made tensors (no data pipeline), which favours PyTorch.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_RATIO = 1.2            # the issue: >= 0.28 images/s per GFLOP/s vs PyTorch's 0.235
RESOLUTION = 64               # the PyTorch recipe's size
NAMES = {"tensorflow": "TensorFlow", "pytorch": "PyTorch",
         "tensorflow-keras-bn": "TensorFlow with Keras BN"}


# ----------------------------------------------------------------------------- workers

def tensorflow_worker(resolution, batch, keras_batchnorm=False):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    import data_loader
    import dcgan
    from skingan import families
    from benchmarks.bench_train import build_train_step
    from skingan.config import new_run_settings
    if keras_batchnorm:  # same arguments, Keras' element-wise layer instead of the fused one
        dcgan.BatchNorm = keras.layers.BatchNormalization
    cfg = new_run_settings(dict(model="dcgan", data="unused", resolution=resolution,
                                batch_size=batch, steps=1))
    family = families.get_family("dcgan")
    step = build_train_step("dcgan", cfg)
    images = np.random.default_rng(0).integers(0, 256, (256, resolution, resolution, 3),
                                               dtype=np.uint8)
    stream = iter(data_loader.make_dataset(images, batch, value_range=family.value_range))

    def run(n):
        for _ in range(n):
            float(step(next(stream))["d_loss"])
    return run


def pytorch_worker(resolution, batch):
    import torch
    from torch import nn
    torch.manual_seed(0)

    def g_block(c_in, c_out, stride, padding):
        return [nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False),
                nn.BatchNorm2d(c_out), nn.ReLU(True)]

    def d_block(c_in, c_out, norm=True):
        return ([nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)]
                + ([nn.BatchNorm2d(c_out)] if norm else []) + [nn.LeakyReLU(0.2, True)])

    generator = nn.Sequential(  # z (B, 100, 1, 1) -> (B, 3, 64, 64)
        *g_block(100, 512, 1, 0), *g_block(512, 256, 2, 1), *g_block(256, 128, 2, 1),
        *g_block(128, 64, 2, 1), nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh())
    discriminator = nn.Sequential(  # (B, 3, 64, 64) -> logit (B, 1, 1, 1)
        *d_block(3, 64, norm=False), *d_block(64, 128), *d_block(128, 256), *d_block(256, 512),
        nn.Conv2d(512, 1, 4, 1, 0, bias=False))

    def init(module):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
    generator.apply(init)
    discriminator.apply(init)
    g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    reals = [torch.rand(batch, 3, resolution, resolution) * 2 - 1 for _ in range(4)]
    count = [0]

    def one_step():
        real = reals[count[0] % len(reals)]
        count[0] += 1
        discriminator.zero_grad()
        d_real = bce(discriminator(real).view(-1), ones)
        d_real.backward()
        fake = generator(torch.randn(batch, 100, 1, 1))
        d_fake = bce(discriminator(fake.detach()).view(-1), zeros)
        d_fake.backward()
        d_opt.step()
        generator.zero_grad()
        g_loss = bce(discriminator(fake).view(-1), ones)
        g_loss.backward()
        g_opt.step()
        return (d_real + d_fake).item(), g_loss.item()

    def run(n):
        for _ in range(n):
            one_step()
    return run


def serve(framework, resolution, batch):
    """Worker loop: build, warm up, then answer 'run N' with the seconds N steps took."""
    if framework == "pytorch":
        run = pytorch_worker(resolution, batch)
    else:
        run = tensorflow_worker(resolution, batch, keras_batchnorm=framework != "tensorflow")
    run(3)                                   # tracing / first-call allocations
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line.split()[1])
        start = time.perf_counter()
        run(n)
        print(f"done {time.perf_counter() - start:.6f}", flush=True)


# ----------------------------------------------------------------------------- parent

class Worker:
    def __init__(self, framework, args):
        self.framework = framework
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_vs_pytorch", "--worker", framework,
             "--batch", str(args.batch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self._expect("ready")

    def _expect(self, word):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"error: the {self.framework} worker stopped (see above)")
            if line.startswith(word):
                return line

    def images_per_sec(self, steps, batch):
        self.proc.stdin.write(f"run {steps}\n")
        self.proc.stdin.flush()
        seconds = float(self._expect("done").split()[1])
        return steps * batch / seconds

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def main(argv=None):
    p = argparse.ArgumentParser(
        description="DCGAN training images/s: our TensorFlow step against PyTorch, timed in "
                    "alternation (needs torch: pip install torch==2.13.0).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rounds", type=int, default=8, help="timed rounds per framework")
    p.add_argument("--steps", type=int, default=5, help="training iterations per round")
    p.add_argument("--batch", type=int, default=64, help="batch size")
    p.add_argument("--keras-batchnorm", action="store_true",
                   help="also time our step with Keras' BatchNormalization (not fused)")
    p.add_argument("--worker", choices=list(NAMES), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return serve(args.worker, RESOLUTION, args.batch)
    if min(args.rounds, args.steps, args.batch) < 1:
        p.error("--rounds, --steps and --batch must be at least 1")
    import importlib.metadata
    import importlib.util
    import platform
    if importlib.util.find_spec("torch") is None:
        print("error: PyTorch is not installed; this benchmark alone needs it: "
              "pip install torch==2.13.0", file=sys.stderr)
        return 2
    version = importlib.metadata.version
    print(f"bench_vs_pytorch.py  {time.strftime('%Y-%m-%d %H:%M:%S')}  "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"TensorFlow {version('tensorflow')}, PyTorch {version('torch')}")
    print(f"DCGAN {RESOLUTION} px, batch {args.batch}; {args.rounds} rounds of "
          f"{args.steps} iterations each, forward / reverse order in turn", flush=True)
    names = ["tensorflow", "pytorch"] + (["tensorflow-keras-bn"] if args.keras_batchnorm else [])
    workers = {}
    try:
        for name in names:
            workers[name] = Worker(name, args)
        rates = {name: [] for name in names}
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                rates[name].append(workers[name].images_per_sec(args.steps, args.batch))
            print(f"  round {r + 1}: " + ", ".join(
                f"{NAMES[name]} {rates[name][-1]:6.1f}" for name in names) + " images/s; "
                f"TensorFlow / PyTorch {rates['tensorflow'][-1] / rates['pytorch'][-1]:.3f}",
                flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    print("median images/s: " + ", ".join(
        f"{NAMES[name]} {statistics.median(rates[name]):.1f}" for name in names))
    median, low, high = ratio_summary(rates["tensorflow"], rates["pytorch"])
    print(f"TensorFlow / PyTorch: median {median:.3f} (rounds {low:.3f}-{high:.3f}); target "
          f">= {TARGET_RATIO}: {'MET' if median >= TARGET_RATIO else 'NOT met'}")
    if args.keras_batchnorm:
        median, low, high = ratio_summary(rates["tensorflow"], rates["tensorflow-keras-bn"])
        print(f"fused BatchNorm / Keras BatchNormalization: median {median:.3f} (rounds "
              f"{low:.3f}-{high:.3f})")
    return 0


def ratio_summary(numerators, denominators):
    """Median, min and max of the per-round ratios."""
    ratios = [a / b for a, b in zip(numerators, denominators)]
    return statistics.median(ratios), min(ratios), max(ratios)


if __name__ == "__main__":
    sys.exit(main())
