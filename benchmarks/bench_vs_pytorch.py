"""Our training step against the same GAN in PyTorch, interleaved on one machine.

    pip install torch==2.13.0                      # benchmark only; not a project dependency
    python -m benchmarks.bench_vs_pytorch          # DCGAN, ~5 min on 2 CPU cores
    python -m benchmarks.bench_vs_pytorch --rounds 10 --steps 4
    python -m benchmarks.bench_vs_pytorch --keras-batchnorm   # also time Keras' own BN
    python -m benchmarks.bench_vs_pytorch --model sl-stylegan                # 256 px, batch 16
    python -m benchmarks.bench_vs_pytorch --model sl-stylegan --resolution 64   # quick

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

- TensorFlow: what train.py runs (components.build_components: the family's builders,
  components.make_optimizer, the family's step factory), fed by data_loader.make_dataset (the
  training tf.data stream), the metrics read back every step. (Logging and checkpoint
  checks are left out; bench_train.py measures them at ~0.15 % of the loop's time.)
- PyTorch: the DCGAN recipe as the source project (Bhavsar et al.) trains it: the same
  layers, N(0, 0.02) init, Adam 2e-4 (0.5, 0.999), BCE on logits, D on real then on the
  detached fakes, then G through the updated D on the same fakes, `.item()` of the losses
  every step. Real batches are pre-made tensors (no data pipeline), which favours PyTorch.

--model sl-stylegan (default 256 px, batch 16): our SL-StyleGAN step (steps.make_sl_stylegan_
step, through the same build_components) against the same network and step in PyTorch,
written here only (torch_sl_stylegan): the mapping network (8 x Dense 512, LReLU 0.2), the
learned 4x4 constant held as the Keras layer holds it (a (1, 16C) kernel plus a bias), one
3x3 convolution at 4x4 then per block bilinear x2 upsampling and two 3x3 convolutions, each
followed by a noise input through its own 1x1 convolution, AdaIN with its own Dense gamma and
beta on w, and LReLU 0.01; a 1x1 sigmoid to RGB; the discriminator's conv / LReLU / average
pool blocks, Dense 128, ReLU, Dropout 0.6, Dense 1; the channel table SL_StyleGAN.
channel_table. He-normal initialisation as ours, no equalised learning rate (ours has none).
The parent checks that both frameworks' trainable parameter counts are equal (9,266,195 and
2,404,113 at 256 px). The step as ours: G runs twice (fakes for D without a graph, then fresh
z and noise for G's update), LSGAN losses (D: (D(x) - 1)^2 + (D(G(z)) + 1)^2, G: D(G(z))^2),
the R1 penalty of weight losses.R1_WEIGHT on every iteration (grad of D's summed real logits
with create_graph, differentiated again), Adam with the family's defaults (1e-4, betas
(0, 0.99), epsilon 1e-7, time decay lr / (1 + 1e-5 t)), D's weights frozen during G's
update (as the TensorFlow tape differentiates G's weights only), `.item()` of both losses
every step. --torch-channels-last adds a third worker, the PyTorch step with its tensors and
weights in the channels-last (NHWC) memory format, PyTorch's faster layout for CPU
convolutions; the target holds against whichever PyTorch is faster.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_RATIO = 1.2            # the issue: >= 0.28 images/s per GFLOP/s vs PyTorch's 0.235
MODELS = {  # per family: default resolution, batch and iterations per round
    "dcgan": dict(resolution=64, batch=64, steps=5),          # the PyTorch recipe's size
    "sl-stylegan": dict(resolution=256, batch=16, steps=2),   # the paper's
}
NAMES = {"tensorflow": "TensorFlow", "pytorch": "PyTorch",
         "pytorch-channels-last": "PyTorch channels-last",
         "tensorflow-keras-bn": "TensorFlow with Keras BN"}


# ----------------------------------------------------------------------------- workers

def tensorflow_worker(model, resolution, batch, keras_batchnorm=False):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    import data_loader
    import dcgan
    from skingan import families
    import tensorflow as tf

    from skingan.components import build_components
    from skingan.config import new_run_settings
    from skingan.model_summary import count_params
    if keras_batchnorm:  # same arguments, Keras' element-wise layer instead of the fused one
        dcgan.BatchNorm = keras.layers.BatchNormalization
    cfg = new_run_settings(dict(model=model, data="unused", resolution=resolution,
                                batch_size=batch, steps=1))
    family = families.get_family(model)
    parts = build_components(cfg, tf.distribute.get_strategy())
    step = parts.train_step
    images = np.random.default_rng(0).integers(0, 256, (max(64, batch), resolution,
                                                        resolution, 3), dtype=np.uint8)
    stream = iter(data_loader.make_dataset(images, batch, value_range=family.value_range))

    def run(n):
        for _ in range(n):
            float(step(next(stream))["d_loss"])
    spec = dict(params=[count_params(parts.generator), count_params(parts.discriminator)])
    if model == "sl-stylegan":  # what the PyTorch network is built from, without Keras there
        import SL_StyleGAN
        from skingan import losses
        spec.update(table=SL_StyleGAN.channel_table(resolution), r1_weight=losses.R1_WEIGHT,
                    latent_dim=cfg["latent_dim"])
    return run, spec


def pytorch_worker(resolution, batch):
    """The PyTorch DCGAN recipe: (run, (generator params, discriminator params))."""
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
    return run, dict(params=[torch_params(generator), torch_params(discriminator)])


def torch_params(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def torch_sl_stylegan(table, latent_dim=100, w_dim=512, mapping_layers=8, dropout=0.6):
    """SL-StyleGAN's generator and discriminator in PyTorch (NCHW), layer for layer as
    SL_StyleGAN.py builds them from its channel table {r: channels} (SL_StyleGAN.
    channel_table; passed in so that this process needs no Keras):
    G(z (B, latent), noise (B, 1, R, R)) -> (B, 3, R, R) in [0, 1]; D(image) -> logit (B, 1).
    Returns (generator, discriminator)."""
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn

    resolution = max(table)

    def he_normal(layer):
        # Keras' he_normal: truncated normal, std sqrt(2 / fan_in) (before truncation)
        fan_in = layer.weight[0].numel()
        std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
        nn.init.trunc_normal_(layer.weight, 0.0, std, -2 * std, 2 * std)
        nn.init.zeros_(layer.bias)
        return layer

    def glorot(layer):
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
        return layer

    class NoiseAdaIN(nn.Module):
        """noise through Conv2d(1, f, 1) -> add -> AdaIN(Dense gamma, Dense beta on w) ->
        LeakyReLU(0.01)."""
        def __init__(self, f):
            super().__init__()
            self.noise = he_normal(nn.Conv2d(1, f, 1))
            self.gamma = he_normal(nn.Linear(w_dim, f))
            self.beta = he_normal(nn.Linear(w_dim, f))
            nn.init.ones_(self.gamma.bias)

        def forward(self, x, w, noise):
            x = x + self.noise(noise)
            centred = x - x.mean(dim=(2, 3), keepdim=True)
            std = centred.square().mean(dim=(2, 3), keepdim=True).sqrt()
            x = (centred / (std + 1e-8) * self.gamma(w)[:, :, None, None]
                 + self.beta(w)[:, :, None, None])
            return F.leaky_relu(x, 0.01)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            layers, width = [], latent_dim
            for _ in range(mapping_layers):
                layers += [he_normal(nn.Linear(width, w_dim)), nn.LeakyReLU(0.2)]
                width = w_dim
            self.mapping = nn.Sequential(*layers)
            c = table[4]
            self.const_c = c
            # the Keras LearnedConstant's weights: kernel (1, 16C) he_normal (fan-in 1), bias
            self.const_kernel = nn.Parameter(torch.randn(1, 16 * c) * math.sqrt(2.0))
            self.const_bias = nn.Parameter(torch.zeros(16 * c))
            self.conv4 = he_normal(nn.Conv2d(c, c, 3, padding=1))
            self.style4 = NoiseAdaIN(c)
            self.convs, self.styles, self.sizes = nn.ModuleList(), nn.ModuleList(), []
            r = 8
            while r <= resolution:
                f = table[r]
                for _ in (1, 2):
                    self.convs.append(he_normal(nn.Conv2d(c, f, 3, padding=1)))
                    self.styles.append(NoiseAdaIN(f))
                    self.sizes.append(r)
                    c = f
                r *= 2
            self.to_rgb = glorot(nn.Conv2d(c, 3, 1))

        def forward(self, z, noise):
            w = self.mapping(z)
            c = self.const_c
            x = (self.const_kernel[0] + self.const_bias).view(1, 4, 4, c).permute(0, 3, 1, 2)
            x = x.expand(z.shape[0], c, 4, 4)

            def noise_at(r):   # centre r x r crop of the one R x R noise image
                k = (resolution - r) // 2
                return noise[:, :, k:k + r, k:k + r]
            x = self.style4(self.conv4(x), w, noise_at(4))
            for i, (conv, style, r) in enumerate(zip(self.convs, self.styles, self.sizes)):
                if i % 2 == 0:  # first convolution of the r x r block
                    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                x = style(conv(x), w, noise_at(r))
            return torch.sigmoid(self.to_rgb(x))

    blocks, c, r = [], 3, resolution
    while r > 4:
        f = table[r]
        blocks += [he_normal(nn.Conv2d(c, f, 3, padding=1)), nn.LeakyReLU(0.01),
                   nn.AvgPool2d(2), he_normal(nn.Conv2d(f, f, 3, padding=1)),
                   nn.LeakyReLU(0.01)]
        c, r = f, r // 2
    discriminator = nn.Sequential(*blocks, nn.Flatten(), glorot(nn.Linear(16 * c, 128)),
                                  nn.ReLU(), nn.Dropout(dropout), glorot(nn.Linear(128, 1)))
    return Generator(), discriminator


def pytorch_sl_stylegan_worker(resolution, batch, spec, channels_last=False):
    """Our SL-StyleGAN step in PyTorch: (run, its spec). spec: the TensorFlow worker's
    channel table, R1 weight and latent size. channels_last: weights, images and noise in
    PyTorch's NHWC memory format (the layout TensorFlow uses), else the default NCHW."""
    import torch

    from skingan.families import get_family   # no TensorFlow behind this import
    torch.manual_seed(0)
    defaults = get_family("sl-stylegan").defaults
    table = {int(r): c for r, c in spec["table"].items()}
    latent_dim, r1_weight = spec["latent_dim"], spec["r1_weight"]
    assert max(table) == resolution
    generator, discriminator = torch_sl_stylegan(table, latent_dim,
                                                 dropout=defaults["dropout"])
    layout = torch.channels_last if channels_last else torch.contiguous_format
    generator.to(memory_format=layout).train()
    discriminator.to(memory_format=layout).train()

    def adam(module):
        opt = torch.optim.Adam(module.parameters(), lr=defaults["lr"],
                               betas=(defaults["beta1"], defaults["beta2"]),
                               eps=defaults["adam_epsilon"])
        decay = defaults["lr_decay"]  # Keras 2's decay: lr / (1 + decay * t)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + decay * t))
    g_opt, g_sched = adam(generator)
    d_opt, d_sched = adam(discriminator)
    reals = [torch.rand(batch, 3, resolution, resolution).contiguous(memory_format=layout)
             for _ in range(4)]  # in [0, 1]
    count = [0]

    def draw():
        return (torch.randn(batch, latent_dim), torch.randn(
            batch, 1, resolution, resolution).contiguous(memory_format=layout))

    def one_step():
        real = reals[count[0] % len(reals)].detach().requires_grad_(True)
        count[0] += 1
        # (1) D: (D(x) - 1)^2 + (D(G(z)) + 1)^2 + R1, fakes made without a graph
        with torch.no_grad():
            fake = generator(*draw())
        real_logits = discriminator(real)
        grads, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        r1 = r1_weight * grads.square().sum(dim=(1, 2, 3)).mean()
        fake_logits = discriminator(fake)
        d_loss = ((real_logits - 1) ** 2).mean() + ((fake_logits + 1) ** 2).mean() + r1
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        d_sched.step()
        # (2) G: D(G(z))^2 with fresh z and noise; D's weights get no gradient
        discriminator.requires_grad_(False)
        g_loss = discriminator(generator(*draw())).square().mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        g_sched.step()
        discriminator.requires_grad_(True)
        return d_loss.item(), g_loss.item()

    def run(n):
        for _ in range(n):
            one_step()
    return run, dict(params=[torch_params(generator), torch_params(discriminator)])


