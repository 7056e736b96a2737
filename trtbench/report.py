"""Turn a saved run into a report: ``report.md`` and its pictures.

* ``report.png``: time per batch per approach, with each approach's floor marked, and the
  cumulative speedup, per backend;
* ``timeline-<backend>.png``: one round per approach, all on one time scale: upload,
  compute and download spans on their CUDA streams, enqueue and post-processing spans on
  their host threads (what the tutorial showed with Nsight Systems);
* ``sweep.png`` (with ``--batch-sweep``): images per second against p99 latency, a point
  per batch size, a line per approach and backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtbench.catalogue import NAMES
from trtbench.runs import MACHINE_FIELDS, SavedRun

SPAN_COLORS = {
    "upload": "#4c72b0",
    "compute": "#dd8452",
    "download": "#55a868",
    "enqueue": "#8c8c8c",
    "postprocess": "#8172b3",
}


def _order(name: str) -> tuple[int, str]:
    approach = name.split("-")[0]
    return (NAMES.index(approach) if approach in NAMES else len(NAMES), name)


def _measured(run: SavedRun) -> list[dict[str, Any]]:
    return [{"name": t.name, "case": t.approach, **t.info} for t in run.tests.values()]


def load_rows(run: SavedRun) -> dict[str, list[dict[str, Any]]]:
    """Per backend, one row per approach test (case id, figures), in the tutorial's order."""
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for row in _measured(run):
        if not row.get("sweep"):
            by_backend.setdefault(row["backend"], []).append(row)
    for rows in by_backend.values():
        rows.sort(key=lambda r: _order(r["case"]))
    return by_backend


