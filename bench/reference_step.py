"""The benchmark's comparison network and training step in PyTorch, for timing beside ProGan.Keras.

Exactly the step bench/ProGan.Bench times for the comparison shape in the stabilise phase: latent 128, 128 feature
maps at 4²-32², 64 at 64², 32 at 128², minibatch 16, minibatch-stddev group 4, equalized learning rate, pixel norm,
WGAN-GP (lambda 10) with drift 0.001, Adam (lr 0.001, betas 0/0.99, eps 1e-8), EMA generator (beta 0.999).
Prints one line per resolution: "resolution,images_per_second" (median of --iterations after --warmup). With --serve
it reads "resolution warmup iterations" lines from stdin and answers each with such a line, so that the benchmark can
alternate its own timings with these in one run (this VM's speed drifts by 10-30 % over minutes).
"""
import sys
import argparse, math, time
import torch
import torch.nn.functional as F


def nf(stage):
    return min(int(2048 / 2 ** stage), 128)


class WSConv(torch.nn.Module):
    def __init__(self, cin, cout, k, gain=math.sqrt(2)):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = torch.nn.Parameter(torch.zeros(cout))
        self.scale, self.pad = gain / math.sqrt(cin * k * k), k // 2

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class WSDense(torch.nn.Module):
    def __init__(self, fin, fout, gain=math.sqrt(2)):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(fout, fin))
        self.bias = torch.nn.Parameter(torch.zeros(fout))
        self.scale = gain / math.sqrt(fin)

    def forward(self, x):
        return F.linear(x.flatten(1), self.weight * self.scale, self.bias)


def pixel_norm(x):
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


def minibatch_stdev(x, group=4):
    g = min(group, x.shape[0])
    n, c, h, w = x.shape
    y = x.reshape(g, -1, c, h, w)
    y = (y - y.mean(0, keepdim=True)).square().mean(0).add(1e-8).sqrt().mean((1, 2, 3), keepdim=True)
    return torch.cat([x, y.repeat(g, 1, h, w)], 1)


class Generator(torch.nn.Module):
    def __init__(self, levels):
        super().__init__()
        self.dense = WSDense(128, 16 * nf(1), gain=math.sqrt(2) / 4)
        self.conv = WSConv(nf(1), nf(1), 3)
        self.blocks = torch.nn.ModuleList(
            torch.nn.ModuleList([WSConv(nf(l), nf(l + 1), 3), WSConv(nf(l + 1), nf(l + 1), 3)]) for l in range(1, levels))
        self.to_rgb = WSConv(nf(levels), 3, 1, gain=1.0)

    def forward(self, z):
        x = self.dense(pixel_norm(z)).view(-1, nf(1), 4, 4)
        x = pixel_norm(F.leaky_relu(x, 0.2))
        x = pixel_norm(F.leaky_relu(self.conv(x), 0.2))
        for c0, c1 in self.blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = pixel_norm(F.leaky_relu(c0(x), 0.2))
            x = pixel_norm(F.leaky_relu(c1(x), 0.2))
        return self.to_rgb(x)


class Discriminator(torch.nn.Module):
    def __init__(self, levels):
        super().__init__()
        self.from_rgb = WSConv(3, nf(levels), 1)
        self.blocks = torch.nn.ModuleList(
            torch.nn.ModuleList([WSConv(nf(l), nf(l), 3), WSConv(nf(l), nf(l - 1), 3)]) for l in range(levels, 1, -1))
        self.conv = WSConv(nf(1) + 1, nf(1), 3)
        self.dense0 = WSDense(16 * nf(1), nf(0))
        self.dense1 = WSDense(nf(0), 1, gain=1.0)

    def forward(self, x):
        x = F.leaky_relu(self.from_rgb(x), 0.2)
        for c0, c1 in self.blocks:
            x = F.avg_pool2d(F.leaky_relu(c1(F.leaky_relu(c0(x), 0.2)), 0.2), 2)
        x = F.leaky_relu(self.conv(minibatch_stdev(x)), 0.2)
        return self.dense1(F.leaky_relu(self.dense0(x), 0.2))


def bench(resolution, warmup, iterations):
    levels = int(math.log2(resolution)) - 1
    g, d, ema = Generator(levels), Discriminator(levels), Generator(levels)
    ema.load_state_dict(g.state_dict())
    opt_g = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    data = torch.rand(64, 3, resolution, resolution) * 2 - 1
    n = 16

    def step():
        reals = data[torch.randint(64, (n,))]
        with torch.no_grad():
            fakes = g(torch.randn(n, 128))
        opt_d.zero_grad()
        real_scores, fake_scores = d(reals), d(fakes)
        mixed = torch.lerp(reals, fakes, torch.rand(n, 1, 1, 1)).requires_grad_(True)
        grad, = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)
        penalty = (grad.flatten(1).square().sum(1).sqrt() - 1).square()
        loss_d = (fake_scores - real_scores + 10 * penalty.unsqueeze(1) + 0.001 * real_scores.square()).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        for p in d.parameters():
            p.requires_grad_(False)
        loss_g = -d(g(torch.randn(n, 128))).mean()
        loss_g.backward()
        for p in d.parameters():
            p.requires_grad_(True)
        opt_g.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), g.parameters()):
                e.lerp_(p, 1 - 0.999)

    for _ in range(warmup):
        step()
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return n / sorted(times)[len(times) // 2]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--resolutions", default="8,16,32,64")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    if args.serve:
        print("ready", flush=True)
        requests = ((int(x) for x in line.split()) for line in sys.stdin)
    else:
        requests = ((int(r), args.warmup, args.iterations) for r in args.resolutions.split(","))
    for r, warmup, iterations in requests:
        print(f"{r},{bench(r, warmup, iterations):.4f}", flush=True)
