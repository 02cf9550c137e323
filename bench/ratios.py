#!/usr/bin/env python3
"""Tables from Google Benchmark JSON output (bench/README.md shows the commands).

    bench/ratios.py slab.json kasan.json pressure.json fuzz_*.json

Takes the median of each benchmark's repetitions (the single run when there are none) and
prints markdown tables: every benchmark, then for slab_bench ns per alloc+free pair per size
for kmm and each peer with kmm/mimalloc ratios, and for kasan_bench each variant / off.
Micro-benchmarks use CPU time (the machine is shared: wall time includes time the thread was
not running); manual-time benchmarks (pressure_bench) use their manual (wall) time.
"""
import json
import re
import sys


def medians(path):
    with open(path) as f:
        data = json.load(f)
    runs = {}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            runs[b.get("run_name", b["name"])] = {"error": b.get("error_message", "error")}
            continue
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                runs[name] = b
        elif name not in runs or runs[name].get("run_type") != "aggregate":
            runs.setdefault(name, b)
    return data.get("context", {}), runs


def fmt(v):
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def value(b):
    """CPU time, or the manual time of UseManualTime benchmarks (reported as real_time)."""
    return b["real_time"] if "manual_time" in b["name"] else b["cpu_time"]


def table_all(path, ctx, runs):
    print(f"\n### {path}\n")
    peers = [f"{k}: {v}" for k, v in ctx.items() if k.startswith("peer_") or k == "fuzz_target"]
    for p in peers:
        print(f"- {p}")
    if peers:
        print()
    print("| benchmark | time | unit | counters |")
    print("|---|---|---|---|")
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads",
            "iterations", "real_time", "cpu_time", "time_unit", "family_index",
            "per_family_instance_index", "aggregate_name", "aggregate_unit", "label"}
    for name, b in runs.items():
        if "error" in b:
            print(f"| {name} | error: {b['error']} | | |")
            continue
        counters = ", ".join(f"{k}={fmt(v)}" for k, v in b.items()
                             if k not in skip and isinstance(v, (int, float)))
        label = f" ({b['label']})" if b.get("label") else ""
        print(f"| {name}{label} | {fmt(value(b))} | {b['time_unit']} | {counters} |")


def table_slab(runs):
    rows = {}
    for name, b in runs.items():
        m = re.match(r"BM_(\w+)/size:(\d+)", name)
        if m and "error" not in b:
            rows.setdefault(int(m.group(2)), {})[m.group(1)] = b["cpu_time"]
    if not rows:
        return
    cols = [c for c in ["kmem_cache", "kmalloc", "glibc", "jemalloc", "mimalloc"]
            if any(c in r for r in rows.values())]
    print("\n### slab fast path: ns (CPU) per alloc+free pair, median\n")
    head = cols + (["kmem_cache/mimalloc", "kmalloc/mimalloc"] if "mimalloc" in cols else [])
    print("| size | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 1) + "|")
    for size in sorted(rows):
        r = rows[size]
        cells = [fmt(r[c]) if c in r else "-" for c in cols]
        if "mimalloc" in cols and "mimalloc" in r:
            cells += [f"{r.get(c, 0) / r['mimalloc']:.2f}" for c in ["kmem_cache", "kmalloc"]]
        print(f"| {size} | " + " | ".join(cells) + " |")


def table_kasan(runs):
    rows = {}
    for name, b in runs.items():
        m = re.match(r"BM_(\w+)/variant:(\d+)", name)
        if m and "error" not in b:
            rows.setdefault(m.group(1), {})[b.get("label", m.group(2))] = b["cpu_time"]
    if not rows:
        return
    print("\n### KASAN / KFENCE cost: ns (CPU) per pair, median, and ratio to off\n")
    print("| benchmark | off | kasan | kfence100 | kasan/off | kfence100/off |")
    print("|---|---|---|---|---|---|")
    for bench, r in rows.items():
        off = r.get("off")
        cells = [fmt(r[v]) if v in r else "-" for v in ["off", "kasan", "kfence100"]]
        cells += [f"{r[v] / off:.1f}" if off and v in r else "-" for v in ["kasan", "kfence100"]]
        print(f"| {bench} | " + " | ".join(cells) + " |")


def main():
    for path in sys.argv[1:]:
        ctx, runs = medians(path)
        table_slab(runs)
        table_kasan(runs)
        table_all(path, ctx, runs)


if __name__ == "__main__":
    main()
