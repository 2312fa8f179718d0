"""carol-bench's outputs: REPORT.md, report.json, report.csv and two charts, all written atomically."""
import csv
import io
import json
from dataclasses import asdict

import numpy as np

from carolgen.runtime.atomic import write_text_atomic

from .probe import PAIRED_BLOCK
from .rows import FILE_KINDS
from .targets import against_previous, quantisation_targets, speed_targets, step_table, step_targets

COLUMNS = ["row", "status", "size_kb", "load_s", "p50_us", "p90_us", "p99_us", "paired_p50_us", "chars_per_s",
           "peak_rss_mb", "speedup_vs_seed", "max_abs_dp", "top1", "mean_kl", "greedy_median", "perplexity",
           "perplexity_increase", "lost", "word_rate", "note"]


KEY = ("checkpoint", "kind", "format", "mode", "runtime")


def label(plan):
    return f"{plan['name']} · {plan['runtime']}" if plan["kind"] in FILE_KINDS else plan["name"]


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
               "speedup_vs_seed": "{:,.0f}×", "perplexity": "{:.2f}", "perplexity_increase": "{:+.2%}",
               "lost": "{:.0f}", "word_rate": "{:.2f}", "chars_per_s": "{:,.0f}", "greedy_median": "{:.0f}"}
    return formats.get(key, "{:,.1f}").format(value)


def markdown_table(rows):
    header = ["row", "status", "size KB", "load s", "p50 µs", "p90 µs", "p99 µs", "paired p50 µs", "chars/s",
              "peak RSS MB", "× seed loop", "max abs dp", "top-1", "mean KL", "greedy /200", "perplexity", "Δ ppl",
              "lost chars", "word rate", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[k], k) for k in COLUMNS) + " |")
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
    size_fidelity(plt, save_figure, out, rows)


# How the size/fidelity chart tells rows apart: colour by mode, marker by format.
MODE_COLOURS = {"fp32": "#1b6ca8", "fp16": "#59a14f", "dynamic": "#f28e2b", "dynamic-compat": "#b07aa1",
                "int8": "#e15759"}
FORMAT_MARKERS = {"tflite": "o", "onnx": "s"}


def size_fidelity(plt, save_figure, out, rows):
    """File size against held-out perplexity change, one point per file (its first runtime); the main
    checkpoint filled, others hollow. Lower left is better: small and faithful."""
    figure, axes = plt.subplots(figsize=(8, 5))
    seen, main = set(), rows[0]["key"][0] if rows else None
    for r in rows:
        checkpoint, kind, fmt, mode_name, _ = r["key"]
        if kind != "file" or r.get("perplexity_increase") is None or (checkpoint, fmt, mode_name) in seen:
            continue
        seen.add((checkpoint, fmt, mode_name))
        colour = MODE_COLOURS.get(mode_name, "grey")
        axes.scatter(r["size_kb"], max(100 * r["perplexity_increase"], 1e-4), s=60,
                     marker=FORMAT_MARKERS.get(fmt, "^"), edgecolors=colour,
                     facecolors=colour if checkpoint == main else "none", linewidths=1.5)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=m) for m, c in MODE_COLOURS.items()]
    handles += [plt.Line2D([], [], color="black", marker=k, linestyle="", markerfacecolor="none", label=f)
                for f, k in FORMAT_MARKERS.items()]
    axes.legend(handles=handles, fontsize=8, loc="upper right", title=f"filled: {main}; hollow: others")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("file size (KB, log scale)")
    axes.set_ylabel("held-out perplexity above Keras (%, log; floor 1e-4)")
    axes.set_title("Size against fidelity: lower left is better (smaller, closer to Keras)")
    save_figure(figure, out / "size_fidelity.png")


def write_report(out, machine, settings, quick, export_rows, results, tool, starts, keras_perplexity, previous=None,
                 generation=(), loop=None):
    """`keras_perplexity`: {checkpoint stem: the Keras model's held-out perplexity}; `previous`: an earlier
    report.json document to compare the files with; `generation`: windowed and step files generating side by
    side (rows.generation_pairs); `loop`: the generation loop's overhead (loop_overhead.loop_overhead)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(results)
    document = {"machine": machine, "settings": settings, "quick": quick, "keras_perplexity": keras_perplexity,
                "export": export_rows, "rows": rows, "litert_benchmark_tool": tool, "cold_start_s": starts,
                "generation": list(generation), "loop_overhead_us": loop or {}, "raw": [asdict(r) for r in results]}
    write_text_atomic(out / "report.json", json.dumps(document, indent=2, default=str))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "report.csv", buffer.getvalue())
    charts(out, rows)
    write_text_atomic(out / "REPORT.md", markdown(machine, settings, quick, rows, tool, starts, keras_perplexity,
                                                  export_rows, previous) + step_section(rows, export_rows,
                                                                                        generation, loop or {},
                                                                                        settings["generate_chars"]))


def step_section(rows, export_rows, generation, loop, settings_chars):
    return f"""