def set_threads(framework, threads):
    """Pin the worker's thread pools to `threads` (0: the framework's default, all cores)."""
    if not threads:
        return
    if framework.startswith("pytorch"):
        import torch
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
    else:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def serve(framework, model, resolution, batch, spec, threads=0):
    """Worker loop: build, warm up, then answer 'run N' with the seconds N steps took.
    The 'ready' line carries a JSON spec: the trainable parameter counts of G and D (and,
    from TensorFlow's SL-StyleGAN, what the PyTorch one is built from)."""
    set_threads(framework, threads)
    if framework.startswith("pytorch"):
        if model == "dcgan":
            run, out = pytorch_worker(resolution, batch)
        else:
            run, out = pytorch_sl_stylegan_worker(resolution, batch, json.loads(spec),
                                                  framework == "pytorch-channels-last")
    else:
        run, out = tensorflow_worker(model, resolution, batch,
                                     keras_batchnorm=framework != "tensorflow")
    run(3)                                   # tracing / first-call allocations
    print("ready " + json.dumps(out), flush=True)
    for line in sys.stdin:
        n = int(line.split()[1])
        start = time.perf_counter()
        run(n)
        print(f"done {time.perf_counter() - start:.6f}", flush=True)


# ----------------------------------------------------------------------------- parent

