// A DCGAN-style pair for 32×32 images that is not a ProGAN, built from ProGan.Keras layers: equalized-learning-rate
// convolutions and dense layers, pixel normalization in the generator, minibatch stddev in the discriminator.
// Trains a few steps on procedural blobs and checks that the losses are finite and the layers learned.
using ProGan.Keras.Layers;
using TorchSharp;
using static TorchSharp.torch;

int steps = args.Length > 0 ? int.Parse(args[0]) : 30;

// The first TorchSharp call comes before any ProGan.Keras type: the package's initializer has already made it work.
torch.manual_seed(1);
using var probe = torch.ones(2, 2);

var generator = new DcganGenerator(latentSize: 32);
var discriminator = new DcganDiscriminator();
var gOptimizer = torch.optim.Adam(generator.parameters(), lr: 2e-3, beta1: 0.0, beta2: 0.99);
var dOptimizer = torch.optim.Adam(discriminator.parameters(), lr: 2e-3, beta1: 0.0, beta2: 0.99);
var gBefore = generator.parameters().Select(p => p.detach().clone()).ToList();
var dBefore = discriminator.parameters().Select(p => p.detach().clone()).ToList();

bool finite = true;
for (int step = 1; step <= steps; step++)
{
    using var scope = torch.NewDisposeScope();
    var reals = Blobs(16);
    // Discriminator: non-saturating logistic loss, softplus(D(fake)) + softplus(−D(real)).
    dOptimizer.zero_grad();
    var fakes = generator.call(torch.randn(16, 32)).detach();
    var dLoss = nn.functional.softplus(discriminator.call(fakes)).mean() + nn.functional.softplus(-discriminator.call(reals)).mean();
    dLoss.backward();
    dOptimizer.step();
    // Generator: softplus(−D(G(z))).
    gOptimizer.zero_grad();
    var gLoss = nn.functional.softplus(-discriminator.call(generator.call(torch.randn(16, 32)))).mean();
    gLoss.backward();
    gOptimizer.step();
    float d = dLoss.item<float>(), g = gLoss.item<float>();
    finite &= float.IsFinite(d) && float.IsFinite(g);
    if (step % 10 == 0 || step == steps) Console.WriteLine($"step {step,4}  d_loss {d:F4}  g_loss {g:F4}");
}

bool Changed(nn.Module m, List<Tensor> before) => m.parameters().Zip(before).Any(t => !t.First.allclose(t.Second));
bool gChanged = Changed(generator, gBefore), dChanged = Changed(discriminator, dBefore);
Console.WriteLine($"finite losses: {finite}");
Console.WriteLine($"generator parameters changed: {gChanged}");
Console.WriteLine($"discriminator parameters changed: {dChanged}");
return finite && gChanged && dChanged ? 0 : 1;

// Soft coloured discs on a dark background, in [−1, 1].
static Tensor Blobs(int n)
{
    var axis = torch.linspace(-1, 1, 32);
    var y = axis.view(1, 1, 32, 1);
    var x = axis.view(1, 1, 1, 32);
    var cx = torch.rand(n, 1, 1, 1) * 1.2 - 0.6;
    var cy = torch.rand(n, 1, 1, 1) * 1.2 - 0.6;
    var disc = torch.sigmoid((0.4 - ((x - cx).square() + (y - cy).square()).sqrt()) * 20);
    var colour = torch.rand(n, 3, 1, 1);
    return disc * colour * 2 - 1;
}

/// <summary>z → dense 4×4×64 → three (upsample, 3×3 conv, LeakyReLU, pixel norm) blocks → 1×1 conv to RGB → tanh.</summary>
sealed class DcganGenerator : nn.Module<Tensor, Tensor>
{
    private readonly WeightScaledDense input;
    private readonly WeightScaledConv2D conv1, conv2, conv3, toRgb;
    private readonly PixelNormalization norm = new();

    public DcganGenerator(int latentSize) : base(nameof(DcganGenerator))
    {
        input = new WeightScaledDense(latentSize, 64 * 4 * 4, gain: Math.Sqrt(2) / 4);
        conv1 = new WeightScaledConv2D(64, 64);
        conv2 = new WeightScaledConv2D(64, 32);
        conv3 = new WeightScaledConv2D(32, 16);
        toRgb = new WeightScaledConv2D(16, 3, kernelSize: 1, gain: 1.0);
        RegisterComponents();
    }

    public override Tensor forward(Tensor z)
    {
        var x = norm.call(nn.functional.leaky_relu(input.call(norm.call(z)).view(-1, 64, 4, 4), 0.2));
        foreach (var conv in new[] { conv1, conv2, conv3 })
            x = norm.call(nn.functional.leaky_relu(conv.call(nn.functional.interpolate(x, scale_factor: [2.0, 2.0])), 0.2));
        return torch.tanh(toRgb.call(x));
    }
}

/// <summary>RGB → 1×1 conv → three (3×3 conv, LeakyReLU, 2×2 average pool) blocks → minibatch stddev → dense → score.</summary>
sealed class DcganDiscriminator : nn.Module<Tensor, Tensor>
{
    private readonly WeightScaledConv2D fromRgb, conv1, conv2, conv3;
    private readonly MinibatchStdev stdev = new(groupSize: 4);
    private readonly WeightScaledDense output;

    public DcganDiscriminator() : base(nameof(DcganDiscriminator))
    {
        fromRgb = new WeightScaledConv2D(3, 16, kernelSize: 1);
        conv1 = new WeightScaledConv2D(16, 32);
        conv2 = new WeightScaledConv2D(32, 64);
        conv3 = new WeightScaledConv2D(64, 64);
        output = new WeightScaledDense((64 + 1) * 4 * 4, 1, gain: 1.0);
        RegisterComponents();
    }

    public override Tensor forward(Tensor image)
    {
        var x = nn.functional.leaky_relu(fromRgb.call(image), 0.2);
        foreach (var conv in new[] { conv1, conv2, conv3 })
            x = nn.functional.avg_pool2d(nn.functional.leaky_relu(conv.call(x), 0.2), 2);
        return output.call(stdev.call(x));
    }
}
