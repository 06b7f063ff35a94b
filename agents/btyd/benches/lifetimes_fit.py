"""Time Python `lifetimes`' BG/NBD fit on the same data the Rust fitter gets, for the
side-by-side figure in the README.

  python3 agents/btyd/benches/lifetimes_fit.py --cdnow data/cdnow/CDNOW_master.txt
  python3 agents/btyd/benches/lifetimes_fit.py --csv /tmp/sim.csv   (from examples/fit_bench.rs)

`lifetimes` is fitted as its users fit it: one row per customer (frequency, recency, T in
weeks), its default optimiser. On CDNOW the Gamma-Gamma fit (repeat buyers' mean repeat
order value) is timed too, and each fit is the median of `--runs` (default 5 on CDNOW, 1
on the simulated file, whose fit takes minutes). No log-likelihood is printed: `lifetimes`
rescales time before fitting, so its objective is not comparable; compare the parameters.
"""
import argparse
import json
import time
import warnings

import pandas as pd
import statistics

from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.filterwarnings("ignore")
parser = argparse.ArgumentParser()
parser.add_argument("--cdnow")
parser.add_argument("--csv")
parser.add_argument("--runs", type=int)
args = parser.parse_args()
runs = args.runs or (5 if args.cdnow else 1)


def median_seconds(fit):
    """The median wall time of `runs` calls of `fit`, and its last result."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fit()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


extra = {}
if args.cdnow:
    df = pd.read_csv(args.cdnow, sep=r"\s+", header=0, names=["id", "date", "cds", "amt"],
                     dtype={"id": str, "date": str})
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    data = summary_data_from_transaction_data(df, "id", "date", monetary_value_col="amt",
                                              observation_period_end="1997-09-30", freq="D")
    data["recency"] /= 7.0
    data["T"] /= 7.0
    repeat = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
    gg_seconds, gg = median_seconds(lambda: GammaGammaFitter().fit(repeat["frequency"],
                                                                   repeat["monetary_value"]))
    extra = {"gamma_gamma_fit_seconds": round(gg_seconds, 4),
             **{k: round(v, 4) for k, v in gg.params_.items()}}
else:
    data = pd.read_csv(args.csv)
seconds, fitter = median_seconds(lambda: BetaGeoFitter().fit(data["frequency"], data["recency"],
                                                              data["T"]))
print(json.dumps({"members": len(data), "runs": runs, "fit_seconds": round(seconds, 4),
                  **{k: round(v, 4) for k, v in fitter.params_.items()},
                  **extra}))
