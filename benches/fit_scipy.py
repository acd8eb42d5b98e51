"""SciPy side of `vislaw-bench fit`.

The same procedure as vislaw's fit: Chinchilla's Approach 3 (sum of Huber(δ = 1e-3) on
log L̂ − log L, L̂ in log-sum-exp form over e = log E, a = log A, b = log B, analytic
gradient), L-BFGS-B from the 4,500-start grid (α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, …, 1},
a, b ∈ {0, 5, …, 25}, in the same order), the best converged start kept, then one
warm-started refit per bootstrap resample, using the resample counts vislaw wrote so both
sides refit identical resamples. Prints one JSON document with the timings and the results.

One invocation is one timed repeat of `vislaw-bench fit`'s protocol, after its own warm-up
(one untimed fit per worker, so the pool and the imports are ready). With --serve (what
`vislaw-bench fit` runs) the pool is built and warmed once, and each line of stdin is one
request, {"min_seconds": S} (default: --min-seconds), answered by one line of the JSON
document below; a bad request answers {"error": why}; it exits when stdin closes.

--starts N runs only N evenly spaced starts and extrapolates the grid time to the full grid;
the output says so ("extrapolated": true); "start_indices" lists the starts run (indices
into the full grid) and "best_start" the winner's, so the other side can run the same ones.

--gtol, --ftol and --maxiter set L-BFGS-B's pgtol, ftol and maxiter (default: SciPy's
defaults, 1e-5, 2.2e-9 and 15000); tests/bench_same_work.rs passes vislaw's tolerances to
compare the two sides' parameters under a matched stopping rule.
"""
import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

# One BLAS thread per worker: the workers are the parallelism, as rayon's threads are
# vislaw's. Must be set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

DELTA = 1e-3
DATA = {}
OPTIONS = {}


def grid():
    """Starts as (e, a, b, alpha, beta), in vislaw's order: e, a, alpha, b, beta."""
    exps = np.arange(0.0, 2.01, 0.5)
    log_e = np.arange(-1.0, 1.01, 0.5)
    log_coef = np.arange(0.0, 25.01, 5.0)
    return [(e, a, b, al, be) for e in log_e for a in log_coef for al in exps for b in log_coef for be in exps]


def objective(theta, w):
    """Weighted sum of Huber losses of log residuals, and its gradient."""
    e, a, b, al, be = theta
    lx, ly, ll = DATA["lx"], DATA["ly"], DATA["ll"]
    z = np.stack([a - al * lx, b - be * ly, np.full_like(lx, e)])
    m = z.max(axis=0)
    ez = np.exp(z - m)
    s = ez.sum(axis=0)
    r = m + np.log(s) - ll
    p = ez / s
    dh = np.clip(r, -DELTA, DELTA)
    f = w @ (dh * (r - 0.5 * dh))
    c = w * dh
    grad = np.array([c @ p[2], c @ p[0], c @ p[1], -(c * p[0]) @ lx, -(c * p[1]) @ ly])
    return f, grad


def init(lx, ly, ll, options):
    DATA.update(lx=lx, ly=ly, ll=ll)
    OPTIONS.update(options)


def fit_from(args):
    start, w = args
    res = minimize(objective, np.asarray(start, float), args=(w,), jac=True, method="L-BFGS-B", options=OPTIONS or None)
    return res.x, float(res.fun), bool(res.success)