def load_sweep(run: SavedRun) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per (backend, approach), the sweep's points by batch size."""
    points: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in _measured(run):
        if row.get("sweep"):
            points.setdefault((row["backend"], row["case"]), []).append(row)
    for rows in points.values():
        rows.sort(key=lambda r: r["batch_size"])
    return points


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_markdown(run: SavedRun, pictures: list[str]) -> str:
    machine = run.machine
    lines = ["# Benchmark report", "", f"Run: {run.saved_at or '?'}, commit {run.commit.get('id', '?')}", ""]
    lines += ["| machine | |", "| --- | --- |"] + [f"| {f} | {machine.get(f, '?')} |" for f in MACHINE_FIELDS] + [""]
    found = run.discrimination
    if found:
        lines += [
            f"Correctness power: {found['distinct_classes']} distinct top-1 classes in a batch of "
            f"{found['batch']}, image-dependent share of the logits {found['image_dependent_share']:.1%}.",
            "",
        ]
    for backend, rows in load_rows(run).items():
        base = {r["batch_size"]: r["ms_per_batch"] for r in rows if r["case"] == "baseline"}
        lines += [
            f"## {backend}",
            "",
            "| approach | batch | ms/batch (IQR) | img/s | speedup vs baseline | floor ms (x) | GPU compute ms "
            "| upload ms | download ms | enqueue ms | p99 latency ms | rel. L2 err | top-1 | top-5 | peak MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in rows:
            ref = base.get(r["batch_size"])
            speedup = f"{ref / r['ms_per_batch']:.2f}x" if ref else "-"
            floor = r.get("floor") or {}
            floor_cell = f"{floor['floor_ms']:.3f} ({r['ms_per_batch'] / floor['floor_ms']:.2f}x)" if floor else "-"
            lines.append(
                f"| {r['case']} | {r['batch_size']} "
                f"| {r['ms_per_batch']:.3f} ({_fmt(r.get('ms_per_batch_iqr'), '.3f')}) "
                f"| {_fmt(r.get('images_per_s'), ',.0f')} | {speedup} | {floor_cell} "
                f"| {_fmt(r.get('compute_ms_per_batch'), '.3f')} | {_fmt(r.get('upload_ms_per_batch'), '.3f')} "
                f"| {_fmt(r.get('download_ms_per_batch'), '.3f')} | {_fmt(r.get('enqueue_ms_per_batch'), '.3f')} "
                f"| {_fmt(r.get('latency_p99_ms'), '.2f')} | {_fmt(r.get('rel_l2_error'), '.2e')} "
                f"| {_fmt(r.get('top1_agreement'), '.1%')} | {_fmt(r.get('top5_agreement'), '.1%')} "
                f"| {_fmt(r.get('peak_device_mb'), '.0f')} |"
            )
        unstable = [r for r in rows if (r.get("gpu_compute_cv") or 0) > 0.01]
        if unstable:
            lines += [
                "",
                "GPU compute varied by more than 1% between rounds in: "
                + ", ".join(f"{r['case']} ({r['gpu_compute_cv']:.1%})" for r in unstable)
                + ".",
            ]
        lines.append("")
    sweep = load_sweep(run)
    if sweep:
        lines += [
            "## Batch-size sweep",
            "",
            "| backend | approach | batch | img/s | p50 latency ms | p99 latency ms |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for (backend, approach), points in sweep.items():
            lines += [
                f"| {backend} | {approach} | {p['batch_size']} | {_fmt(p.get('images_per_s'), ',.0f')} "
                f"| {_fmt(p.get('latency_p50_ms'), '.2f')} | {_fmt(p.get('latency_p99_ms'), '.2f')} |"
                for p in points
            ]
        lines.append("")
    lines += [f"![{name}]({name})" for name in pictures] + [""]
    return "\n".join(lines)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render_story(run: SavedRun, path: Path) -> None:
    """Time per batch per approach (median, IQR), its floor, and the speedup over baseline."""
    plt = _pyplot()
    by_backend = load_rows(run)
    fig, axes = plt.subplots(len(by_backend), 1, figsize=(12, 4.8 * len(by_backend)), squeeze=False)
    for ax, (backend, rows) in zip(axes[:, 0], by_backend.items()):
        batch = max(r["batch_size"] for r in rows)
        story = [r for r in rows if r["batch_size"] == batch]
        x = range(len(story))
        ms = [r["ms_per_batch"] for r in story]
        bars = ax.bar(
            x,
            ms,
            yerr=[r.get("ms_per_batch_iqr") or 0 for r in story],
            capsize=3,
            color="#4c72b0",
            label="ms per batch (median, IQR)",
        )
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in ms], fontsize=8, padding=2)
        floors = [(i, r["floor"]["floor_ms"]) for i, r in enumerate(story) if r.get("floor")]
        if floors:
            ax.scatter(
                [i for i, _ in floors],
                [f for _, f in floors],
                marker="_",
                s=900,
                linewidths=2.5,
                color="#c44e52",
                zorder=3,
                label="floor: max(upload, GPU compute), measured alone",
            )
        ax.set_xticks(list(x), [r["case"] for r in story], rotation=20, ha="right", fontsize=9)
        ax.set_xlabel("approach (each stacks on the one before it)")
        ax.set_ylabel("ms per batch")
        ax.set_ylim(0, max(ms) * 1.25)
        ax.set_title(f"{backend}: {run.machine.get('model', '?')}, batch {batch}, {run.machine.get('gpu_name', '?')}")
        handles, labels = ax.get_legend_handles_labels()
        names = [r["case"] for r in story]
        if "baseline" in names:
            base = ms[names.index("baseline")]
            twin = ax.twinx()
            (line,) = twin.plot(list(x), [base / v for v in ms], "o-", color="#dd8452")
            twin.set_ylabel("speedup over baseline (x)", color="#dd8452")
            twin.set_ylim(0, max(base / v for v in ms) * 1.15)
            handles, labels = handles + [line], labels + ["speedup over baseline (right axis)"]
        ax.legend(handles, labels, loc="upper center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# A span shorter than this share of the time axis is drawn this wide, so a short download
# stays visible; the legend says so.
MIN_SPAN_SHARE = 0.004


def render_timelines(rows: list[dict[str, Any]], backend: str, path: Path) -> bool:
    """One round per approach, on one shared time scale: spans per CUDA stream and host
    thread. False if no timeline was recorded."""
    rows = [r for r in rows if _spans(r.get("timeline") or {})]
    if not rows:
        return False
    plt = _pyplot()
    lanes_of = [_lanes(r["timeline"]) for r in rows]
    fig, axes = plt.subplots(
        len(rows),
        1,
        sharex=True,
        squeeze=False,
        figsize=(13, 1.2 + 1.1 * len(rows) + 0.25 * sum(len(lanes) for lanes in lanes_of)),
    )
    end = max(s["end_ms"] for r in rows for s in _spans(r["timeline"]))
    shortest = MIN_SPAN_SHARE * end
    for ax, row, lanes in zip(axes[:, 0], rows, lanes_of):
        for span in _spans(row["timeline"]):
            width = max(span["end_ms"] - span["start_ms"], shortest)
            ax.barh(
                lanes.index(_lane_of(span)),
                width,
                left=span["start_ms"],
                height=0.7,
                color=SPAN_COLORS[span["span"]],
                edgecolor="none",
            )
        ax.set_yticks(range(len(lanes)), lanes, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(
            f"{row['case']} (batch {row['batch_size']}): {row['ms_per_batch']:.2f} ms per batch", fontsize=9, loc="left"
        )
        ax.tick_params(axis="x", labelsize=8, labelbottom=True)
        ax.set_xlim(0, end * 1.01)
    axes[-1, 0].set_xlabel(
        "ms since the round's start (one round, CUDA events and host clock; every panel on this scale)"
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in SPAN_COLORS.values()]
    fig.legend(
        handles, list(SPAN_COLORS), loc="upper right", ncol=len(SPAN_COLORS), fontsize=9, bbox_to_anchor=(0.995, 0.995)
    )
    fig.suptitle(
        f"{backend}: one timed round per approach\n(spans under {MIN_SPAN_SHARE:.1%} of the axis drawn at that width)",
        y=0.995,
        fontsize=10,
        x=0.01,
        ha="left",
        va="top",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.965))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _lane_of(span: dict[str, Any]) -> str:
    """A row of the timeline: a CUDA stream (its label) or a host thread (its name)."""
    if "stream" in span:
        label = str(span["stream"])
        return label if "stream" in label else f"{label} stream"
    return f"thread {span['thread']}"


def _spans(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    """A timeline's spans, GPU then host (a saved run may hold either side alone)."""
    return [*timeline.get("gpu", []), *timeline.get("host", [])]


def _lanes(timeline: dict[str, Any]) -> list[str]:
    lanes: list[str] = []
    for span in _spans(timeline):
        if _lane_of(span) not in lanes:
            lanes.append(_lane_of(span))
    return lanes


def render_sweep(run: SavedRun, path: Path) -> bool:
    """Images per second against p99 latency: a point per batch size, a line per approach and backend."""
    sweep = load_sweep(run)
    if not sweep:
        return False
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for (backend, approach), points in sweep.items():
        xs = [p["latency_p99_ms"] for p in points]
        ys = [p["images_per_s"] for p in points]
        ax.plot(xs, ys, "o-", label=f"{approach} [{backend}]")
        for p, x, y in zip(points, xs, ys):
            ax.annotate(f"b{p['batch_size']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
    ax.set_xlabel("p99 latency per batch, ms (log scale)")
    ax.set_ylabel("images per second")
    ax.set_title(f"latency-throughput: {run.machine.get('model', '?')}, {run.machine.get('gpu_name', '?')}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(run: SavedRun, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    pictures = []
    by_backend = load_rows(run)
    if by_backend:
        render_story(run, out / "report.png")
        pictures.append("report.png")
        for backend, rows in by_backend.items():
            name = f"timeline-{backend}.png"
            if render_timelines(rows, backend, out / name):
                pictures.append(name)
    if render_sweep(run, out / "sweep.png"):
        pictures.append("sweep.png")
    (out / "report.md").write_text(render_markdown(run, pictures))
    return [out / "report.md", *(out / p for p in pictures)]
