#!/usr/bin/python3
"""gpu_step.py - the CNN engine's DARTS figures beside PyTorch's, on a GPU.

Builds bench/gpu_step.c (needs `make` with CUDA first: build/release/
libnncuda.a), then for the DARTS search step (the supernet: 8 cells,
C=16, 4 nodes, 8 candidate ops per edge) and the retrained network
(DARTS_V2 cells) times a training step on the same network shape and
batch in both:

  - ours on CUDA (fp32, and TF32 with --tf32 rows), ours on the CPU
    (a couple of steps, for scale),
  - PyTorch with cuDNN on the same GPU, fp32 (TF32 off in cuDNN and
    cuBLAS) and TF32 (PyTorch's default for convolutions),

and prints images/s, ms per step and the epoch time (50,000 images at the
measured step time), with ours/PyTorch throughput ratios (the goal is
>= 0.8). Each step uploads the batch and reads the loss back on both
sides. Without torch, or torch without CUDA, the PyTorch columns say so
and the rest still runs. Run from the repository root:

    /usr/bin/python3 bench/gpu_step.py [steps]      (GPU_BENCH_CPU=0: no CPU rows)
"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUDA_HOME = os.environ.get("CUDA_HOME", "/usr/local/cuda")
SEARCH = dict(mode="search", batch=64, c=16, cells=8, size=32)
RETRAIN = dict(mode="retrain", batch=96, c=36, cells=20, size=32)
EPOCH_IMAGES = 50000

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    TORCH_WHY = None if torch.cuda.is_available() else \
        "torch %s has no usable CUDA device" % torch.__version__
except ImportError as e:  # no torch on this machine
    torch = None
    TORCH_WHY = "no torch (%s)" % e


# --- the same networks in PyTorch (structure of tests/support/darts_net.c) ---------
OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
       "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
V2_NORMAL = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
             ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)]
V2_REDUCE = [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
             ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]

if torch is not None:
    class FactReduce(nn.Module):
        # as darts_net.c: both 1x1 convs see the same pixels (no shift)
        def __init__(self, cin, cout, affine):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
            self.c2 = nn.Conv2d(cin, cout - cout // 2, 1, 2, bias=False)
            self.bn = nn.BatchNorm2d(cout, affine=affine)

        def forward(self, x):
            x = F.relu(x)
            return self.bn(torch.cat([self.c1(x), self.c2(x)], 1))

    def relu_conv_bn(cin, cout, affine):
        return nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False),
                             nn.BatchNorm2d(cout, affine=affine))

    def make_op(name, c, stride, search):
        affine = not search
        if name == "none":
            return None
        if name in ("max_pool_3x3", "avg_pool_3x3"):
            pool = nn.MaxPool2d(3, stride, 1) if name[0] == "m" else \
                nn.AvgPool2d(3, stride, 1, count_include_pad=False)
            return nn.Sequential(pool, nn.BatchNorm2d(c, affine=False)) if search else pool
        if name == "skip_connect":
            return nn.Identity() if stride == 1 else FactReduce(c, c, affine)
        k = int(name[-1])
        if name.startswith("sep"):
            return nn.Sequential(
                nn.ReLU(), nn.Conv2d(c, c, k, stride, k // 2, groups=c, bias=False),
                nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=affine),
                nn.ReLU(), nn.Conv2d(c, c, k, 1, k // 2, groups=c, bias=False),
                nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=affine))
        return nn.Sequential(
            nn.ReLU(), nn.Conv2d(c, c, k, stride, k - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=affine))

    class Edge(nn.Module):
        def __init__(self, names, c, stride, search):
            super().__init__()
            self.names, self.stride, self.c = names, stride, c
            self.ops = nn.ModuleList([make_op(n, c, stride, search) or nn.Identity() for n in names])

        def forward(self, x, w):
            outs = []
            for name, op in zip(self.names, self.ops):
                if name == "none":
                    n, _, h, wd = x.shape
                    outs.append(x.new_zeros(n, self.c, (h - 1) // self.stride + 1,
                                            (wd - 1) // self.stride + 1))
                else:
                    outs.append(op(x))
            if w is None:
                return sum(outs)
            return sum(wk * o for wk, o in zip(w, outs))

    class Cell(nn.Module):
        def __init__(self, c_pp, c_p, c, reduction, reduction_prev, search, nodes=4):
            super().__init__()
            affine = not search
            self.pre0 = FactReduce(c_pp, c, affine) if reduction_prev else relu_conv_bn(c_pp, c, affine)
            self.pre1 = relu_conv_bn(c_p, c, affine)
            self.nodes, self.search = nodes, search
            geno = V2_REDUCE if reduction else V2_NORMAL
            self.edges, self.index = nn.ModuleList(), []
            for i in range(nodes):
                for j in range(2 + i):
                    stride = 2 if reduction and j < 2 else 1
                    names = OPS if search else [n for (n, src) in geno[2 * i:2 * i + 2] if src == j]
                    self.index.append(len(self.edges) if names else -1)
                    if names:
                        self.edges.append(Edge(names, c, stride, search))

        def forward(self, s0, s1, weights):
            states = [self.pre0(s0), self.pre1(s1)]
            e = 0
            for i in range(self.nodes):
                acc = None
                for j in range(2 + i):
                    k = self.index[e]
                    if k >= 0:
                        out = self.edges[k](states[j], weights[e] if weights is not None else None)
                        acc = out if acc is None else acc + out
                    e += 1
                states.append(acc)
            return torch.cat(states[2:], 1)

    class Net(nn.Module):
        def __init__(self, c, cells, search, classes=10, nodes=4):
            super().__init__()
            stem = 3 * c
            self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem))
            self.cells = nn.ModuleList()
            c_pp, c_p, c_cur, red_prev = stem, stem, c, False
            for i in range(cells):
                red = cells >= 3 and i in (cells // 3, 2 * cells // 3)
                if red:
                    c_cur *= 2
                cell = Cell(c_pp, c_p, c_cur, red, red_prev, search, nodes)
                cell.reduction = red
                self.cells.append(cell)
                red_prev = red
                c_pp, c_p = c_p, nodes * c_cur
            self.fc = nn.Linear(c_p, classes)
            self.search = search
            if search:
                n_edges = nodes * (nodes + 3) // 2
                self.alpha_normal = nn.Parameter(1e-3 * torch.randn(n_edges, len(OPS)))
                self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(n_edges, len(OPS)))

        def forward(self, x):
            wn = F.softmax(self.alpha_normal, -1) if self.search else None
            wr = F.softmax(self.alpha_reduce, -1) if self.search else None
            s0 = s1 = self.stem(x)
            for cell in self.cells:
                s0, s1 = s1, cell(s0, s1, wr if cell.reduction else wn)
            return self.fc(s1.mean(dim=(2, 3)))

    def torch_step_s(cfg, steps, tf32):
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.manual_seed(1)
        dev = torch.device("cuda")
        net = Net(cfg["c"], cfg["cells"], cfg["mode"] == "search").to(dev)
        opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        b, s = cfg["batch"], cfg["size"]
        x = torch.rand(b, 3, s, s) * 2 - 1
        y = torch.arange(b) % 10
        torch.cuda.reset_peak_memory_stats()
        for step in range(-3, steps):
            if step == 0:
                torch.cuda.synchronize()
                t0 = time.perf_counter()
            opt.zero_grad()
            loss = F.cross_entropy(net(x.to(dev)), y.to(dev))
            loss.backward()
            opt.step()
            loss.item()
        return (time.perf_counter() - t0) / steps, torch.cuda.max_memory_allocated()


# --- ours ------------------------------------------------------------------------------
def build():
    exe = os.path.join(ROOT, "build", "gpu_step")
    cuda_lib = os.path.join(ROOT, "build", "release", "libnncuda.a")
    if not os.path.exists(cuda_lib):
        sys.exit("gpu_step.py: %s is missing: run `make` on a machine with nvcc and cuDNN" % cuda_lib)
    libs = subprocess.run(["pkg-config", "--libs", "openblas", "libcjson"], capture_output=True,
                          text=True, check=True).stdout.split()
    libdir = os.path.join(CUDA_HOME, "lib64")
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-I" + ROOT,
                    os.path.join(ROOT, "bench", "gpu_step.c"),
                    os.path.join(ROOT, "tests", "support", "darts_net.c"),
                    os.path.join(ROOT, "build", "release", "libnn.a"), cuda_lib] + libs +
                   ["-L" + libdir, "-Wl,-rpath," + libdir, "-lcudnn", "-lcublas", "-lcudart",
                    "-lstdc++", "-lpthread", "-lm", "-o", exe], check=True)
    return exe


def ours(exe, cfg, steps, device, tf32=False, threads=1):
    cmd = [exe, "--device", device, "--steps", str(steps), "--threads", str(threads),
           "--epoch-images", str(EPOCH_IMAGES)]
    for k in ("mode", "batch", "c", "cells", "size"):
        cmd += ["--" + k, str(cfg[k])]
    if tf32:
        cmd.append("--tf32")
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), out.stderr.strip()))
    vals = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    return float(vals["ms_per_step"]) / 1000.0, vals


def row(label, cfg, secs, mem, ref=None):
    ips = cfg["batch"] / secs
    epoch = -(-EPOCH_IMAGES // cfg["batch"]) * secs
    ratio = "%6.2fx" % (ips / (cfg["batch"] / ref)) if ref else "      "
    print("  %-26s %10.1f %10.2f %10.1f %8.0f MiB  %s" % (label, ips, secs * 1000, epoch,
                                                         mem / 2**20, ratio))


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    exe = build()
    failed = False
    for cfg in (SEARCH, RETRAIN):
        print("\n%s: batch %d, %dx%d, C=%d, %d cells (%d timed steps; epoch = %d images)" %
              (cfg["mode"], cfg["batch"], cfg["size"], cfg["size"], cfg["c"], cfg["cells"], steps,
               EPOCH_IMAGES))
        print("  %-26s %10s %10s %10s %12s  %s" % ("", "images/s", "ms/step", "epoch s",
                                                   "peak mem", "ours/torch"))
        ref = {}
        if TORCH_WHY is None:
            for tf32 in (False, True):
                try:
                    ref[tf32] = torch_step_s(cfg, steps, tf32)
                except Exception as e:  # report, keep going
                    print("  pytorch %s failed: %s" % ("tf32" if tf32 else "fp32", e))
        for tf32 in (False, True):
            tag = "tf32" if tf32 else "fp32"
            try:
                secs, vals = ours(exe, cfg, steps, "cuda", tf32)
                row("podium cuda " + tag, cfg, secs, float(vals["peak_memory_bytes"]),
                    ref[tf32][0] if tf32 in ref else None)
            except RuntimeError as e:
                print("  podium cuda %s: %s" % (tag, e))
                failed = True
            if tf32 in ref:
                row("pytorch cuda " + tag + " (" + torch.__version__ + ")", cfg, ref[tf32][0],
                    ref[tf32][1])
        if TORCH_WHY is not None:
            print("  pytorch: skipped: %s" % TORCH_WHY)
        threads = os.cpu_count() or 1
        if os.environ.get("GPU_BENCH_CPU", "1") == "0":
            continue
        try:
            secs, vals = ours(exe, cfg, 2, "cpu", threads=threads)
            row("podium cpu (%d threads)" % threads, cfg, secs, float(vals["peak_memory_bytes"]))
        except RuntimeError as e:
            print("  podium cpu: %s" % e)
            failed = True
    print("\nthroughput goal: ours >= 0.8x PyTorch's (ours/torch column, same precision)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
