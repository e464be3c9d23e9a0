# Is bfloat16 a lever for the CPU preset? Times a 3x3 convolution's forward and backward (input and weight
# gradients: 3x the forward's FLOPs) in float32 and in bfloat16 for the preset's shapes, minibatch 8, on all cores.
#   /usr/bin/python3 bench/bf16_conv.py      (Debian's python3-torch; oneDNN uses AVX512-BF16 where the CPU has it)
import os
import time
import torch

torch.set_num_threads(os.cpu_count())


def gflops(dtype, cin, cout, res, n=8, reps=30):
    x = torch.randn(n, cin, res, res, dtype=dtype, requires_grad=True)
    w = torch.randn(cout, cin, 3, 3, dtype=dtype, requires_grad=True)
    for _ in range(5):
        torch.nn.functional.conv2d(x, w, padding=1).sum().backward()
    start = time.perf_counter()
    for _ in range(reps):
        torch.nn.functional.conv2d(x, w, padding=1).sum().backward()
    seconds = (time.perf_counter() - start) / reps
    return 3 * 2 * n * res * res * cin * cout * 9 / seconds / 1e9


print("torch", torch.__version__, "threads", torch.get_num_threads())
for cin, cout, res in [(32, 32, 32), (64, 32, 32), (64, 64, 32), (64, 64, 16), (128, 128, 16)]:
    f, b = gflops(torch.float32, cin, cout, res), gflops(torch.bfloat16, cin, cout, res)
    print(f"{cin:>4}->{cout:<4} at {res}²: float32 {f:6.0f} GFLOP/s, bfloat16 {b:6.0f} GFLOP/s, x{b / f:.2f}")