def natural(theta):
    e, a, b, al, be = theta
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": float(al), "beta": float(be)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", required=True, help="rows: frames,tokens_per_frame,loss")
    ap.add_argument("--counts", required=True, help="one line of per-row draw counts per resample")
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--starts", type=int, default=None, help="run only this many starts and extrapolate")
    ap.add_argument("--gtol", type=float, default=None, help="L-BFGS-B pgtol (default: SciPy's)")
    ap.add_argument("--ftol", type=float, default=None, help="L-BFGS-B ftol (default: SciPy's)")
    ap.add_argument("--maxiter", type=int, default=None, help="L-BFGS-B maxiter (default: SciPy's)")
    ap.add_argument("--min-seconds", type=float, default=0.0,
                    help="run the grid and the bootstrap back to back until this many seconds have passed; report seconds per fit")
    ap.add_argument("--serve", action="store_true", help="answer one fit per JSON line of stdin (see above)")
    args = ap.parse_args()
    options = {k: v for k, v in [("gtol", args.gtol), ("ftol", args.ftol), ("maxiter", args.maxiter)] if v is not None}

    rows = np.loadtxt(args.csv, delimiter=",", skiprows=1, ndmin=2)
    lx, ly, ll = np.log(rows[:, 0]), np.log(rows[:, 1]), np.log(rows[:, 2])
    counts = np.loadtxt(args.counts, delimiter=",", ndmin=2)
    ones = np.ones(len(ll))

    starts = grid()
    total = len(starts)
    idx = list(range(total))
    if args.starts is not None and args.starts < total:
        idx = [int(i) for i in np.linspace(0, total - 1, args.starts).round().astype(int)]
        starts = [starts[i] for i in idx]

    with Pool(args.processes, initializer=init, initargs=(lx, ly, ll, options)) as pool:
        pool.map(fit_from, [(starts[0], ones)] * args.processes, chunksize=1)  # warm-up, untimed
        run = lambda min_seconds: timed_fit(pool, starts, idx, total, counts, ones, min_seconds, args, options)  # noqa: E731
        if not args.serve:
            print(json.dumps(run(args.min_seconds)))
            return
        for line in sys.stdin:
            try:
                req = json.loads(line)
                out = run(float(req.get("min_seconds", args.min_seconds)))
            except Exception as e:  # a bad request is answered, never a hang
                out = {"error": f"{type(e).__name__}: {e}"}
            print(json.dumps(out), flush=True)


def timed_fit(pool, starts, idx, total, counts, ones, min_seconds, args, options):
    """The grid and the bootstrap back to back until min_seconds have passed (at least once);
    the JSON document of the timings (per fit) and the results."""
    grid_seconds = bootstrap_seconds = 0.0
    fits = 0
    while fits == 0 or grid_seconds + bootstrap_seconds < min_seconds:
        t0 = time.perf_counter()
        runs = pool.map(fit_from, [(s, ones) for s in starts], chunksize=16)
        grid_seconds += time.perf_counter() - t0
        converged = [i for i, r in enumerate(runs) if r[2]] or list(range(len(runs)))
        best_i = min(converged, key=lambda i: (runs[i][1], i))
        best = runs[best_i]

        t1 = time.perf_counter()
        boots = pool.map(fit_from, [(best[0], w) for w in counts], chunksize=16)
        bootstrap_seconds += time.perf_counter() - t1
        fits += 1
    grid_seconds /= fits
    bootstrap_seconds /= fits

    extrapolated = len(starts) < total
    samples = np.array([list(natural(b[0]).values()) for b in boots])
    names = ["E", "A", "B", "alpha", "beta"]
    ci = {n: [float(np.percentile(samples[:, j], 2.5)), float(np.percentile(samples[:, j], 97.5))] for j, n in enumerate(names)}
    return {
        "scipy_version": scipy.__version__,
        "processes": args.processes,
        "fits": fits,
        "starts_total": total,
        "starts_run": len(starts),
        "extrapolated": extrapolated,
        "grid_seconds": grid_seconds * (total / len(starts) if extrapolated else 1.0),
        "grid_seconds_measured": grid_seconds,
        "bootstrap_seconds": bootstrap_seconds,
        "bootstrap_converged": int(sum(b[2] for b in boots)),
        "starts_converged": int(sum(r[2] for r in runs)),
        "objective": best[1],
        "options": options,
        "start_indices": idx,
        "best_start": idx[best_i],
        "params": natural(best[0]),
        "ci95": ci,
    }


if __name__ == "__main__":
    main()
