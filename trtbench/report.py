"""Turn a saved run into ``report.md`` and ``report.png`` (the technique story per backend).

    python -m trtbench.report RUN.json --out report/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trtbench.gpu.approaches import NAMES

MACHINE_FIELDS = ("gpu_name", "compute_capability", "cuda_driver", "cuda_runtime", "tensorrt", "torch",
                  "torchvision", "onnxruntime", "cuda_bindings")


def _order(name: str) -> tuple[int, str]:
    approach = name.split("-")[0]
    return (NAMES.index(approach) if approach in NAMES else len(NAMES), name)


def load_rows(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per backend, one row per test (case id, figures), in the tutorial's order."""
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for bench in doc.get("benchmarks", []):
        extra = bench.get("extra_info", {})
        if "ms_per_batch" not in extra:
            continue
        by_backend.setdefault(extra["backend"], []).append({"case": extra["approach"], **extra})
    for rows in by_backend.values():
        rows.sort(key=lambda r: _order(r["case"]))
    return by_backend


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_markdown(doc: dict[str, Any], png_name: str | None) -> str:
    machine = doc.get("machine_info", {})
    lines = ["# Benchmark report", "", f"Run: {doc.get('datetime', '?')}, commit {doc.get('commit_info', {}).get('id', '?')}", ""]
    lines += ["| machine | |", "| --- | --- |"] + [f"| {f} | {machine.get(f, '?')} |" for f in MACHINE_FIELDS] + [""]
    for backend, rows in load_rows(doc).items():
        base = {r["batch_size"]: r["ms_per_batch"] for r in rows if r["case"] == "baseline"}
        lines += [f"## {backend}", "",
                  "| approach | batch | ms/batch (IQR) | img/s | speedup vs baseline | GPU ms/batch | last 3 batches ms "
                  "| p99 latency ms | rel. L2 err | top-1 agree | peak MB |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            ref = base.get(r["batch_size"])
            speedup = f"{ref / r['ms_per_batch']:.2f}x" if ref else "-"
            lines.append(
                f"| {r['case']} | {r['batch_size']} | {r['ms_per_batch']:.3f} ({_fmt(r.get('ms_per_batch_iqr'), '.3f')}) "
                f"| {_fmt(r.get('images_per_s'), ',.0f')} | {speedup} | {_fmt(r.get('gpu_ms_per_batch'), '.3f')} "
                f"| {_fmt(r.get('last3_of_batches_ms'), '.2f')} | {_fmt(r.get('latency_p99_ms'), '.2f')} "
                f"| {_fmt(r.get('rel_l2_error'), '.2e')} | {_fmt(r.get('top1_agreement'), '.2%')} "
                f"| {_fmt(r.get('peak_device_mb'), '.0f')} |")
        lines.append("")
    if png_name:
        lines += [f"![technique story]({png_name})", ""]
    return "\n".join(lines)


def render_png(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_backend = load_rows(doc)
    fig, axes = plt.subplots(len(by_backend) or 1, 1, figsize=(11, 4.2 * max(1, len(by_backend))), squeeze=False)
    for ax, (backend, rows) in zip(axes[:, 0], by_backend.items()):
        batch = max(r["batch_size"] for r in rows)
        story = [r for r in rows if r["batch_size"] == batch]
        names = [r["case"] for r in story]
        ms = [r["ms_per_batch"] for r in story]
        iqr = [r.get("ms_per_batch_iqr") or 0 for r in story]
        bars = ax.bar(range(len(story)), ms, yerr=iqr, capsize=3, color="#4c72b0")
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in ms], fontsize=8, padding=2)
        ax.set_xticks(range(len(story)), names, rotation=20, ha="right", fontsize=9)
        ax.set_ylabel("ms per batch (median, IQR)")
        ax.set_title(f"{backend}: batch {batch}, {doc.get('machine_info', {}).get('gpu_name', '?')}")
        if "baseline" in names:
            base = ms[names.index("baseline")]
            twin = ax.twinx()
            twin.plot(range(len(story)), [base / v for v in ms], "o-", color="#dd8452")
            twin.set_ylabel("speedup over baseline", color="#dd8452")
            twin.set_ylim(0, max(base / v for v in ms) * 1.15)
        ax.set_ylim(0, max(ms) * 1.2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtbench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a saved pytest-benchmark JSON")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output folder (default ./report)")
    args = parser.parse_args(argv)
    doc = json.loads(args.run.read_text())
    if not load_rows(doc):
        print(f"error: {args.run} holds no approach benchmark with figures", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    render_png(doc, args.out / "report.png")
    (args.out / "report.md").write_text(render_markdown(doc, "report.png"))
    print(f"wrote {args.out / 'report.md'} and {args.out / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
