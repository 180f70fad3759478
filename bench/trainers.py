#!/usr/bin/python3
"""bench/trainers.py - podium-train beside scikit-learn and XGBoost.

Runs bin/podium-train (5-fold CV) on each data set, reads the fold of every
row back from its out-of-fold file (MODEL.pdm.oof.csv), and fits scikit-learn
(LogisticRegression / Ridge, RandomForest, HistGradientBoosting) and XGBoost's
`hist` on exactly those folds with the same settings and 2 threads each. Prints
one table: CV accuracy and log loss (classification) or R2 and RMSE
(regression), and the fit time summed over the folds (preprocessing included
for ours: podium's `cv_fit_seconds`).

A benchmark, not a test: it is never part of `make test`.
Needs: python3-sklearn python3-xgboost (Debian), a built bin/podium-train.

    /usr/bin/python3 bench/trainers.py                 # all data sets
    /usr/bin/python3 bench/trainers.py --quick         # skip the 50k-row synthetic set
    /usr/bin/python3 bench/trainers.py --bin build/san/bin --data iris
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

THREADS = 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))      # HistGradientBoosting
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data", "tabular")

DATASETS = [
    # name, file, target, task
    ("iris", "iris.csv", "species", "classification"),
    ("breast_cancer", "breast_cancer.csv", "diagnosis", "classification"),
    ("diabetes", "diabetes.csv", "progression", "regression"),
]

# Our family, our params, and the matching settings of the peers.
MODELS = {
    "linear": {"params": {"C": 1.0, "max_iter": 1000, "tol": 1e-4},
               "reg_params": {"alpha": 1e-3, "l1_ratio": 0.0}},
    "rf": {"params": {"n_estimators": 100}},
    "gbm": {"params": {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 6,
                       "max_bins": 255, "min_child_weight": 1, "reg_lambda": 1}},
}


def find_data(fname):
    for d in (os.path.join(ROOT, "tests", "data", "train"), SHARED,
              os.path.join(ROOT, "tests", "data", "tabular")):
        p = os.path.join(d, fname)
        if os.path.exists(p):
            return p
    sys.exit("bench: cannot find %s" % fname)


def load_xy(path, target):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    t = head.index(target)
    cols = [i for i in range(len(head)) if i != t]
    x = np.array([[float(r[i]) for i in cols] for r in body], dtype=np.float64)
    y = [r[t] for r in body]
    return x, y


def run_ours(bindir, data, target, task, family, params, workdir, tag):
    art = os.path.join(workdir, tag + ".pdm")
    spec = {"data": data, "target": target, "task": task,
            "model": {"family": family, "params": params},
            "cv": {"folds": 5, "seed": 0}, "threads": THREADS, "artifact": art,
            "metric": "accuracy" if task == "classification" else "r2"}
    t0 = time.perf_counter()
    p = subprocess.run([os.path.join(bindir, "podium-train")], input=json.dumps(spec),
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    last = json.loads(p.stdout.strip().splitlines()[-1])
    if p.returncode != 0 or last.get("event") != "result":
        sys.exit("bench: podium-train failed (%d): %s\n%s" % (p.returncode, last, p.stderr[-2000:]))
    folds = {}
    with open(art + ".oof.csv", newline="") as f:
        for r in csv.DictReader(f):
            folds[int(r["row"])] = int(r["fold"])
    m = last["metrics"]
    if task == "classification":
        s1, s2 = m["accuracy"]["mean"], m["logloss"]["mean"]
    else:
        s1, s2 = m["r2"]["mean"], m["rmse"]["mean"]
    return s1, s2, last["cv_fit_seconds"], wall, folds


def peers(task, family, n_train):
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                  RandomForestClassifier, RandomForestRegressor)
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    out = []
    clf = task == "classification"
    if family == "linear":
        if clf:
            out.append(("sklearn LogisticRegression",
                        lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, tol=1e-4))))
        else:  # ours: 1/(2n)||r||^2 + alpha/2 ||w||^2  ==  Ridge(alpha * n)
            out.append(("sklearn Ridge",
                        lambda: make_pipeline(StandardScaler(), Ridge(alpha=1e-3 * n_train))))
    elif family == "rf":
        cls = RandomForestClassifier if clf else RandomForestRegressor
        kw = {} if clf else {"max_features": 1.0}
        out.append(("sklearn RandomForest",
                    lambda: cls(n_estimators=100, n_jobs=THREADS, random_state=0, **kw)))
    elif family == "gbm":
        cls = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
        out.append(("sklearn HistGradientBoosting",
                    lambda: cls(max_iter=100, learning_rate=0.1, max_depth=6, max_leaf_nodes=None,
                                max_bins=255, l2_regularization=1.0, min_samples_leaf=1,
                                early_stopping=False, random_state=0)))
        try:
            import xgboost as xgb
            xcls = xgb.XGBClassifier if clf else xgb.XGBRegressor
            out.append(("xgboost hist",
                        lambda: xcls(tree_method="hist", n_estimators=100, learning_rate=0.1, max_depth=6,
                                     max_bin=255, min_child_weight=1, reg_lambda=1.0, n_jobs=THREADS,
                                     random_state=0)))
        except ImportError:
            pass
    return out


def cv_peer(make, x, y, task, fold_of, classes):
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score
    k = max(fold_of) + 1
    s1, s2, fit = [], [], 0.0
    for f in range(k):
        tr, va = fold_of != f, fold_of == f
        m = make()
        t0 = time.perf_counter()
        m.fit(x[tr], y[tr])
        fit += time.perf_counter() - t0
        if task == "classification":
            p = m.predict_proba(x[va])
            full = np.zeros((va.sum(), len(classes)))
            full[:, m.classes_.astype(int)] = p
            s1.append(accuracy_score(y[va], full.argmax(1)))
            s2.append(log_loss(y[va], np.clip(full, 1e-15, 1), labels=list(range(len(classes)))))
        else:
            p = m.predict(x[va])
            s1.append(r2_score(y[va], p))
            s2.append(mean_squared_error(y[va], p) ** 0.5)
    return float(np.mean(s1)), float(np.mean(s2)), fit


def synthetic(workdir, n):
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=n, n_features=30, n_informative=15, n_redundant=5,
                               n_classes=2, random_state=0)
    path = os.path.join(workdir, "synthetic_%d.csv" % n)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["f%d" % i for i in range(30)] + ["label"])
        for row, lab in zip(x, y):
            w.writerow(["%.6g" % v for v in row] + ["c%d" % lab])
    return ("synthetic_%dk" % (n // 1000), path, "label", "classification")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin"))
    ap.add_argument("--quick", action="store_true", help="skip the synthetic set")
    ap.add_argument("--rows", type=int, default=50000, help="rows of the synthetic set")
    ap.add_argument("--data", action="append", help="only these data sets")
    ap.add_argument("--models", default="linear,rf,gbm")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per implementation on the small sets; the fastest is shown (1 on the synthetic set)")
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="podium-bench-")
    # run a private copy, so that a rebuild during the bench does not race it
    src = os.path.join(a.bin, "podium-train")
    if not os.access(src, os.X_OK):
        sys.exit("bench: %s not found; run make first" % src)
    shutil.copy2(src, os.path.join(workdir, "podium-train"))
    a.bin = workdir
    sets = [(n, find_data(f), t, k) for n, f, t, k in DATASETS]
    if not a.quick:
        sets.append(synthetic(workdir, a.rows))
    if a.data:
        sets = [s for s in sets if s[0] in a.data]
    print("podium-train vs scikit-learn / XGBoost: same 5 folds (podium's, seed 0), %d threads each" % THREADS)
    print("fit_s = fit time summed over the 5 folds (podium: preprocessing + fit); fastest of --repeat runs")
    print()
    hdr = "%-16s %-7s %-28s %9s %9s %8s" % ("data", "model", "implementation", "acc/R2", "ll/RMSE", "fit_s")
    print(hdr)
    print("-" * len(hdr))
    for name, path, target, task in sets:
        x, ylab = load_xy(path, target)
        if task == "classification":
            classes = sorted(set(ylab))
            y = np.array([classes.index(v) for v in ylab])
        else:
            classes = []
            y = np.array([float(v) for v in ylab])
        for fam in a.models.split(","):
            cfg = MODELS[fam]
            params = cfg.get("reg_params", cfg["params"]) if task == "regression" else cfg["params"]
            reps = 1 if name.startswith("synthetic") else max(1, a.repeat)
            fit = float("inf")
            for _ in range(reps):
                s1, s2, f1, wall, folds = run_ours(a.bin, path, target, task, fam, params, workdir,
                                                   "%s_%s" % (name, fam))
                fit = min(fit, f1)
            print("%-16s %-7s %-28s %9.4f %9.4f %8.3f" % (name, fam, "podium " + fam, s1, s2, fit))
            fold_of = np.array([folds[i] for i in range(len(y))])
            n_train = int(len(y) * 0.8)
            for label, make in peers(task, fam, n_train):
                pfit = float("inf")
                for _ in range(reps):
                    p1, p2, f1 = cv_peer(make, x, y, task, fold_of, classes)
                    pfit = min(pfit, f1)
                print("%-16s %-7s %-28s %9.4f %9.4f %8.3f" % (name, fam, label, p1, p2, pfit))
            sys.stdout.flush()
    print()
    print("settings: linear C=1 (ridge alpha=1e-3 -> Ridge(alpha=1e-3*n)), standardized features;")
    print("rf 100 trees, max_features sqrt (clf) / all (reg); gbm 100 rounds, lr 0.1, depth 6, 255 bins,")
    print("lambda 1, min_child_weight 1 (HistGradientBoosting: min_samples_leaf=1, l2=1, no early stop).")


if __name__ == "__main__":
    main()