class Worker:
    def __init__(self, framework, args, spec=None):
        self.framework = framework
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_vs_pytorch", "--worker", framework,
             "--model", args.model, "--resolution", str(args.resolution),
             "--batch", str(args.batch), "--threads", str(args.threads)]
            + (["--spec", json.dumps(spec)] if spec else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.spec = json.loads(self._expect("ready").split(maxsplit=1)[1])
        self.params = tuple(self.spec["params"])

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
        description="Training images/s: our TensorFlow step against the same GAN and step "
                    "in PyTorch, timed in alternation (needs torch: pip install torch==2.13.0).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=list(MODELS), default="dcgan", help="GAN family")
    p.add_argument("--rounds", type=int, default=8, help="timed rounds per framework")
    p.add_argument("--steps", type=int,
                   help="training iterations per round (default: dcgan 5, sl-stylegan 2)")
    p.add_argument("--batch", type=int, help="batch size (default: dcgan 64, sl-stylegan 16)")
    p.add_argument("--resolution", type=int,
                   help="image size in px (default: dcgan 64, the only size its PyTorch recipe "
                        "has; sl-stylegan 256, or a power of two from 8 for a quick run)")
    p.add_argument("--keras-batchnorm", action="store_true",
                   help="dcgan: also time our step with Keras' BatchNormalization (not fused)")
    p.add_argument("--torch-channels-last", action="store_true",
                   help="sl-stylegan: also time the PyTorch step in the channels-last (NHWC) "
                        "memory format")
    p.add_argument("--threads", type=int, default=0,
                   help="threads per framework (intra- and inter-op); 0: each framework's "
                        "default (all cores). 1 compares single-core speed, which other "
                        "jobs on a shared machine disturb far less")
    p.add_argument("--worker", choices=list(NAMES), help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for key in ("resolution", "batch", "steps"):
        if getattr(args, key) is None:
            setattr(args, key, MODELS[args.model][key])
    if args.worker:
        return serve(args.worker, args.model, args.resolution, args.batch, args.spec,
                     args.threads)
    if min(args.rounds, args.steps, args.batch) < 1 or args.threads < 0:
        p.error("--rounds, --steps and --batch must be at least 1, --threads at least 0")
    if args.model == "dcgan" and args.resolution != 64:
        p.error("--model dcgan runs at 64 px only (the PyTorch recipe's size)")
    if args.model == "sl-stylegan":
        if args.keras_batchnorm:
            p.error("--keras-batchnorm is for --model dcgan (SL-StyleGAN has no BatchNorm)")
    elif args.torch_channels_last:
        p.error("--torch-channels-last is for --model sl-stylegan")
        if args.resolution not in [2 ** k for k in range(3, 11)]:
            p.error("--resolution for sl-stylegan: a power of two from 8 to 1024")
    import importlib.metadata
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        print("error: PyTorch is not installed; this benchmark alone needs it: "
              "pip install torch==2.13.0", file=sys.stderr)
        return 2
    version = importlib.metadata.version
    from benchmarks.bench_train import cpu_model   # no TensorFlow behind this import
    print(f"bench_vs_pytorch.py  {time.strftime('%Y-%m-%d %H:%M:%S')}  "
          f"{cpu_model()[0]}, {os.cpu_count()} cores; "
          f"TensorFlow {version('tensorflow')}, PyTorch {version('torch')}")
    title = "DCGAN" if args.model == "dcgan" else "SL-StyleGAN"
    default = MODELS[args.model]
    size_note = "" if (args.resolution, args.batch) == (default["resolution"], default["batch"]) \
        else f" (NOT the default {default['resolution']} px, batch {default['batch']})"
    print(f"{title} {args.resolution} px, batch {args.batch}{size_note}; {args.rounds} rounds of "
          f"{args.steps} iterations each, forward / reverse order in turn; threads per "
          f"framework: {args.threads or 'default (all cores)'}", flush=True)
    names = ["tensorflow", "pytorch"] + (["tensorflow-keras-bn"] if args.keras_batchnorm else [])
    names += ["pytorch-channels-last"] if args.torch_channels_last else []
    workers = {}
    try:
        for name in names:  # TensorFlow first: its spec builds the PyTorch SL-StyleGAN
            workers[name] = Worker(name, args, workers["tensorflow"].spec
                                   if name.startswith("pytorch") else None)
        params = {name: worker.params for name, worker in workers.items()}
        print("trainable parameters (G, D): " + ", ".join(
            f"{NAMES[name]} {g:,} / {d:,}" for name, (g, d) in params.items()), flush=True)
        if args.model == "sl-stylegan" and any(
                params[name] != params["tensorflow"] for name in names):
            raise SystemExit("error: the PyTorch SL-StyleGAN's parameter counts differ from "
                             "ours; it is not the same network")
        rates = {name: [] for name in names}
        loads = []
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                rates[name].append(workers[name].images_per_sec(args.steps, args.batch))
            print(f"  round {r + 1}: " + ", ".join(
                f"{NAMES[name]} {rates[name][-1]:6.2f}" for name in names) + " images/s; "
                f"TensorFlow / PyTorch {rates['tensorflow'][-1] / rates['pytorch'][-1]:.3f}"
                + (f", / PyTorch channels-last {rates['tensorflow'][-1] / rates[name][-1]:.3f}"
                   if (name := "pytorch-channels-last") in rates else "")
                + f"; load average {load_average():.1f}", flush=True)
            loads.append(load_average())
    finally:
        for worker in workers.values():
            worker.close()
    print("median images/s: " + ", ".join(
        f"{NAMES[name]} {statistics.median(rates[name]):.2f}" for name in names))
    median, low, high = ratio_summary(rates["tensorflow"], rates["pytorch"])
    print(f"TensorFlow / PyTorch: median {median:.3f} (rounds {low:.3f}-{high:.3f}); target "
          f">= {TARGET_RATIO}: {'MET' if median >= TARGET_RATIO else 'NOT met'}")
    if args.torch_channels_last:
        median, low, high = ratio_summary(rates["tensorflow"], rates["pytorch-channels-last"])
        print(f"TensorFlow / PyTorch channels-last: median {median:.3f} (rounds {low:.3f}-"
              f"{high:.3f}); target >= {TARGET_RATIO}: "
              f"{'MET' if median >= TARGET_RATIO else 'NOT met'}")
    if max(loads) > (os.cpu_count() or 1) + 1:  # our worker alone keeps ~ one per core busy
        print(f"WARNING: the 1-minute load average reached {max(loads):.1f} on "
              f"{os.cpu_count()} cores: other jobs shared the cores, which slows PyTorch's "
              "OpenMP threads far more than TensorFlow's (on 2 busy cores, SL-StyleGAN at 32 "
              "px: 8x instead of 1.2x); compare on an idle machine, or with --threads 1")
    if args.keras_batchnorm:
        median, low, high = ratio_summary(rates["tensorflow"], rates["tensorflow-keras-bn"])
        print(f"fused BatchNorm / Keras BatchNormalization: median {median:.3f} (rounds "
              f"{low:.3f}-{high:.3f})")
    return 0


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def ratio_summary(numerators, denominators):
    """Median, min and max of the per-round ratios."""
    ratios = [a / b for a, b in zip(numerators, denominators)]
    return statistics.median(ratios), min(ratios), max(ratios)


if __name__ == "__main__":
    sys.exit(main())
