#!/usr/bin/python3
"""make_cnn_counts.py - PyTorch reference sizes of DARTS networks for
tests/unit/test_cnn.c: trainable parameters, multiply-adds of one forward
pass on one image, and the logits' shape, for a few small configurations
of the fixed network (a genotype) and of the supernet.

Run from the repository root with Debian's PyTorch (python3-torch):

    /usr/bin/python3 tests/data/nn/make_cnn_counts.py

It writes tests/data/nn/cnn_counts.json (committed; the C test never needs
torch). The modules follow the definitions of Liu et al., "DARTS:
Differentiable Architecture Search" (ICLR 2019): stem 3x3 conv to 3C + BN,
ReLU-conv1x1-BN or factorized-reduce preprocessing, sep/dil convs, pools,
skip, 4 nodes per cell, reductions at cells//3 and 2*cells//3, global
average pool and a linear classifier. Multiply-adds are counted with
forward hooks on every Conv2d and Linear (out.numel() * in/groups * k * k
and in * out), as NAS papers count "FLOPs".
"""
import json
import os

import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cnn_counts.json")
PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin, cout, affine):
        super().__init__(nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.BatchNorm2d(cout, affine=affine))


class FactorizedReduce(nn.Module):
    def __init__(self, cin, cout, affine):
        super().__init__()
        self.relu = nn.ReLU()
        self.c1 = nn.Conv2d(cin, cout // 2, 1, stride=2, bias=False)
        self.c2 = nn.Conv2d(cin, cout - cout // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(cout, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        # DARTS' shifted input; the zero row and column (our extension)
        # keep odd sizes working and are never sampled at even sizes
        x2 = torch.nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.c1(x), self.c2(x2)], dim=1))


def sep(c, k, stride, affine):
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(c, c, k, stride, k // 2, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=affine),
        nn.ReLU(), nn.Conv2d(c, c, k, 1, k // 2, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=affine))


def dil(c, k, stride, affine):
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(c, c, k, stride, 2 if k == 3 else 4, dilation=2, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=affine))


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


def make_op(name, c, stride, affine):
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    if name.startswith("sep_conv"):
        return sep(c, int(name[-1]), stride, affine)
    return dil(c, int(name[-1]), stride, affine)


class MixedOp(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.ops = nn.ModuleList()
        for p in PRIMITIVES:
            op = make_op(p, c, stride, False)
            if "pool" in p:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self.ops.append(op)

    def forward(self, x, w):
        return sum(wk * op(x) for wk, op in zip(w, self.ops))


class Cell(nn.Module):
    def __init__(self, genotype, cpp, cp, c, reduction, reduction_prev, search):
        super().__init__()
        affine = not search
        self.search = search
        self.pre0 = FactorizedReduce(cpp, c, affine) if reduction_prev else ReLUConvBN(cpp, c, affine)
        self.pre1 = ReLUConvBN(cp, c, affine)
        self.ops = nn.ModuleList()
        if search:
            for i in range(4):
                for j in range(2 + i):
                    self.ops.append(MixedOp(c, 2 if reduction and j < 2 else 1))
        else:
            edges = genotype["reduce" if reduction else "normal"]
            self.idx = [e[1] for e in edges]
            for name, j in edges:
                self.ops.append(make_op(name, c, 2 if reduction and j < 2 else 1, True))

    def forward(self, s0, s1, w):
        st = [self.pre0(s0), self.pre1(s1)]
        if self.search:
            off = 0
            for i in range(4):
                st.append(sum(self.ops[off + j](h, w[off + j]) for j, h in enumerate(st)))
                off += len(st) - 1
        else:
            for i in range(4):
                a, b = 2 * i, 2 * i + 1
                st.append(self.ops[a](st[self.idx[a]]) + self.ops[b](st[self.idx[b]]))
        return torch.cat(st[2:], dim=1)


class Network(nn.Module):
    def __init__(self, cin, classes, cells, c, genotype, search):
        super().__init__()
        cc = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(cin, cc, 3, padding=1, bias=False), nn.BatchNorm2d(cc))
        cpp, cp, cc = cc, cc, c
        self.cells = nn.ModuleList()
        rp = False
        self.red = []
        for i in range(cells):
            r = i in (cells // 3, 2 * cells // 3)
            if r:
                cc *= 2
            self.cells.append(Cell(genotype, cpp, cp, cc, r, rp, search))
            self.red.append(r)
            rp = r
            cpp, cp = cp, 4 * cc
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cp, classes)
        self.search = search
        if search:
            self.alphas_normal = nn.Parameter(1e-3 * torch.randn(14, 8))
            self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(14, 8))

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell, r in zip(self.cells, self.red):
            w = None
            if self.search:
                w = torch.softmax(self.alphas_reduce if r else self.alphas_normal, dim=-1)
            s0, s1 = s1, cell(s0, s1, w)
        return self.fc(self.gap(s1).flatten(1))


DARTS_V2 = {
    "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
               ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
               ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
}
MIXED = {
    "normal": [["dil_conv_5x5", 1], ["skip_connect", 0], ["avg_pool_3x3", 2], ["sep_conv_5x5", 0],
               ["dil_conv_3x3", 3], ["max_pool_3x3", 1], ["sep_conv_5x5", 4], ["skip_connect", 2]],
    "reduce": [["skip_connect", 1], ["sep_conv_3x3", 0], ["dil_conv_5x5", 2], ["avg_pool_3x3", 0],
               ["skip_connect", 0], ["sep_conv_5x5", 3], ["dil_conv_3x3", 4], ["max_pool_3x3", 1]],
}


def measure(net, cin, h, w):
    macs = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            macs[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            macs[0] += m.in_features * m.out_features

    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    net.eval()
    with torch.no_grad():
        y = net(torch.zeros(1, cin, h, w))
    params = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("alphas"))
    return params, macs[0], list(y.shape)


def main():
    torch.manual_seed(0)
    cases = []
    for name, geno, search, cin, h, w, classes, cells, c in [
        ("v2_c8_l5_8x8", DARTS_V2, False, 1, 8, 8, 10, 5, 8),
        ("mixed_c6_l4_9x7_rgb", MIXED, False, 3, 9, 7, 3, 4, 6),
        ("mixed_c4_l2_8x8", MIXED, False, 1, 8, 8, 5, 2, 4),
        ("search_c4_l3_8x8", None, True, 1, 8, 8, 10, 3, 4),
    ]:
        net = Network(cin, classes, cells, c, geno, search)
        params, macs, shape = measure(net, cin, h, w)
        cases.append({"name": name, "genotype": geno, "search": search, "in_channels": cin,
                      "height": h, "width": w, "n_classes": classes, "cells": cells,
                      "channels": c, "param_count": params, "macs": macs, "logits": shape})
    with open(OUT, "w") as f:
        json.dump({"cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
