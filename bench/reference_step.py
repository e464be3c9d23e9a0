"""The benchmark's comparison network and training step in PyTorch, for timing beside ProGan.Keras.

Exactly the step bench/ProGan.Bench times for the comparison shape: latent 128, 128 feature maps at 4²-32², 64 at
64², 32 at 128², minibatch 16, minibatch-stddev group 4, equalized learning rate, pixel norm, WGAN-GP (lambda 10)
with drift 0.001, Adam (lr 0.001, betas 0/0.99, eps 1e-8), EMA generator (beta 0.999); G's first layer has one bias
per channel (G_paper). --fused-scale 1 (the default, as the official D_paper) makes each D block's second convolution
and its 2x2 downscale one stride-2 convolution (conv2d_downscale2d) with bias and LeakyReLU after it; 0 keeps the
paper's Table 2 order, LeakyReLU then average pooling. --fade-in times the fade-in phase at alpha 0.5: G and D blend
the new level with the previous one through toRGB/fromRGB, and the reals are blended between the two levels of detail.
Prints one line per resolution: "resolution,images_per_second" (median of --iterations after --warmup). With --serve
it reads "resolution warmup iterations [fused_scale [fade_in]]" lines (integers, 0 or 1 for the flags) from stdin and
answers each with such a line, so that the benchmark can alternate its own timings with these in one run (this VM's
speed drifts by 10-30 % over minutes).
"""
import sys
import argparse, math, time
import torch
import torch.nn.functional as F


def nf(stage):
    return min(int(2048 / 2 ** stage), 128)


class WSConv(torch.nn.Module):
    def __init__(self, cin, cout, k, gain=math.sqrt(2), downscale=False):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = torch.nn.Parameter(torch.zeros(cout))
        self.scale, self.pad, self.downscale = gain / math.sqrt(cin * k * k), k // 2, downscale

    def forward(self, x):
        w = self.weight * self.scale
        if not self.downscale:
            return F.conv2d(x, w, self.bias, padding=self.pad)
        # conv2d_downscale2d: the kernel's four one-pixel shifts summed, times 1/4, at stride 2 = avg_pool2d(conv2d(x)).
        w = F.pad(w, [1, 1, 1, 1])
        w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) * 0.25
        return F.conv2d(x, w, self.bias, stride=2, padding=self.pad)


class WSDense(torch.nn.Module):
    def __init__(self, fin, fout, gain=math.sqrt(2), bias=True):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(fout, fin))
        self.bias = torch.nn.Parameter(torch.zeros(fout)) if bias else None
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


def upsample(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


class Generator(torch.nn.Module):
    """Straight through, or (fading) lerp(upsample(toRGB_low(h)), toRGB(block(h)), alpha)."""

    def __init__(self, levels, fading, alpha):
        super().__init__()
        self.dense = WSDense(128, 16 * nf(1), gain=math.sqrt(2) / 4, bias=False)
        self.bias = torch.nn.Parameter(torch.zeros(nf(1)))  # G_paper: apply_bias after the reshape, one per channel
        self.conv = WSConv(nf(1), nf(1), 3)
        self.blocks = torch.nn.ModuleList(
            torch.nn.ModuleList([WSConv(nf(l), nf(l + 1), 3), WSConv(nf(l + 1), nf(l + 1), 3)]) for l in range(1, levels))
        self.to_rgb = WSConv(nf(levels), 3, 1, gain=1.0)
        self.to_rgb_low = WSConv(nf(levels - 1), 3, 1, gain=1.0) if fading else None
        self.alpha = alpha

    def forward(self, z):
        x = self.dense(pixel_norm(z)).view(-1, nf(1), 4, 4) + self.bias.view(1, -1, 1, 1)
        x = pixel_norm(F.leaky_relu(x, 0.2))
        x = pixel_norm(F.leaky_relu(self.conv(x), 0.2))
        low = None
        for i, (c0, c1) in enumerate(self.blocks):
            if self.to_rgb_low is not None and i == len(self.blocks) - 1:
                low = upsample(self.to_rgb_low(x))
            x = pixel_norm(F.leaky_relu(c0(upsample(x)), 0.2))
            x = pixel_norm(F.leaky_relu(c1(x), 0.2))
        image = self.to_rgb(x)
        return image if low is None else torch.lerp(low, image, self.alpha)


class Discriminator(torch.nn.Module):
    """Straight through, or (fading) lerp(fromRGB_low(avgpool(x)), block(fromRGB(x)), alpha) into the lower blocks."""

    def __init__(self, levels, fading, alpha, fused_scale):
        super().__init__()
        self.from_rgb = WSConv(3, nf(levels), 1)
        self.from_rgb_low = WSConv(3, nf(levels - 1), 1) if fading else None
        self.blocks = torch.nn.ModuleList(
            torch.nn.ModuleList([WSConv(nf(l), nf(l), 3), WSConv(nf(l), nf(l - 1), 3, downscale=fused_scale)])
            for l in range(levels, 1, -1))
        self.conv = WSConv(nf(1) + 1, nf(1), 3)
        self.dense0 = WSDense(16 * nf(1), nf(0))
        self.dense1 = WSDense(nf(0), 1, gain=1.0)
        self.alpha, self.fused_scale = alpha, fused_scale

    def forward(self, image):
        x = F.leaky_relu(self.from_rgb(image), 0.2)
        for i, (c0, c1) in enumerate(self.blocks):
            # fused_scale: lrelu(conv2d_downscale2d(x) + b); otherwise avg_pool2d(lrelu(conv2d(x) + b)).
            x = F.leaky_relu(c1(F.leaky_relu(c0(x), 0.2)), 0.2)
            if not self.fused_scale:
                x = F.avg_pool2d(x, 2)
            if i == 0 and self.from_rgb_low is not None:
                x = torch.lerp(F.leaky_relu(self.from_rgb_low(F.avg_pool2d(image, 2)), 0.2), x, self.alpha)
        x = F.leaky_relu(self.conv(minibatch_stdev(x)), 0.2)
        return self.dense1(F.leaky_relu(self.dense0(x), 0.2))


def bench(resolution, warmup, iterations, fused_scale=True, fading=False, alpha=0.5):
    levels = int(math.log2(resolution)) - 1
    g, ema = Generator(levels, fading, alpha), Generator(levels, fading, alpha)
    d = Discriminator(levels, fading, alpha, fused_scale)
    ema.load_state_dict(g.state_dict())
    opt_g = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    data = torch.rand(64, 3, resolution, resolution) * 2 - 1
    n = 16

    def step():
        reals = data[torch.randint(64, (n,))]
        if fading:  # process_reals: blended between the two levels of detail like the fakes
            reals = torch.lerp(reals, upsample(F.avg_pool2d(reals, 2)), 1 - alpha)
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
    parser.add_argument("--fused-scale", type=int, choices=(0, 1), default=1)
    parser.add_argument("--fade-in", action="store_true")
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    defaults = [args.fused_scale, int(args.fade_in)]
    if args.serve:
        print("ready", flush=True)
        requests = ([int(x) for x in line.split()] for line in sys.stdin)
    else:
        requests = ([int(r), args.warmup, args.iterations] for r in args.resolutions.split(","))
    for request in requests:
        r, warmup, iterations, fused_scale, fading = request + defaults[len(request) - 3:]
        print(f"{r},{bench(r, warmup, iterations, bool(fused_scale), bool(fading)):.4f}", flush=True)
