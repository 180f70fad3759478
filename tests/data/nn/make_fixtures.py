#!/usr/bin/python3
"""make_fixtures.py - PyTorch reference values for tests/unit/test_nn_torch.c.

Run from the repository root with Debian's PyTorch (python3-torch):

    /usr/bin/python3 tests/data/nn/make_fixtures.py

It writes one small file per case into tests/data/nn/ (the files are
committed; the C test never needs torch). Each case builds fixed inputs
from torch.manual_seed(case index), runs the op forward in float32 on the
CPU, then backward from a fixed random upstream gradient "dy" (or from the
loss itself for the cross-entropy cases), and stores inputs, parameters,
the forward output and every gradient.

File format (little-endian): b"NNFX", u32 count, then per array
u32 name length, name bytes, u32 ndim, u32 shape[ndim], float32 data.
Integer settings (stride, padding, labels, ...) are stored as float
arrays too ("cfg", "labels").
"""
import os
import struct

import torch
import torch.nn.functional as F

OUT = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)


def write(name, arrays):
    path = os.path.join(OUT, name + ".bin")
    with open(path, "wb") as f:
        f.write(b"NNFX")
        f.write(struct.pack("<I", len(arrays)))
        for key, t in arrays.items():
            t = t.detach().to(torch.float32).contiguous()
            shape = list(t.shape) if t.dim() > 0 else [1]
            kb = key.encode()
            f.write(struct.pack("<I", len(kb)))
            f.write(kb)
            f.write(struct.pack("<I", len(shape)))
            f.write(struct.pack("<%dI" % len(shape), *shape))
            f.write(struct.pack("<%df" % t.numel(), *t.reshape(-1).tolist()))


def leaf(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape) * (hi - lo) + lo).requires_grad_(True)


def cfg(*v):
    return torch.tensor(v, dtype=torch.float32)


def backward_from(y):
    dy = torch.randn(y.shape)
    y.backward(dy)
    return dy


def conv_case(idx, name, n, cin, h, w, cout, k, stride, pad, dil, groups, bias):
    torch.manual_seed(idx)
    x = leaf(n, cin, h, w)
    wt = leaf(cout, cin // groups, k, k, lo=-0.5, hi=0.5)
    b = leaf(cout, lo=-0.5, hi=0.5) if bias else None
    y = F.conv2d(x, wt, b, stride=stride, padding=pad, dilation=dil, groups=groups)
    dy = backward_from(y)
    a = {"cfg": cfg(stride, pad, dil, groups, bias), "x": x, "w": wt}
    if bias:
        a["b"] = b
    a.update({"y": y, "dy": dy, "dx": x.grad, "dw": wt.grad})
    if bias:
        a["db"] = b.grad
    write(name, a)


def pool_case(idx, name, is_max, k, stride, pad):
    torch.manual_seed(idx)
    x = leaf(2, 3, 9, 9)
    if is_max:
        y = F.max_pool2d(x, k, stride, pad)
    else:
        y = F.avg_pool2d(x, k, stride, pad, count_include_pad=False)
    dy = backward_from(y)
    write(name, {"cfg": cfg(is_max, k, stride, pad), "x": x, "y": y, "dy": dy, "dx": x.grad})


def bn_case(idx, name, training, affine):
    torch.manual_seed(idx)
    x = leaf(4, 3, 5, 5, lo=-1.0, hi=2.0)
    gamma = leaf(3, lo=0.5, hi=1.5) if affine else None
    beta = leaf(3, lo=-0.5, hi=0.5) if affine else None
    rm0 = torch.rand(3) - 0.5
    rv0 = torch.rand(3) + 0.5
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=bool(training), momentum=0.1, eps=1e-5)
    dy = backward_from(y)
    a = {"cfg": cfg(training, affine), "x": x, "rm0": rm0, "rv0": rv0}
    if affine:
        a.update({"gamma": gamma, "beta": beta})
    a.update({"y": y, "dy": dy, "dx": x.grad, "rm": rm, "rv": rv})
    if affine:
        a.update({"dgamma": gamma.grad, "dbeta": beta.grad})
    write(name, a)


