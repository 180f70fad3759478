#!/usr/bin/python3
"""bench/automl.py - Podium's search jobs beside scikit-learn, XGBoost and Optuna.

For each shared tabular data set (tests/data/tabular.json) it starts nothing
new per set: one throwaway stack (PostgreSQL through scripts/pg.sh,
podium-server, ONE podium-scheduler with --slots 2) serves the whole run.
Per data set:

  - Podium: upload the CSV, POST /v1/jobs (metric accuracy or r2, 5-fold CV,
    parallelism 2, budget {max_trials 10000, max_seconds B,
    trial_timeout_seconds B}), poll until the job ends, and take the
    leaderboard's best CV score and its family;
  - scikit-learn defaults: the best of LogisticRegression (Ridge for
    regression) with StandardScaler, RandomForest and HistGradientBoosting,
    each with its defaults;
  - XGBoost defaults (tree_method hist);
  - XGBoost tuned by Optuna (TPE, seed 0) for the same B seconds, objective
    = mean CV score;

the peers on 5 folds (StratifiedKFold / KFold, shuffle, random_state 0),
2 threads each. Then one table, and how many sets Podium matches (within
0.005) or beats the best peer on. The peers run after Podium's job has
ended, never beside it, so that each side has the 2 threads to itself.

A benchmark, not a test: it is never part of `make test`.
Needs: python3-sklearn python3-xgboost python3-optuna python3-pandas
(Debian), a built bin/ (make), PostgreSQL's server package.

    /usr/bin/python3 bench/automl.py                       # all 14 sets, 60 s each
    /usr/bin/python3 bench/automl.py --budget 20 --data iris,wine --out automl.csv
    /usr/bin/python3 bench/automl.py --strategy tpe        # falls back to random on 422
"""
import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

THREADS = 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))      # HistGradientBoosting
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATCH_TOL = 0.005
# Podium's missing-value tokens (README, upload option `na`); pandas already
# knows "", NA, N/A, NaN, null; "?" is added.
NA_VALUES = ["?", "NA", "N/A", "NaN", "nan", "null", "NULL", "Null"]


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The throwaway stack


