"""Time Python `lifetimes`' BG/NBD fit on the same data the Rust fitter gets, for the
side-by-side figure in the README.

  python3 agents/btyd/benches/lifetimes_fit.py --cdnow data/cdnow/CDNOW_master.txt
  python3 agents/btyd/benches/lifetimes_fit.py --csv /tmp/sim.csv   (from examples/fit_bench.rs)

`lifetimes` is fitted as its users fit it: one row per customer (frequency, recency, T in
weeks), its default optimiser.
"""
import argparse
import json
import time
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.filterwarnings("ignore")
parser = argparse.ArgumentParser()
parser.add_argument("--cdnow")
parser.add_argument("--csv")
args = parser.parse_args()
if args.cdnow:
    df = pd.read_csv(args.cdnow, sep=r"\s+", header=0, names=["id", "date", "cds", "amt"],
                     dtype={"id": str, "date": str})
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    data = summary_data_from_transaction_data(df, "id", "date",
                                              observation_period_end="1997-09-30", freq="D")
    data["recency"] /= 7.0
    data["T"] /= 7.0
else:
    data = pd.read_csv(args.csv)
started = time.perf_counter()
fitter = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
seconds = time.perf_counter() - started
print(json.dumps({"members": len(data), "fit_seconds": round(seconds, 3),
                  **{k: round(v, 4) for k, v in fitter.params_.items()},
                  "log_likelihood": round(-fitter._negative_log_likelihood_ * len(data), 2)}))
