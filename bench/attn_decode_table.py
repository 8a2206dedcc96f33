#!/usr/bin/env python3
"""Markdown table of a decode-attention benchmark run (attn_decode_bench JSON with repetitions).

  build/bench/attn_decode_bench --benchmark_min_time=0.1 --benchmark_repetitions=5 \
      --benchmark_out=bench/results/attn_decode_cpu.json --benchmark_out_format=json
  python3 bench/attn_decode_table.py bench/results/attn_decode_cpu.json

Each configuration's fastest repetition (the "min" aggregate) is used: on a shared machine other
processes only add time. Columns: time per call (us) and KV GB/s of the f16 pages, then each
codec's speed-up over them; "mixed" (1/8 f16, 3/8 int4, 1/2 int2 of the tokens) adds its time
over the byte-weighted ideal, the same tokens' time in the pure runs.
"""
import json
import sys

CODECS = ["f16", "int8-g32", "int4-g32", "int2-g32", "int4-kivi64", "mixed"]


def main(path):
    runs = json.load(open(path))["benchmarks"]
    best = {}  # (dim, tokens, threads) -> codec -> (us, GB/s, vs_ideal)
    for r in runs:
        if r.get("run_type") == "aggregate" and r.get("aggregate_name") != "min":
            continue
        dim, tokens, codec, threads = (int(x) for x in r["name"].split("/")[1:5])
        label = r.get("label", "").split(" ")[0]
        if label == "f16-one-segment":
            continue
        cell = best.setdefault((dim, tokens, threads), {})
        us = r["real_time"]
        if label not in cell or us < cell[label][0]:
            cell[label] = (us, r.get("bytes_per_second", 0) / 1e9, r.get("vs_ideal"))
    print("| head_dim, threads | context | f16 us | f16 GB/s | " + " | ".join(c + " (GB/s)" for c in CODECS[1:]) + " |")
    print("| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in CODECS[1:]) + " |")
    for (dim, tokens, threads) in sorted(best, key=lambda k: (-k[2], -k[0], k[1])):
        cell = best[(dim, tokens, threads)]
        if "f16" not in cell:
            continue
        f16_us, f16_gbs, _ = cell["f16"]
        cols = []
        for c in CODECS[1:]:
            if c not in cell:
                cols.append("-")
                continue
            us, gbs, ideal = cell[c]
            text = f"{f16_us / us:.2f}x ({gbs:.1f})"
            if c == "mixed" and all(k in cell for k in ("f16", "int4-g32", "int2-g32")):
                # The bench's mixed cache: 1/8 f16, 3/8 int4, 1/2 int2 of the tokens.
                ideal_us = cell["f16"][0] / 8 + cell["int4-g32"][0] * 3 / 8 + cell["int2-g32"][0] / 2
                text += f", {us / ideal_us:.2f} of ideal"
            cols.append(text)
        ctx = f"{tokens // 1024}K" if tokens >= 1024 else str(tokens)
        print(f"| {dim}, {threads} | {ctx} | {f16_us:.0f} | {f16_gbs:.1f} | " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