## Step files against windowed files, and the generation loop
A step file (`carol-export --graph step`) runs one LSTM step per character with a carried state instead of
re-running the window. chars/s: the fp32 windowed and step files of a runtime generating 1 sample of
{settings_chars} characters in one process, in turn, greedy and at carol-generate's defaults (temperature 0.7,
top-p 0.8), the median of the rounds, counted after the first character (a step file feeds the prime one step
per character first: about a window's worth of steps, a few milliseconds). The loop's own cost: carolgen's
Generator driven by a backend that returns fixed probabilities at once (benchmarks/loop_overhead.py),
greedy and at temperature 0.7 + top-p 0.9, 1 sample.

{step_targets(generation, loop)}

Each step file on each runtime against the windowed file of the same mode (p50: one model call, the medians
over the timing rounds), and the export gate's two comparisons: exactly against the Keras step model, and for
drift against the windowed Keras model, on streams of real lyrics run 250 characters past their prime.

{step_table(rows, export_rows)}
"""


def previous_section(rows, previous):
    table = against_previous(rows, previous)
    if not table:
        return ""
    return f"""
## Against the previous report
The same rows in the report this run was compared with (carol-bench --previous; measured on
{previous.get('machine', {}).get('date', 'an earlier date')}, so p50 compares loosely; its perplexity was on a
different sample of windows).

{table}
"""


def markdown(machine, settings, quick, rows, tool, starts, keras_perplexity, export_rows, previous):
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

Every row ran in its own process, one interpreter thread, batch 1, in one run of carol-bench. Latency and
chars/s of the file and reference rows are the median over {settings['timing_rounds']} rounds, the rows
timed in turn in each, so that the machine's drift during the run spreads over every row. Latency is a
forward pass (set input, invoke, read output) after {settings['warmup']} warm-up calls, over
{settings['iterations']} calls (the seed loop: {settings['seed_loop_iterations']}); chars/s is greedy generation of
{settings['generate_chars']} characters ({settings['seed_loop_chars']} for the seed loop) through carolgen's loop, the
median of three runs after a warm-up of a tenth of that;
peak RSS is that process's maximum resident set after generating. Fidelity is against the Keras model on the
export gate's parity set ({settings['windows']:,} seeded windows, half from held-out songs, half from training
songs); perplexity is on the held-out half (Keras: {perplexities}); greedy agreement is the median, over the
primes, of how many of 200 greedy characters match Keras's. Word rate: the share of the words each row writes
(temperature 0.7, top-p 0.9, five samples of {settings['word_rate_chars']:,} characters, fixed seed) that occur in
the training lyrics;
it shows what a format or quantisation does to the text, not only to the probabilities.

## Speed targets
{speed_targets(rows, starts)}

## Quantised files against fp32 and their promises
Size against the fp32 file of the same format; p50 against fp32 on the same runtime (each row's median over
the timing rounds, in its own process). The paired p50 column is a cross-check: every file of a runtime in
one process, timed in interleaved blocks of {PAIRED_BLOCK} calls, {settings['paired_rounds']} rounds; it
agrees on onnxruntime, but TFLite interpreters sharing a process slow one another unevenly, so the ratios
use the separate-process figures; perplexity,
top-1 and lost characters (real next characters Keras gives > 0.001 that the file gives < 1e-6) against
the mode's gate promises (README, "What the gate promises").

{quantisation_targets(rows)}
{previous_section(rows, previous)}
## All rows
{markdown_table(rows)}

## Cross-check with LiteRT's own benchmark tool
{chr(10).join(tool_lines) or '- not run'}

## Files not accepted by carol-export
{chr(10).join(unsupported) or '- none'}

Charts: `latency.png` (latency per row), `size_fidelity.png` (file size against held-out perplexity change).
"""
