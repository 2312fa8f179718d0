"""carol-bench's outputs: REPORT.md, report.json, report.csv and two charts, all written atomically."""
import csv
import io
import json
from dataclasses import asdict

import numpy as np

from carolgen.runtime.atomic import write_text_atomic

COLUMNS = ["row", "status", "size_kb", "load_s", "p50_us", "p90_us", "p99_us", "chars_per_s", "peak_rss_mb",
           "speedup_vs_seed", "max_abs_dp", "top1", "mean_kl", "greedy_median", "perplexity", "perplexity_change",
           "word_rate", "note"]


KEY = ("checkpoint", "kind", "format", "mode", "runtime")


def label(plan):
    return f"{plan['name']} · {plan['runtime']}" if plan["kind"] in ("file", "reference") else plan["name"]


def find(rows, kind, fmt, mode="fp32", runtime=None, checkpoint=None):
    """The measured row with that identity (checkpoint None: the main one, the first; runtime None: the
    format's first), or an empty dict."""
    checkpoint = checkpoint or (rows[0]["key"][0] if rows else None)
    for row in rows:
        c, k, f, m, r = row["key"]
        if (c, k, f, m) == (checkpoint, kind, fmt, mode) and runtime in (None, r) and row.get("p50_us"):
            return row
    return {}


def table_rows(results):
    """Flat dicts, one per row, with the speed-up against the seed loop."""
    baseline = next((r.figures.get("chars_per_s") for r in results
                     if r.plan["kind"] == "baseline" and r.measured), None)
    rows = []
    for r in results:
        f = r.figures
        row = {"row": label(r.plan), "status": r.plan["status"] or r.plan["kind"],
               "size_kb": r.plan["size"] / 1024 if r.plan["size"] else None, "note": r.note,
               "key": [r.plan[k] for k in KEY]}
        for key in COLUMNS[3:-1]:
            row.setdefault(key, f.get(key))
        if baseline and f.get("chars_per_s"):
            row["speedup_vs_seed"] = f["chars_per_s"] / baseline
        rows.append(row)
    return rows


def _cell(value, key):
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        return value
    formats = {"max_abs_dp": "{:.1e}", "mean_kl": "{:.1e}", "top1": "{:.3f}", "load_s": "{:.3f}",
               "speedup_vs_seed": "{:,.0f}×", "perplexity": "{:.2f}", "perplexity_change": "{:+.3f}",
               "word_rate": "{:.2f}",
               "chars_per_s": "{:,.0f}", "greedy_median": "{:.0f}"}
    return formats.get(key, "{:,.1f}").format(value)


def markdown_table(rows):
    header = ["row", "status", "size KB", "load s", "p50 µs", "p90 µs", "p99 µs", "chars/s", "peak RSS MB",
              "× seed loop", "max abs dp", "top-1", "mean KL", "greedy /200", "perplexity", "Δ ppl", "word rate",
              "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[k], k) for k in COLUMNS) + " |")
    return "\n".join(lines)


def speed_targets(rows, starts):
    """The speed contracts, computed from this run's rows (same process, same machine, same run)."""
    onnx, hand = find(rows, "file", "onnx"), find(rows, "reference", "onnx")
    tfl, fused = find(rows, "file", "tflite", runtime="litert"), find(rows, "reference", "tflite")
    lines = []
    if onnx and hand:
        lines.append(f"- fp32 ONNX forward p50 {onnx['p50_us']:.1f} µs vs hand-built native-LSTM graph "
                     f"{hand['p50_us']:.1f} µs: **{onnx['p50_us'] / hand['p50_us']:.2f}×** (target ≤ 1.25×)")
    if tfl and fused:
        lines.append(f"- fp32 TFLite forward p50 {tfl['p50_us']:.1f} µs vs fused-op file {fused['p50_us']:.1f} µs: "
                     f"**{tfl['p50_us'] / fused['p50_us']:.2f}×** (target ≤ 1.1×)")
    if onnx.get("chars_per_s"):
        lines.append(f"- greedy generation, fp32 ONNX: **{onnx['chars_per_s']:,.0f} chars/s** (target ≥ 5,000: the "
                     "edge budget the default architecture was sized for), "
                     f"**{(onnx.get('speedup_vs_seed') or 0):,.0f}×** the seed loop (target ≥ 300×), "
                     f"peak RSS {onnx['peak_rss_mb']:.0f} MB (target ≤ 80 MB)")
    for name, seconds in starts.values():
        lines.append(f"- cold start, `carol-generate --model {name} --length 1` as a new process: "
                     f"**{seconds:.2f} s** median (target ≤ 0.5 s to the first character)")
    return "\n".join(lines)


def charts(out, rows):
    from carolgen.runtime.plots import pyplot, save_figure
    plt = pyplot()
    measured = [r for r in rows if r["p50_us"]]
    figure, axes = plt.subplots(figsize=(9, 0.35 * len(measured) + 1.5))
    labels = [r["row"] for r in measured]
    p50 = np.array([r["p50_us"] for r in measured])
    p90 = np.array([r["p90_us"] for r in measured])
    axes.barh(labels, p50, xerr=[np.zeros_like(p50), p90 - p50], color="#4a7ab5", capsize=2)
    axes.set_xscale("log")
    axes.invert_yaxis()
    axes.set_xlabel("forward latency, batch 1, one thread (µs, log scale; bar p50, whisker p90)")
    save_figure(figure, out / "latency.png")
    files = [r for r in rows if r["size_kb"] and r["max_abs_dp"] is not None]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for r in files:
        axes.scatter(r["size_kb"], max(r["max_abs_dp"], 1e-9))
        axes.annotate(r["row"].split(" · ")[0], (r["size_kb"], max(r["max_abs_dp"], 1e-9)), fontsize=7)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("file size (KB)")
    axes.set_ylabel("max |Δp| vs Keras (held-out windows)")
    save_figure(figure, out / "size_fidelity.png")


def write_report(out, machine, settings, quick, export_rows, results, tool, starts, keras_perplexity):
    """`keras_perplexity`: {checkpoint stem: the Keras model's held-out perplexity}."""
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(results)
    document = {"machine": machine, "settings": settings, "quick": quick, "keras_perplexity": keras_perplexity,
                "export": export_rows, "rows": rows, "litert_benchmark_tool": tool, "cold_start_s": starts,
                "raw": [asdict(r) for r in results]}
    write_text_atomic(out / "report.json", json.dumps(document, indent=2, default=str))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "report.csv", buffer.getvalue())
    charts(out, rows)
    write_text_atomic(out / "REPORT.md", markdown(machine, settings, quick, rows, tool, starts, keras_perplexity,
                                                  export_rows))


