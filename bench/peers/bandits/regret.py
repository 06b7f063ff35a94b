#!/usr/bin/env python3
"""Python peer of the save-offer agent's bandit regret comparison.

Runs the two environments of README.md ("retention-5", context-free, and
"retention-ctx", contextual) under the batched protocol (decide a whole batch with
the model as it stood at the batch start, then learn from the batch) and records the
cumulative pseudo-regret of:

* mabwiser: Thompson sampling (Bernoulli trick), UCB1, LinUCB, LinTS;
* a reference EXP3 written here in numpy (mabwiser has none);
* vowpalwabbit --cb_explore_adf (epsilon-greedy default, and --squarecb) on retention-ctx.

    python3 regret.py --out results.json                # full run: T=100000, seeds 0..4
    python3 regret.py --rounds 20000 --seeds 2          # quicker

Everything is deterministic for fixed --seeds/--rounds/--batch (single-threaded;
mabwiser n_jobs=1).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from importlib.metadata import version as pkg_version

import numpy as np

# Imported up front so that import time is not charged to the first timed run.
import mabwiser.mab  # noqa: F401
import vowpalwabbit  # noqa: F401

# --------------------------------------------------------------------------------------
# Environments (README.md, "Environments"). Keep in step with the Rust side.
# --------------------------------------------------------------------------------------

RETENTION_5 = {
    "name": "retention-5",
    "contextual": False,
    "K": 5,
    "conversion_p": [0.030, 0.045, 0.060, 0.050, 0.020],
    "margin": [40.0, 30.0, 25.0, 35.0, 90.0],
}

RETENTION_CTX = {
    "name": "retention-ctx",
    "contextual": True,
    "K": 3,
    "d": 4,
    "context": "x = [1, u1, u2, u3], u_j ~ Uniform[0,1) i.i.d. per round",
    "theta": [
        [0.05, 0.10, 0.00, 0.00],
        [0.05, 0.00, 0.10, 0.00],
        [0.02, 0.05, 0.05, 0.08],
    ],
    "margin": [30.0, 30.0, 25.0],
    "conversion": "c_k(x) = clip(theta_k . x, 0, 1)",
}

ENVS = {"retention-5": RETENTION_5, "retention-ctx": RETENTION_CTX}

CHECKPOINT_EVERY = 10_000
AUX_SEED_OFFSET = 10_000  # policy-side helper stream: np.random.default_rng(AUX_SEED_OFFSET + seed)


class Env:
    """Pre-drawn environment for one seed: contexts, conversion probabilities, outcomes.

    Draw order (np.random.default_rng(seed), round-major, prefix-stable in T):
      retention-5:   per round t: v_0..v_{K-1}          = rng.random((T, K))[t]
      retention-ctx: per round t: u1, u2, u3, v_0..v_{K-1} = rng.random((T, 3 + K))[t]
    Arm k converts in round t iff v_k < c_k(x_t); realised reward = margin[k] * converted.
    Every policy run with the same seed sees the same contexts and the same potential
    outcomes (common random numbers).
    """

    def __init__(self, spec: dict, rounds: int, seed: int):
        self.spec = spec
        self.K = spec["K"]
        self.T = rounds
        self.margin = np.asarray(spec["margin"], dtype=float)
        rng = np.random.default_rng(seed)
        if spec["contextual"]:
            draws = rng.random((rounds, 3 + self.K))
            u = draws[:, :3]
            v = draws[:, 3:]
            self.X = np.hstack([np.ones((rounds, 1)), u])  # (T, 4)
            theta = np.asarray(spec["theta"], dtype=float)  # (K, 4)
            self.conv = np.clip(self.X @ theta.T, 0.0, 1.0)  # (T, K)
        else:
            v = rng.random((rounds, self.K))
            self.X = None
            self.conv = np.broadcast_to(np.asarray(spec["conversion_p"], dtype=float), (rounds, self.K))
        self.mean = self.conv * self.margin  # E[r | x_t, k], (T, K)
        self.best = self.mean.max(axis=1)
        self.reward = (v < self.conv) * self.margin  # realised potential outcomes, (T, K)

    def regret(self, t0: int, actions: np.ndarray) -> np.ndarray:
        """Per-round pseudo-regret of `actions` taken in rounds t0 .. t0+len-1."""
        idx = np.arange(t0, t0 + len(actions))
        return self.best[idx] - self.mean[idx, actions]


# --------------------------------------------------------------------------------------
# Policies. decide(t0, n) -> actions, or (actions, probabilities of the drawn actions);
# learn(t0, actions, rewards, probs). The harness draws the uniform first batch itself
# and calls `learn` on it.
# --------------------------------------------------------------------------------------


class MabwiserPolicy:
    """mabwiser MAB wrapper. First learn() is `fit`, later ones `partial_fit`."""

    def __init__(self, kind: str, env: Env, seed: int, aux: np.random.Generator, lin_alpha: float = 1.0):
        from mabwiser.mab import MAB, LearningPolicy

        self.kind = kind
        self.env = env
        self.arms = list(range(env.K))
        self.contextual = kind in ("lin_ucb", "lin_thompson")
        self.scale = float(env.margin.max())
        if kind == "thompson_sampling":
            # Bernoulli trick: a reward scaled to [0,1] becomes a success with probability r.
            lp = LearningPolicy.ThompsonSampling(binarizer=lambda arm, r: aux.random() < r)
        elif kind == "ucb1":
            lp = LearningPolicy.UCB1(alpha=1)
        elif kind == "lin_ucb":
            lp = LearningPolicy.LinUCB(alpha=lin_alpha, l2_lambda=1.0)
        elif kind == "lin_thompson":
            lp = LearningPolicy.LinTS(alpha=lin_alpha, l2_lambda=1.0)
        else:
            raise ValueError(kind)
        self.mab = MAB(self.arms, lp, seed=seed, n_jobs=1)
        self.fitted = False

    def decide(self, t0: int, n: int) -> np.ndarray:
        if self.contextual:
            ctx = self.env.X[t0 : t0 + n]
        else:
            ctx = np.zeros((n, 1))  # context-free: one prediction per row of a dummy batch
        pred = self.mab.predict(ctx)
        if n == 1:
            pred = [pred]
        return np.asarray(pred, dtype=np.int64)

    def learn(self, t0: int, actions: np.ndarray, rewards: np.ndarray, probs: np.ndarray) -> None:
        if self.contextual:
            r = rewards  # raw margin units
            ctx = self.env.X[t0 : t0 + len(actions)]
        else:
            r = rewards / self.scale  # scaled to [0,1]
            ctx = None
        if not self.fitted:
            self.mab.fit(actions, r, ctx)
            self.fitted = True
        else:
            self.mab.partial_fit(actions, r, ctx)


class LinTSReference:
    """Reference linear Thompson sampling (numpy), posterior samples drawn independently
    per arm: beta_k ~ N(A_k^-1 b_k, alpha^2 A_k^-1), A_k = l2_lambda I + sum x x^T.

    mabwiser's LinTS fits each arm on a deep copy of its model, random generator
    included, so after a fit every arm holds a generator in the same state and draws
    the same standard normals: its arms' samples are correlated (one z shared by all
    arms per row). That is a different policy, which explores less between arms with
    similar posteriors; this reference is the textbook one, which loyalty-swarm runs.
    Draws come from the aux stream.
    """

    def __init__(self, env: Env, aux: np.random.Generator, alpha: float, l2_lambda: float = 1.0):
        d = env.X.shape[1]
        self.env, self.aux, self.alpha = env, aux, alpha
        self.A = [l2_lambda * np.eye(d) for _ in range(env.K)]
        self.b = [np.zeros(d) for _ in range(env.K)]

    def decide(self, t0: int, n: int) -> np.ndarray:
        x = self.env.X[t0 : t0 + n]
        scores = np.empty((n, self.env.K))
        for k in range(self.env.K):
            a_inv = np.linalg.inv(self.A[k])
            beta = self.aux.multivariate_normal(a_inv @ self.b[k], self.alpha ** 2 * a_inv,
                                                size=n, method="cholesky")
            scores[:, k] = np.sum(x * beta, axis=1)
        return scores.argmax(axis=1).astype(np.int64)

    def learn(self, t0: int, actions: np.ndarray, rewards: np.ndarray, probs: np.ndarray) -> None:
        x = self.env.X[t0 : t0 + len(actions)]
        for k in range(self.env.K):
            m = actions == k
            self.A[k] += x[m].T @ x[m]
            self.b[k] += x[m].T @ rewards[m]


class Exp3Reference:
    """Reference EXP3 (numpy; mabwiser has none).

    gamma = min(1, sqrt(K ln K / ((e - 1) T))); p_k = (1 - gamma) w_k / sum w + gamma / K;
    after pulling a with probability p_a and reward r in [0,1]:
    w_a <- w_a * exp(gamma * (r / p_a) / K). Weights kept as logs. Within a batch every
    decision is drawn from the batch-start p, and each update uses the probability the
    action was actually drawn with (1/K in the uniform first batch).
    """

    def __init__(self, env: Env, aux: np.random.Generator):
        self.K = env.K
        self.scale = float(env.margin.max())
        self.gamma = min(1.0, math.sqrt(self.K * math.log(self.K) / ((math.e - 1.0) * env.T)))
        self.log_w = np.zeros(self.K)
        self.aux = aux

    def probs(self) -> np.ndarray:
        w = np.exp(self.log_w - self.log_w.max())
        return (1.0 - self.gamma) * w / w.sum() + self.gamma / self.K

    def decide(self, t0: int, n: int):
        p = self.probs()
        actions = self.aux.choice(self.K, size=n, p=p)
        return actions.astype(np.int64), p[actions]

    def learn(self, t0: int, actions: np.ndarray, rewards: np.ndarray, probs: np.ndarray) -> None:
        r = rewards / self.scale
        np.add.at(self.log_w, actions, self.gamma * (r / probs) / self.K)


class VWPolicy:
    """vowpalwabbit --cb_explore_adf on retention-ctx; cost = -reward / cost_scale
    (cost_scale 1: margin units, as specified; cost_scale max(m): cost in [-1, 0]).

    Shared namespace s: u1, u2, u3; one action line per arm with namespace a: arm<k>;
    -q sa gives each arm its own intercept and slopes (VW's constant feature is added
    as well). The action is sampled from VW's pmf with the aux stream (inverse CDF).
    """

    def __init__(self, args: str, env: Env, seed: int, aux: np.random.Generator, cost_scale: float = 1.0):
        import vowpalwabbit

        self.env = env
        self.cost_scale = cost_scale
        self.aux = aux
        self.vw = vowpalwabbit.Workspace(f"{args} --random_seed {seed} --quiet")
        self.action_lines = [f"|a arm{k}" for k in range(env.K)]

    def _shared(self, t: int) -> str:
        x = self.env.X[t]
        # Python floats (repr: shortest round-trip); repr of a numpy scalar is "np.float64(..)".
        return f"shared |s u1:{float(x[1])!r} u2:{float(x[2])!r} u3:{float(x[3])!r}"

    def decide(self, t0: int, n: int):
        actions = np.empty(n, dtype=np.int64)
        probs = np.empty(n)
        u = self.aux.random(n)
        for i in range(n):
            pmf = np.asarray(self.vw.predict([self._shared(t0 + i)] + self.action_lines), dtype=float)
            cdf = np.cumsum(pmf)
            a = int(min(np.searchsorted(cdf, u[i] * cdf[-1], side="right"), len(pmf) - 1))
            actions[i] = a
            probs[i] = pmf[a]
        return actions, probs

    def learn(self, t0: int, actions: np.ndarray, rewards: np.ndarray, probs: np.ndarray) -> None:
        for i, (a, r, p) in enumerate(zip(actions, rewards, probs)):
            lines = [self._shared(t0 + i)] + list(self.action_lines)
            lines[1 + int(a)] = f"0:{0.0 - float(r) / self.cost_scale!r}:{float(p)!r} {self.action_lines[int(a)]}"
            self.vw.learn(lines)

    def close(self):
        self.vw.finish()


# --------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------


def run_one(env: Env, make_policy, batch: int, seed: int):
    """One run: returns the cumulative pseudo-regret after every round (length T)."""
    aux = np.random.default_rng(AUX_SEED_OFFSET + seed)
    policy = make_policy(env, seed, aux)
    T, K = env.T, env.K
    per_round = np.empty(T)
    t = 0
    first = True
    while t < T:
        n = min(batch, T - t)
        if first:
            # No data yet: uniformly random decisions, then fit on them.
            actions = aux.integers(0, K, size=n).astype(np.int64)
            probs = np.full(n, 1.0 / K)
            first = False
        else:
            out = policy.decide(t, n)
            if isinstance(out, tuple):
                actions, probs = out
            else:
                actions, probs = out, np.full(n, np.nan)
        rewards = env.reward[np.arange(t, t + n), actions]
        per_round[t : t + n] = env.regret(t, actions)
        policy.learn(t, actions, rewards, probs)
        t += n
    if hasattr(policy, "close"):
        policy.close()
    return np.cumsum(per_round)


def policy_table():
    mw = f"mabwiser {pkg_version('mabwiser')}"
    rows = []
    for env_name in ("retention-5", "retention-ctx"):
        rows += [
            (env_name, "thompson_sampling", f"{mw} ThompsonSampling(binarizer: Bernoulli trick on reward/max(m))",
             lambda env, s, aux: MabwiserPolicy("thompson_sampling", env, s, aux)),
            (env_name, "ucb1", f"{mw} UCB1(alpha=1), reward/max(m)",
             lambda env, s, aux: MabwiserPolicy("ucb1", env, s, aux)),
            (env_name, "exp3", f"reference EXP3 (numpy {np.__version__}; mabwiser has none), reward/max(m)",
             lambda env, s, aux: Exp3Reference(env, aux)),
        ]
    vw = f"vowpalwabbit {pkg_version('vowpalwabbit')}"
    eps = "--cb_explore_adf -q sa"
    sq = "--cb_explore_adf --squarecb -q sa"
    rows += [
        ("retention-ctx", "lin_ucb", f"{mw} LinUCB(alpha=1.0, l2_lambda=1.0), raw reward",
         lambda env, s, aux: MabwiserPolicy("lin_ucb", env, s, aux)),
        ("retention-ctx", "lin_thompson", f"{mw} LinTS(alpha=1.0, l2_lambda=1.0), raw reward",
         lambda env, s, aux: MabwiserPolicy("lin_thompson", env, s, aux)),
        ("retention-ctx", "vw_epsilon_greedy",
         f"{vw} {eps} (default exploration: --epsilon 0.05; cb_type mtr), cost=-reward",
         lambda env, s, aux: VWPolicy(eps, env, s, aux)),
        ("retention-ctx", "vw_squarecb",
         f"{vw} {sq} (gamma_scale 10, gamma_exponent 0.5; cb_type mtr), cost=-reward",
         lambda env, s, aux: VWPolicy(sq, env, s, aux)),
        # Extra rows (sensitivity, not part of the mirrored spec): see README "Sensitivity".
        ("retention-ctx", "vw_epsilon_greedy_cost01",
         f"{vw} {eps} (--epsilon 0.05), cost=-reward/max(m) in [-1,0]",
         lambda env, s, aux: VWPolicy(eps, env, s, aux, cost_scale=float(env.margin.max()))),
        ("retention-ctx", "vw_squarecb_cost01",
         f"{vw} {sq} (gamma_scale 10, gamma_exponent 0.5), cost=-reward/max(m) in [-1,0]",
         lambda env, s, aux: VWPolicy(sq, env, s, aux, cost_scale=float(env.margin.max()))),
        ("retention-ctx", "lin_ucb_alpha10", f"{mw} LinUCB(alpha=10.0, l2_lambda=1.0), raw reward",
         lambda env, s, aux: MabwiserPolicy("lin_ucb", env, s, aux, lin_alpha=10.0)),
        ("retention-ctx", "lin_thompson_alpha10", f"{mw} LinTS(alpha=10.0, l2_lambda=1.0), raw reward",
         lambda env, s, aux: MabwiserPolicy("lin_thompson", env, s, aux, lin_alpha=10.0)),
        ("retention-ctx", "lin_thompson_reference",
         f"reference LinTS (numpy {np.__version__}; independent draws per arm), alpha=1.0, raw reward",
         lambda env, s, aux: LinTSReference(env, aux, alpha=1.0)),
        ("retention-ctx", "lin_thompson_alpha10_reference",
         f"reference LinTS (numpy {np.__version__}; independent draws per arm), alpha=10.0, raw reward",
         lambda env, s, aux: LinTSReference(env, aux, alpha=10.0)),
    ]
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=5, help="run seeds 0..N-1")
    ap.add_argument("--out", default=None, help="write results JSON here")
    ap.add_argument("--only", default=None, help="comma-separated policy names to run (default: all)")
    ap.add_argument("--spec-only", action="store_true", help="skip the extra sensitivity rows")
    args = ap.parse_args(argv)

    T, B = args.rounds, args.batch
    seeds = list(range(args.seeds))
    checkpoints = sorted(set(list(range(CHECKPOINT_EVERY, T + 1, CHECKPOINT_EVERY)) + [T]))
    only = set(args.only.split(",")) if args.only else None

    results = []
    hdr = f"{'env':<14} {'policy':<24} {'mean final regret ± std':>26} {'seconds':>8}  implementation"
    print(hdr)
    print("-" * len(hdr))
    for env_name, policy, impl, make in policy_table():
        if only and policy not in only:
            continue
        if args.spec_only and (policy.endswith("_cost01") or "_alpha10" in policy
                               or policy.endswith("_reference")):
            continue
        spec = ENVS[env_name]
        finals, cps = [], {str(c): [] for c in checkpoints}
        seconds = 0.0
        for s in seeds:
            env = Env(spec, T, s)
            t0 = time.perf_counter()
            cum = run_one(env, make, B, s)
            seconds += time.perf_counter() - t0
            finals.append(float(cum[-1]))
            for c in checkpoints:
                cps[str(c)].append(float(cum[c - 1]))
        mean = float(np.mean(finals))
        std = float(np.std(finals, ddof=1)) if len(finals) > 1 else 0.0
        results.append({
            "env": env_name, "policy": policy, "implementation": impl,
            "final_regret": finals, "mean": mean, "std": std,
            "checkpoints": cps, "seconds": round(seconds, 2),
        })
        print(f"{env_name:<14} {policy:<24} {mean:>14.1f} ± {std:>9.1f} {seconds:>8.1f}  {impl}", flush=True)

    if args.out:
        doc = {
            "environment": {
                "retention-5": RETENTION_5,
                "retention-ctx": RETENTION_CTX,
                "draw_order": Env.__doc__.strip(),
            },
            "protocol": {
                "rounds": T, "batch": B, "seeds": seeds,
                "env_rng": "numpy.random.default_rng(seed)",
                "aux_rng": f"numpy.random.default_rng({AUX_SEED_OFFSET} + seed): uniform first batch, "
                           "Thompson binarizer, EXP3 and VW action sampling",
                "library_seed": "mabwiser MAB(seed=seed), vw --random_seed seed",
                "first_batch": "uniformly random arms (aux.integers(0, K, size=B)), then fit on it",
                "metric": "cumulative pseudo-regret sum_t (max_k E[r|x_t,k] - E[r|x_t,a_t]), margin units",
                "checkpoints": checkpoints,
                "std": "sample standard deviation over seeds (ddof=1)",
                "reward_to_policy": {
                    "thompson_sampling": "reward/max(m), binarized: success iff aux.random() < reward/max(m)",
                    "ucb1": "reward/max(m)", "exp3": "reward/max(m)",
                    "lin_ucb": "raw reward (margin units), context x", "lin_thompson": "raw reward, context x",
                    "vw_epsilon_greedy, vw_squarecb": "cost = -reward (margin units); logged probability = "
                                                      "VW's pmf of the chosen action",
                    "vw_*_cost01": "cost = -reward/max(m) in [-1, 0] (sensitivity rows)",
                    "lin_*_alpha10": "as lin_ucb / lin_thompson with alpha = 10 (sensitivity rows)",
                    "lin_thompson*_reference": "textbook linear Thompson sampling in numpy, independent "
                                               "draws per arm from the aux stream (mabwiser's arms share "
                                               "draws), raw reward, context x",
                },
                "python": sys.version.split()[0],
                "numpy": np.__version__,
            },
            "results": results,
        }
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