class Stack:
    """PostgreSQL (scripts/pg.sh), podium-server and one podium-scheduler."""

    def __init__(self, slots):
        self.slots = slots
        self.tmp = tempfile.mkdtemp(prefix="podium-automl.")
        os.chmod(self.tmp, 0o755)   # PostgreSQL runs as the user podium when we are root
        self.procs = []
        self.pg_started = False
        self.pg_port = free_port()
        self.http_port = free_port()
        self.api = "http://127.0.0.1:%d" % self.http_port
        self.key = None

    def _pg(self, func, *args):
        script = '. scripts/pg.sh && PG_EXTRA_OPTS="-c fsync=off -c synchronous_commit=off" ' \
                 + func + ' "$@"'
        return subprocess.run(["sh", "-c", script, "sh"] + [str(a) for a in args], cwd=ROOT,
                              capture_output=True, text=True)

    def start(self):
        # private copies of the programs, so that a rebuild during the bench does not race it
        bindir = os.path.join(self.tmp, "bin")
        os.mkdir(bindir)
        for prog in ("podium-server", "podium-scheduler", "podium-train", "podium-predict"):
            src = os.path.join(ROOT, "bin", prog)
            if not os.access(src, os.X_OK):
                sys.exit("bench: %s not found; run make first" % src)
            shutil.copy2(src, os.path.join(bindir, prog))
        pgdir = os.path.join(self.tmp, "pg")
        self.pg_started = True
        p = self._pg("pg_setup", pgdir, self.pg_port)
        if p.returncode != 0:
            sys.exit("bench: PostgreSQL did not start:\n" + p.stderr)
        env = dict(os.environ)
        env["DATABASE_URL"] = self._pg("pg_conninfo", pgdir, self.pg_port).stdout.strip()
        env["PODIUM_DATA_DIR"] = self.tmp
        keyfile = os.path.join(self.tmp, "key")
        p = subprocess.run([os.path.join(bindir, "podium-server"), "--migrate",
                            "--bootstrap-key-file", keyfile], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("bench: podium-server --migrate failed:\n" + p.stderr[-2000:])
        with open(keyfile) as f:
            self.key = f.read().strip()
        # own sessions: a Ctrl-C reaches only us, and we stop them in order
        slog = open(os.path.join(self.tmp, "server.log"), "w")
        self.procs.append(subprocess.Popen(
            [os.path.join(bindir, "podium-server"), "--port", str(self.http_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=slog, start_new_session=True))
        clog = open(os.path.join(self.tmp, "scheduler.log"), "w")
        self.procs.append(subprocess.Popen(
            [os.path.join(bindir, "podium-scheduler"), "--slots", str(self.slots),
             "--cache-dir", os.path.join(self.tmp, "cache"), "--sweep-seconds", "1",
             "--trainer", os.path.join(bindir, "podium-train")],
            env=env, stdout=subprocess.DEVNULL, stderr=clog, start_new_session=True))
        deadline = time.time() + 30
        while True:
            try:
                if self.request("GET", "/readyz", auth=False)[0] == 200:
                    break
            except OSError:
                pass
            for pr in self.procs:
                if pr.poll() is not None:
                    sys.exit("bench: %s exited (%d); logs in %s" % (pr.args[0], pr.returncode, self.tmp))
            if time.time() > deadline:
                sys.exit("bench: podium-server did not become ready")
            time.sleep(0.1)

    def alive(self):
        for pr in self.procs:
            if pr.poll() is not None:
                tail = ""
                name = "server.log" if "server" in pr.args[0] else "scheduler.log"
                try:
                    with open(os.path.join(self.tmp, name)) as f:
                        tail = f.read()[-2000:]
                except OSError:
                    pass
                sys.exit("bench: %s exited (%d):\n%s" % (pr.args[0], pr.returncode, tail))

    def stop(self):
        # scheduler first (it stops its trainers), then the server, then PostgreSQL
        for pr in reversed(self.procs):
            if pr.poll() is None:
                pr.terminate()
                try:
                    pr.wait(15)
                except subprocess.TimeoutExpired:
                    pr.kill()
                    pr.wait()
        self.procs = []
        if self.pg_started:
            self._pg("pg_stop", os.path.join(self.tmp, "pg"))
            self.pg_started = False
        shutil.rmtree(self.tmp, ignore_errors=True)

    def request(self, method, path, body=None, ctype=None, auth=True, timeout=120):
        data = None
        headers = {}
        if auth:
            headers["Authorization"] = "Bearer " + self.key
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            else:
                data = body
                headers["Content-Type"] = ctype
        req = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                code = r.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            code = e.code
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw.decode(errors="replace")
        return code, doc


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# Podium


def run_podium(stack, name, path, spec, args, notes):
    with open(path, "rb") as f:
        code, ds = stack.request("POST", "/v1/datasets?name=" + name, f.read(), "text/csv")
    if code != 201:
        sys.exit("bench: upload of %s failed (%d): %s" % (name, code, ds))
    task = spec["task"]
    metric = "accuracy" if task == "classification" else "r2"
    job_spec = {"dataset_id": ds["id"], "target": spec["target"], "task": task, "metric": metric,
                "strategy": args.strategy,
                "budget": {"max_trials": 10000, "max_seconds": args.budget,
                           "trial_timeout_seconds": args.budget},
                "parallelism": THREADS, "cv": {"folds": 5}}
    code, job = stack.request("POST", "/v1/jobs", job_spec)
    if code == 422 and args.strategy != "random":
        note = "strategy %s refused (422: %s); ran random" % (
            args.strategy, (job or {}).get("detail") if isinstance(job, dict) else job)
        if note not in notes:
            notes.append(note)
        log(note)
        args.strategy = job_spec["strategy"] = "random"   # for the next sets too
        code, job = stack.request("POST", "/v1/jobs", job_spec)
    if code != 202:
        sys.exit("bench: job on %s refused (%d): %s" % (name, code, job))
    jid = job["id"]
    # No trial starts after max_seconds; the last ones may run up to
    # trial_timeout_seconds more.
    deadline = time.time() + 2 * args.budget + 120
    cancelled = False
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        stack.alive()
        if time.time() > deadline and not cancelled:
            log("%s: job still %s past %d s, cancelling" % (name, job["state"], 2 * args.budget + 120))
            stack.request("POST", "/v1/jobs/%s/cancel" % jid)
            cancelled = True
        time.sleep(1)
        code, job = stack.request("GET", "/v1/jobs/" + jid)
        if code != 200:
            sys.exit("bench: GET job failed (%d): %s" % (code, job))
    code, lb = stack.request("GET", "/v1/jobs/%s/leaderboard" % jid)
    items = (lb or {}).get("items") or [] if code == 200 else []
    prog = job.get("progress") or {}
    out = {"state": job["state"], "trials": prog.get("trials"), "succeeded": prog.get("succeeded"),
           "failed": prog.get("failed"), "score": None, "family": None,
           "strategy": job.get("strategy", job_spec["strategy"])}
    if items:
        best = items[0]
        out["score"], out["family"] = best["score"], best["family"]
    if job["state"] != "succeeded":
        log("%s: job %s (%s)" % (name, job["state"], job.get("error")))
    return out


# --------------------------------------------------------------------------
# Peers


def load_for_peers(path, spec):
    import numpy as np
    import pandas as pd
    from sklearn.preprocessing import LabelEncoder
    df = pd.read_csv(path, na_values=NA_VALUES, keep_default_na=True)
    df = df[df[spec["target"]].notna()]
    y = df[spec["target"]]
    x = df.drop(columns=[spec["target"]] + list(spec.get("id_columns", [])))
    for c in x.columns:
        if x[c].dtype == bool:
            x[c] = x[c].astype(float)
        elif x[c].dtype == object:
            # TRUE/FALSE with missing values are read as objects
            vals = set(x[c].dropna().astype(str).str.upper())
            if vals <= {"TRUE", "FALSE"}:
                x[c] = x[c].map(lambda v: np.nan if pd.isna(v) else float(str(v).upper() == "TRUE"))
    strings = [c for c in x.columns if x[c].dtype == object]
    if strings:
        x = pd.get_dummies(x, columns=strings, dtype=float)
    x = x.astype(float).to_numpy()
    if spec["task"] == "classification":
        y = LabelEncoder().fit_transform(y.astype(str))
    else:
        y = y.astype(float).to_numpy()
    return x, y


def folds_for(task):
    from sklearn.model_selection import KFold, StratifiedKFold
    if task == "classification":
        return StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    return KFold(n_splits=5, shuffle=True, random_state=0)


def cv_score(model, x, y, task):
    import warnings
    from sklearn.model_selection import cross_val_score
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # StratifiedKFold on classes smaller than 5, convergence
        s = cross_val_score(model, x, y, cv=folds_for(task),
                            scoring="accuracy" if task == "classification" else "r2",
                            n_jobs=1, error_score="raise")
    return float(s.mean())


def sklearn_defaults(x, y, task):
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                  RandomForestClassifier, RandomForestRegressor)
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = task == "classification"
    models = {
        "linear": make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                                LogisticRegression(max_iter=1000) if clf else Ridge()),
        "rf": make_pipeline(SimpleImputer(strategy="median"),
                            (RandomForestClassifier if clf else RandomForestRegressor)(
                                n_jobs=THREADS, random_state=0)),
        "hgb": (HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor)(random_state=0),
    }
    scores = {k: cv_score(m, x, y, task) for k, m in models.items()}
    best = max(scores, key=scores.get)
    return scores[best], best, scores


def xgb_model(task, **params):
    import xgboost as xgb
    cls = xgb.XGBClassifier if task == "classification" else xgb.XGBRegressor
    return cls(tree_method="hist", n_jobs=THREADS, random_state=0, **params)


def xgb_default(x, y, task):
    return cv_score(xgb_model(task), x, y, task)


def optuna_xgb(x, y, task, budget, seed=0):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        params = {
            "n_estimators": trial.suggest_int("n_estimators", 50, 1000),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.3, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 10.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        }
        return cv_score(xgb_model(task, **params), x, y, task)

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    # timeout is checked between trials: the last one may end a little later
    study.optimize(objective, timeout=budget)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return study.best_value, len(done)


# --------------------------------------------------------------------------
# Table


COLS = ["data", "task", "metric", "podium", "podium_family", "podium_trials",
        "sklearn_best", "sklearn_model", "xgb_default", "optuna_xgb", "optuna_trials",
        "best_peer", "podium_ge_best_peer"]


def fmt(v):
    return "-" if v is None else "%.4f" % v


def print_table(rows, budget):
    hdr = ("%-20s %-5s %-8s %-31s %-20s %8s %-18s %9s  %s" %
           ("data", "task", "metric", "Podium best (family, trials)", "sklearn best default",
            "XGB def", "Optuna XGB (trials)", "best peer", "Podium >= best peer?"))
    print()
    print("on %d-fold CV, budget %d s per set (Podium and Optuna), %d threads each" % (5, budget, THREADS))
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        pod = "%s (%s, %s/%s)" % (fmt(r["podium"]), r["podium_family"] or "-",
                                   r["podium_succeeded"], r["podium_trials"])
        print("%-20s %-5s %-8s %-31s %-20s %8s %-18s %9s  %s" % (
            r["data"], "clf" if r["task"] == "classification" else "reg", r["metric"], pod,
            "%s (%s)" % (fmt(r["sklearn_best"]), r["sklearn_model"]), fmt(r["xgb_default"]),
            "%s (%d)" % (fmt(r["optuna_xgb"]), r["optuna_trials"]), fmt(r["best_peer"]),
            r["podium_ge_best_peer"]))
    n = len(rows)
    won = sum(1 for r in rows if r["podium_ge_best_peer"].startswith("yes"))
    beat = sum(1 for r in rows if r["podium_ge_best_peer"] == "yes (beats)")
    print()
    print("Podium matches (within %.3f) or beats the best peer on %d of %d sets (beats on %d)"
          % (MATCH_TOL, won, n, beat))
    print("trials = succeeded/started; sklearn best default = the best of linear (LogisticRegression,"
          " Ridge for regression), rf, hgb")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="comma-separated data set names (default: all in tests/data/tabular.json)")
    ap.add_argument("--budget", type=int, default=60, help="seconds per set for Podium and for Optuna (60)")
    ap.add_argument("--strategy", default="random", choices=["random", "tpe", "asha"],
                    help="Podium's search strategy (falls back to random if the server answers 422)")
    ap.add_argument("--out", help="also write the table as CSV here")
    a = ap.parse_args()

    with open(os.path.join(ROOT, "tests", "data", "tabular.json")) as f:
        catalog = json.load(f)
    names = list(catalog)
    if a.data:
        names = [n.strip() for n in a.data.split(",") if n.strip()]
        unknown = [n for n in names if n not in catalog]
        if unknown:
            sys.exit("bench: unknown data set(s) %s; known: %s" % (", ".join(unknown), ", ".join(catalog)))
    try:   # fail early, before starting anything
        import optuna  # noqa: F401
        import pandas  # noqa: F401
        import sklearn  # noqa: F401
        import xgboost  # noqa: F401
    except ImportError as e:
        sys.exit("bench: %s (apt-get install -y python3-sklearn python3-xgboost python3-optuna)" % e)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    # SIGINT too: a shell starts background jobs with it ignored
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
            continue   # nohup
        signal.signal(sig, on_term)

    stack = Stack(slots=THREADS)
    rows, notes = [], []
    try:
        stack.start()
        log("stack up: %s (PostgreSQL port %d, scheduler --slots %d), %d cores"
            % (stack.api, stack.pg_port, THREADS, os.cpu_count()))
        for name in names:
            spec = catalog[name]
            path = os.path.join(ROOT, "tests", "data", spec["file"])
            task = spec["task"]
            metric = "accuracy" if task == "classification" else "r2"
            t0 = time.time()
            pod = run_podium(stack, name, path, spec, a, notes)
            t1 = time.time()
            x, y = load_for_peers(path, spec)
            sk, sk_name, _ = sklearn_defaults(x, y, task)
            xd = xgb_default(x, y, task)
            t2 = time.time()
            ox, on = optuna_xgb(x, y, task, a.budget)
            t3 = time.time()
            best_peer = max(sk, xd, ox)
            if pod["score"] is None:
                verdict = "no (no model)"
            elif pod["score"] > best_peer + MATCH_TOL:
                verdict = "yes (beats)"
            elif pod["score"] >= best_peer - MATCH_TOL:
                verdict = "yes (match)"
            else:
                verdict = "no (%+.4f)" % (pod["score"] - best_peer)
            row = {"data": name, "task": task, "metric": metric, "podium": pod["score"],
                   "podium_family": pod["family"], "podium_trials": pod["trials"],
                   "podium_succeeded": pod["succeeded"], "podium_state": pod["state"],
                   "sklearn_best": sk, "sklearn_model": sk_name, "xgb_default": xd,
                   "optuna_xgb": ox, "optuna_trials": on, "best_peer": best_peer,
                   "podium_ge_best_peer": verdict}
            rows.append(row)
            log("%s: podium %s (%s, %s trials, %.0f s) | sklearn %.4f (%s) | xgb %.4f | optuna %.4f "
                "(%d trials) | peers %.0f s + optuna %.0f s | %s"
                % (name, fmt(pod["score"]), pod["family"], pod["trials"], t1 - t0, sk, sk_name, xd,
                   ox, on, t2 - t1, t3 - t2, verdict))
    except KeyboardInterrupt:
        log("interrupted; stopping the stack")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)   # a second Ctrl-C must not cut the cleanup short
        stack.stop()
    if not rows:
        return 1
    print_table(rows, a.budget)
    for n in notes:
        print("note: " + n)
    if a.out:
        with open(a.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLS + ["podium_succeeded", "podium_state"])
            for r in rows:
                w.writerow([r[c] for c in COLS] + [r["podium_succeeded"], r["podium_state"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