def markdown(machine, settings, quick, rows, tool, starts, keras_perplexity, export_rows):
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    tool_lines = []
    for name, (checkpoint, mode, median_us, note) in tool.items():
        ours = find(rows, "file", "tflite", mode, "litert", checkpoint).get("p50_us")
        if median_us is None or ours is None:
            tool_lines.append(f"- {name}: {note or 'not measured'}")
            continue
        ratio = ours / median_us
        verdict = "agree within 25%" if abs(ratio - 1) <= 0.25 else \
            "differ by more than 25%: the tool reports milliseconds to two decimals (10 µs steps) and times " \
            "its own invoke loop; ours includes set_tensor/get_tensor from Python"
        tool_lines.append(f"- {name}: LiteRT tool median {median_us:.0f} µs, ours p50 {ours:.1f} µs "
                          f"(ratio {ratio:.2f}): {verdict}")
    unsupported = [f"- {r['file']}: {r['status']}: {r['reason']}" for r in export_rows if r["status"] != "accepted"]
    perplexities = ", ".join(f"{stem} {value:.2f}" for stem, value in keras_perplexity.items())
    return f"""# carol-bench report{' (quick run: CI-sized, not for quoting)' if quick else ''}

Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, {machine['platform']}.
Packages: {packages}. Date: {machine['date']}.

Every row ran in its own process, one interpreter thread, batch 1, in one run of carol-bench. Latency is a
forward pass (set input, invoke, read output) after {settings['warmup']} warm-up calls, over
{settings['iterations']} calls (the seed loop: {settings['seed_loop_iterations']}); chars/s is greedy generation of
{settings['generate_chars']} characters ({settings['seed_loop_chars']} for the seed loop) through carolgen's loop, the
median of three runs after a warm-up of a tenth of that;
peak RSS is that process's maximum resident set after generating. Fidelity is against the Keras model on
held-out windows (Keras perplexity: {perplexities}); greedy agreement is the median, over the primes, of how
many of 200 greedy characters match Keras's. Word rate: the share of the words each row writes (temperature 0.7,
top-p 0.9, five samples of {settings['word_rate_chars']:,} characters, fixed seed) that occur in the training lyrics;
it shows what a format or quantisation does to the text, not only to the probabilities.

## Speed targets
{speed_targets(rows, starts)}

## All rows
{markdown_table(rows)}

## Cross-check with LiteRT's own benchmark tool
{chr(10).join(tool_lines) or '- not run'}

## Files not accepted by carol-export
{chr(10).join(unsupported) or '- none'}

Charts: `latency.png` (latency per row), `size_fidelity.png` (file size against max |Δp|).
"""
