#!/usr/bin/python3
"""darts_step.py - one training step of the DARTS_V2 network (the "cnn"
family's default), the CNN engine (nn/) against PyTorch.

Builds bench/darts_step.c against build/release/lib{trainers,nn,podium}.a
(run `make` first), then for 1 and 2 threads times a training step
(forward, backward, SGD with momentum 0.9) of the same network on the same
batch shape in both, and prints the figures side by side (best of 3
interleaved rounds each, so that other load on the machine hurts both
alike). Run from the repository root:

    /usr/bin/python3 bench/darts_step.py [steps] [batch]

Network (trainers/cnnnet.h, Liu et al.'s model.py without drop path or
auxiliary head): 28x28x1 input, batch 64; stem conv3x3 to 48 channels + BN;
5 cells of 16 channels (reduction cells at 1 and 3) on the DARTS_V2
genotype: sep_conv_3x3, dil_conv_3x3, skip_connect, max_pool_3x3,
factorized reduces; global average pool, linear to 10 classes,
softmax cross-entropy.
"""
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = 3
CELLS, C, CLASSES = 5, 16, 10

NORMAL = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
          ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)]
REDUCE = [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
          ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]


def relu_conv_bn(cin, cout, k, stride, pad):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, k, stride, pad, bias=False),
                         nn.BatchNorm2d(cout))


class FactorizedReduce(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.c2 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(x)
        return self.bn(torch.cat([self.c1(x), self.c2(x[:, :, 1:, 1:])], dim=1))


def dil_conv(c, k, stride, pad, dil):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, stride, pad, dilation=dil, groups=c,
                                              bias=False),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


def sep_conv(c, k, stride, pad):
    return nn.Sequential(dil_conv(c, k, stride, pad, 1), dil_conv(c, k, 1, pad, 1))


def make_op(name, c, stride):
    if name == "sep_conv_3x3":
        return sep_conv(c, 3, stride, 1)
    if name == "dil_conv_3x3":
        return dil_conv(c, 3, stride, 2, 2)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    raise ValueError(name)


class Cell(nn.Module):
    def __init__(self, genotype, cpp, cp, c, reduction, reduction_prev):
        super().__init__()
        self.pre0 = FactorizedReduce(cpp, c) if reduction_prev else relu_conv_bn(cpp, c, 1, 1, 0)
        self.pre1 = relu_conv_bn(cp, c, 1, 1, 0)
        self.edges = nn.ModuleList()
        self.inputs = []
        for name, inp in genotype:
            stride = 2 if reduction and inp < 2 else 1
            self.edges.append(make_op(name, c, stride))
            self.inputs.append(inp)

    def forward(self, s0, s1):
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(4):
            h = sum(self.edges[2 * i + j](states[self.inputs[2 * i + j]]) for j in range(2))
            states.append(h)
        return torch.cat(states[2:], dim=1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        c_curr = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(1, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        cpp, cp, c = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(CELLS):
            reduction = i in (CELLS // 3, 2 * CELLS // 3)
            if reduction:
                c *= 2
            self.cells.append(Cell(REDUCE if reduction else NORMAL, cpp, cp, c, reduction,
                                   reduction_prev))
            reduction_prev = reduction
            cpp, cp = cp, 4 * c
        self.fc = nn.Linear(cp, CLASSES)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.fc(s1.mean(dim=(2, 3)))


def torch_step_ms(threads, steps, batch):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.arange(batch) % CLASSES
    for step in range(-2, steps):
        if step == 0:
            t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return 1000 * (time.perf_counter() - t0) / steps, sum(p.numel() for p in net.parameters())


def build():
    exe = os.path.join(ROOT, "build", "darts_step")
    rel = os.path.join(ROOT, "build", "release")
    libs = subprocess.run(["pkg-config", "--libs", "openblas", "libcjson"], capture_output=True,
                          text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-I" + ROOT,
                    os.path.join(ROOT, "bench", "darts_step.c"),
                    os.path.join(rel, "libtrainers.a"), os.path.join(rel, "libnn.a"),
                    os.path.join(rel, "libpodium.a")] + libs +
                   ["-lpthread", "-lm", "-o", exe], check=True)
    return exe


def ours_step_ms(exe, threads, steps, batch):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([exe, str(threads), str(steps), "fixed", str(batch)],
                         capture_output=True, text=True, check=True, env=env).stdout
    vals = dict(line.split() for line in out.splitlines())
    return float(vals["ms_per_step"]), vals


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    exe = build()
    print("one training step of DARTS_V2 (%d cells, C=%d), batch %d, 28x28x1 "
          "(best of %d rounds of %d steps)" % (CELLS, C, batch, ROUNDS, steps))
    print("%-8s %12s %12s %8s" % ("threads", "podium ms", "torch ms", "ratio"))
    info, tparams = None, 0
    for t in (1, 2):
        ours, ref = float("inf"), float("inf")
        for _ in range(ROUNDS):
            o, info = ours_step_ms(exe, t, steps, batch)
            r, tparams = torch_step_ms(t, steps, batch)
            ours, ref = min(ours, o), min(ref, r)
        print("%-8d %12.2f %12.2f %8.2f" % (t, ours, ref, ours / ref))
    print("podium: %s parameters, %s MACs per image; torch %s parameters, %s" %
          (info["params"], info["macs_per_image"], tparams, torch.__version__))


if __name__ == "__main__":
    main()
