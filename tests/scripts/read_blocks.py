"""Reads every Vigil block under a data dir with pyarrow alone and prints
one JSON line per (block, series): labels, timestamps and values, joined as
docs/STORAGE.md describes. Used by tests/parquet_blocks.rs."""
import json
import math
import os
import sys

import pyarrow.parquet as pq


def value_json(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


def main(data_dir):
    blocks_dir = os.path.join(data_dir, "blocks")
    for name in sorted(os.listdir(blocks_dir)):
        block = os.path.join(blocks_dir, name)
        if name.startswith(".") or not os.path.isdir(block):
            continue
        series = pq.read_table(os.path.join(block, "series.parquet")).to_pylist()
        stamps = pq.read_table(os.path.join(block, "timestamps.parquet"))
        samples = pq.read_table(os.path.join(block, "samples.parquet")).to_pylist()
        groups = {}
        for g, i, t in zip(
            stamps.column("group_id").to_pylist(),
            stamps.column("sample_index").to_pylist(),
            stamps.column("timestamp").cast("int64").to_pylist(),
        ):
            groups[(g, i)] = t
        by_id = {s["__series_id"]: s for s in series}
        out = {}
        for row in samples:
            s = by_id[row["series_id"]]
            if row["value_float"] is not None:
                v = row["value_float"]
            else:
                v = (row["value_int"] + s.get("__value_base", 0)) * s["__multiplier"] / 10 ** s["__scale"]
            t = groups[(s["__group_id"], row["sample_index"])]
            entry = out.setdefault(row["series_id"], {"timestamps": [], "values": []})
            entry["timestamps"].append(t)
            entry["values"].append(value_json(v))
        for sid, entry in sorted(out.items()):
            s = by_id[sid]
            labels = {
                (k[len("label:"):] if k.startswith("label:") else k): v
                for k, v in s.items()
                if not k.startswith("__") or k == "__name__"
                if v is not None
            }
            print(json.dumps({"block": name, "metric": labels, **entry}))


if __name__ == "__main__":
    main(sys.argv[1])
