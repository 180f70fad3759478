#!/usr/bin/python3
"""nn_step.py - one CNN training step, the CNN engine (nn/) against PyTorch.

Builds bench/nn_step.c against build/release/libnn.a (run `make` first),
then for 1 and 2 threads times a training step (forward, backward, SGD
with momentum 0.9) of the same network on the same batch shape in both,
and prints the figures side by side (best of 3 interleaved rounds each,
so that other load on the machine hurts both alike). Run from the
repository root:

    /usr/bin/python3 bench/nn_step.py [steps]

Network: 28x28x1 input, batch 64; three conv3x3-BN-ReLU blocks (16, 32,
32 channels) with 2x2 max pools after the first two, global average pool,
linear to 10 classes, softmax cross-entropy.
"""
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 64
ROUNDS = 3


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.c2, self.b2 = nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.c3, self.b3 = nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        x = F.relu(self.b3(self.c3(x))).mean(dim=(2, 3))
        return self.fc(x)


def torch_step_ms(threads, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(BATCH, 1, 28, 28)
    y = torch.arange(BATCH) % 10
    for step in range(-3, steps):
        if step == 0:
            t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return 1000 * (time.perf_counter() - t0) / steps


def build():
    exe = os.path.join(ROOT, "build", "nn_step")
    libs = subprocess.run(["pkg-config", "--libs", "openblas"], capture_output=True, text=True,
                          check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-I" + ROOT,
                    os.path.join(ROOT, "bench", "nn_step.c"),
                    os.path.join(ROOT, "build", "release", "libnn.a")] + libs +
                   ["-lpthread", "-lm", "-o", exe], check=True)
    return exe


def ours_step_ms(exe, threads, steps):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run([exe, str(threads), str(steps)], capture_output=True, text=True,
                         check=True, env=env).stdout
    vals = dict(line.split() for line in out.splitlines())
    return float(vals["ms_per_step"]), vals


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    exe = build()
    print("one training step, batch %d, 28x28x1, 3 conv blocks "
          "(best of %d rounds of %d steps)" % (BATCH, ROUNDS, steps))
    print("%-8s %12s %12s %8s" % ("threads", "podium ms", "torch ms", "ratio"))
    info = None
    for t in (1, 2):
        # interleaved rounds, best of each: robust to other load on the machine
        ours, ref = float("inf"), float("inf")
        for _ in range(ROUNDS):
            o, info = ours_step_ms(exe, t, steps)
            ours, ref = min(ours, o), min(ref, torch_step_ms(t, steps))
        print("%-8d %12.2f %12.2f %8.2f" % (t, ours, ref, ours / ref))
    print("podium: %s parameters, %s MACs per forward; torch %s" %
          (info["params"], info["macs_per_forward"], torch.__version__))


if __name__ == "__main__":
    main()