def main():
    idx = 0

    def nxt():
        nonlocal idx
        idx += 1
        return idx

    conv_case(nxt(), "conv_basic", 2, 3, 8, 8, 4, 3, 1, 1, 1, 1, 1)
    conv_case(nxt(), "conv_s2_d2_g2", 2, 4, 9, 9, 6, 3, 2, 2, 2, 2, 1)
    conv_case(nxt(), "conv_dw_s2", 2, 4, 8, 8, 4, 3, 2, 1, 1, 4, 0)
    conv_case(nxt(), "conv_dw_dil", 2, 4, 9, 9, 4, 5, 1, 4, 2, 4, 0)
    conv_case(nxt(), "conv_1x1_s2", 2, 4, 6, 6, 3, 1, 2, 0, 1, 1, 0)
    pool_case(nxt(), "maxpool_3_2_1", 1, 3, 2, 1)
    pool_case(nxt(), "avgpool_3_1_1", 0, 3, 1, 1)
    pool_case(nxt(), "avgpool_3_2_1", 0, 3, 2, 1)
    bn_case(nxt(), "bn_train_affine", 1, 1)
    bn_case(nxt(), "bn_train_plain", 1, 0)
    bn_case(nxt(), "bn_eval", 0, 1)

    torch.manual_seed(nxt())
    x = leaf(2, 3, 4, 4)
    y = F.relu(x)
    dy = backward_from(y)
    write("relu", {"x": x, "y": y, "dy": dy, "dx": x.grad})

    torch.manual_seed(nxt())
    x = leaf(2, 3, 4, 5)
    y = x.mean(dim=(2, 3))
    dy = backward_from(y)
    write("gap", {"x": x, "y": y, "dy": dy, "dx": x.grad})

    torch.manual_seed(nxt())
    x, w, b = leaf(4, 12), leaf(5, 12, lo=-0.5, hi=0.5), leaf(5, lo=-0.5, hi=0.5)
    y = F.linear(x, w, b)
    dy = backward_from(y)
    write("linear", {"x": x, "w": w, "b": b, "y": y, "dy": dy, "dx": x.grad, "dw": w.grad,
                     "db": b.grad})

    torch.manual_seed(nxt())
    z = leaf(6, 5, lo=-2.0, hi=2.0)
    labels = torch.randint(0, 5, (6,))
    loss = F.cross_entropy(z, labels)
    loss.backward()
    write("softmax_ce", {"logits": z, "labels": labels.float(), "loss": loss,
                         "probs": F.softmax(z, dim=1), "dlogits": z.grad})

    # DARTS' mixed op: row 1 of softmax(alpha) weighs four inputs
    torch.manual_seed(nxt())
    alpha = leaf(2, 4)
    xs = [leaf(2, 3, 4, 4) for _ in range(4)]
    wts = F.softmax(alpha, dim=-1)
    y = sum(wts[1, k] * xs[k] for k in range(4))
    dy = backward_from(y)
    a = {"alpha": alpha}
    for k in range(4):
        a["x%d" % k] = xs[k]
    a.update({"y": y, "dy": dy, "dalpha": alpha.grad})
    for k in range(4):
        a["dx%d" % k] = xs[k].grad
    write("mixed_op", a)

    torch.manual_seed(nxt())
    p, q, r = leaf(2, 2, 3, 3), leaf(2, 3, 3, 3), leaf(2, 1, 3, 3)
    y = torch.cat([p, q, r], dim=1)[:, 1:5]
    dy = backward_from(y)
    write("concat_slice", {"a": p, "b": q, "c": r, "y": y, "dy": dy, "da": p.grad, "db": q.grad,
                           "dc": r.grad})

    # conv-bn-relu-pool-linear-CE
    torch.manual_seed(nxt())
    x = leaf(4, 3, 8, 8)
    cw, cb = leaf(6, 3, 3, 3, lo=-0.4, hi=0.4), leaf(6, lo=-0.1, hi=0.1)
    gamma, beta = leaf(6, lo=0.8, hi=1.2), leaf(6, lo=-0.1, hi=0.1)
    lw, lb = leaf(10, 96, lo=-0.2, hi=0.2), leaf(10, lo=-0.1, hi=0.1)
    rm, rv = torch.zeros(6), torch.ones(6)
    labels = torch.randint(0, 10, (4,))
    h = F.conv2d(x, cw, cb, padding=1)
    h = F.batch_norm(h, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    h = F.max_pool2d(F.relu(h), 2, 2)
    logits = F.linear(h.flatten(1), lw, lb)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    write("net", {"x": x, "cw": cw, "cb": cb, "gamma": gamma, "beta": beta, "lw": lw, "lb": lb,
                  "labels": labels.float(), "logits": logits, "loss": loss, "rm": rm, "rv": rv,
                  "dx": x.grad, "dcw": cw.grad, "dcb": cb.grad, "dgamma": gamma.grad,
                  "dbeta": beta.grad, "dlw": lw.grad, "dlb": lb.grad})


if __name__ == "__main__":
    main()
