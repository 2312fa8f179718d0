"""The report's targets, each computed from one run's rows and marked ✅ or ❌ (a NaN never passes).

Speed targets compare rows measured side by side in the same run. Quantisation targets hold each quantised
file to the size and speed that make it worth choosing, and to its mode's gate promises (export/modes.py).
"""
import math

from carolgen.export.modes import MODES

# A quantised file is worth choosing when it is at most this fraction of the fp32 file of the same format.
SIZE_TARGETS = {"int8": 0.40, "dynamic": 0.60, "dynamic-compat": 0.60}
# "No slower": p50 at most this times fp32's on the same runtime. The 2% is the timing's resolution here:
# ONNX fp16, whose Casts fold away at load so that it computes exactly what fp32 does, measured 0.99-1.00x.
NO_SLOWER = 1.02


def mark(passed):
    return "✅" if passed else "❌"


def _find(rows, key):
    return next((r for r in rows if tuple(r["key"]) == tuple(key) and r.get("p50_us")), {})


def _ratio(row, reference, field):
    return row[field] / reference[field] if row.get(field) and reference.get(field) else math.nan


def _speed_ratio(row, reference):
    """(p50 ratio, p50, reference p50) from the separate-process figures (medians over the timing rounds).
    The paired figures are a cross-check only: they agree on onnxruntime, but TFLite interpreters that
    share a process slow one another, and unevenly (the fused file measured 0.95x the unrolled one paired,
    0.57x alone)."""
    return _ratio(row, reference, "p50_us"), row["p50_us"], reference["p50_us"]


def speed_targets(rows, starts):
    """The speed contracts of the main checkpoint's fp32 files."""
    main = rows[0]["key"][0] if rows else None
    onnx, hand = _find(rows, (main, "file", "onnx", "fp32", "onnxruntime")), \
        _find(rows, (main, "reference", "onnx", "fp32", "onnxruntime"))
    tfl, unrolled = _find(rows, (main, "file", "tflite", "fp32", "litert")), \
        _find(rows, (main, "reference", "tflite", "fp32", "litert"))
    lines = []
    if onnx and hand:
        ratio, ours, theirs = _speed_ratio(onnx, hand)
        lines.append(f"- {mark(ratio <= 1.25)} fp32 ONNX forward p50 {ours:.1f} µs vs hand-built native-LSTM "
                     f"graph {theirs:.1f} µs: **{ratio:.2f}×** (target ≤ 1.25×)")
    if tfl and unrolled:
        ratio, ours, theirs = _speed_ratio(tfl, unrolled)
        lines.append(f"- {mark(ratio <= NO_SLOWER)} fp32 TFLite (fused LSTM op) forward p50 {ours:.1f} µs vs "
                     f"the unrolled file {theirs:.1f} µs: **{ratio:.2f}×** "
                     f"(target ≤ {NO_SLOWER:.2f}×: no slower), at "
                     f"**{_ratio(tfl, unrolled, 'size_kb'):.2f}×** its size")
    if onnx.get("chars_per_s"):
        speedup = onnx.get("speedup_vs_seed") or math.nan
        lines.append(f"- {mark(onnx['chars_per_s'] >= 5000 and speedup >= 300 and onnx['peak_rss_mb'] <= 80)} greedy "
                     f"generation, fp32 ONNX: **{onnx['chars_per_s']:,.0f} chars/s** (target ≥ 5,000: the edge budget "
                     f"the default architecture was sized for), **{speedup:,.0f}×** the seed loop (target ≥ 300×), "
                     f"peak RSS {onnx['peak_rss_mb']:.0f} MB (target ≤ 80 MB)")
    for name, seconds in starts.values():
        lines.append(f"- {mark(seconds <= 0.5)} cold start, `carol-generate --model {name} --length 1` as a new "
                     f"process: **{seconds:.2f} s** median (target ≤ 0.5 s to the first character)")
    return "\n".join(lines)


def quantisation_targets(rows):
    """A Markdown table: each quantised file on each runtime against the fp32 file of the same checkpoint,
    format and runtime, and against its mode's gate promises."""
    lines = ["| file · runtime | size vs fp32 | p50 vs fp32 | held-out perplexity | top-1 | lost characters |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        checkpoint, kind, fmt, mode_name, runtime = row["key"]
        if kind != "file" or mode_name == "fp32" or not row.get("p50_us") or mode_name not in MODES:
            continue
        fp32 = _find(rows, (checkpoint, kind, fmt, "fp32", runtime))
        limits = MODES[mode_name].limits
        size, speed = _ratio(row, fp32, "size_kb"), _speed_ratio(row, fp32)[0] if fp32 else math.nan
        increase, top1, lost = (row.get(k) for k in ("perplexity_increase", "top1", "lost"))
        increase = math.nan if increase is None else increase
        size_target = SIZE_TARGETS.get(mode_name, 1.0)
        speed_cell = (f"{speed:.2f}× (no target: float arithmetic in every mode)" if runtime == "numpy" else
                      f"{mark(speed <= NO_SLOWER)} {speed:.2f}× (≤ {NO_SLOWER:.2f}×)")
        cells = [f"{mark(size <= size_target)} {size:.2f}× (≤ {size_target:.2f}×)", speed_cell,
                 f"{mark(increase <= limits.max_ppl_increase)} {increase:+.2%} (≤ +{limits.max_ppl_increase:.1%})",
                 f"{mark((top1 or math.nan) >= limits.min_top1)} {top1 or math.nan:.4f} (≥ {limits.min_top1:g})",
                 f"{mark(lost == 0)} {lost}"]
        lines.append(f"| {row['row']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else "- no quantised file was measured"


def against_previous(rows, previous):
    """A Markdown table of each exported file's size, p50 and perplexity change against a previous report
    (report.json) of the same rows. The previous figures come from another run, so p50 compares loosely."""
    if not previous:
        return ""
    old_rows = {tuple(r["key"]): r for r in previous.get("rows", []) if r.get("key")}
    old_keras = previous.get("keras_perplexity", {})
    lines = ["| file · runtime | size KB before → now | p50 µs before → now | perplexity vs Keras before → now |",
             "|---|---|---|---|"]
    for row in rows:
        old = old_rows.get(tuple(row["key"]))
        if row["key"][1] != "file" or not old or not old.get("p50_us") or not row.get("p50_us"):
            continue
        before = _old_increase(old, old_keras.get(row["key"][0]))
        lines.append(f"| {row['row']} | {old['size_kb']:.0f} → {row['size_kb']:.0f} | {old['p50_us']:.0f} → "
                     f"{row['p50_us']:.0f} | {before:+.2%} → {row.get('perplexity_increase', math.nan):+.2%} |")
    return "\n".join(lines)


def _old_increase(old, keras_perplexity):
    if old.get("perplexity_increase") is not None:
        return old["perplexity_increase"]
    if old.get("perplexity_change") is not None and keras_perplexity:
        return old["perplexity_change"] / keras_perplexity
    return math.nan


# Step files (docs/ARCHITECTURE.md, "Step files"): greedy chars/s of the fp32 step file against the fp32
# windowed file of the same runtime, generating side by side in one process, at least this many times.
STEP_SPEEDUP = {"onnxruntime": 4.0, "litert": 6.0}
# The generation loop's own cost per character (everything but the model call), in µs, and sampled
# generation at carol-generate's defaults against greedy generation of the same file.
LOOP_OVERHEAD_US = {"greedy": 5.0, "sampled": 10.0}
SAMPLED_SHARE = 0.85


def step_targets(generation, loop):
    """The step files' speed contracts and the generation loop's, as Markdown lines."""
    lines = []
    for pair in generation:
        (window, step), runtime = pair["files"], pair["runtime"]
        greedy, sampled = pair["greedy_chars_per_s"], pair["sampled_chars_per_s"]
        ratio, target = greedy[1] / greedy[0], STEP_SPEEDUP.get(runtime)
        verdict = f"{mark(ratio >= target)} " if target else ""
        goal = f"target ≥ {target:g}×" if target else "no target for this runtime"
        lines.append(f"- {verdict}{step} on {runtime}: **{greedy[1]:,.0f} chars/s** greedy vs {greedy[0]:,.0f} for "
                     f"{window}: **{ratio:.1f}×** ({goal})")
        for name, fast, slow in zip(pair["files"], greedy, sampled, strict=True):
            lines.append(f"- {mark(slow / fast >= SAMPLED_SHARE)} {name} on {runtime}, sampled at carol-generate's "
                         f"defaults: {slow:,.0f} chars/s, **{slow / fast:.2f}×** its greedy speed "
                         f"(target ≥ {SAMPLED_SHARE}×)")
    for graph, settings in loop.items():
        for setting, micros in settings.items():
            limit = LOOP_OVERHEAD_US[setting]
            lines.append(f"- {mark(micros <= limit)} the generation loop's own cost, {graph} session, {setting}: "
                         f"**{micros:.1f} µs** per character (target ≤ {limit:g} µs)")
    return "\n".join(lines) or "- not measured"


def step_table(rows, export_rows):
    """A Markdown table: each step file on each runtime against the windowed file of the same mode, format and
    runtime; its exact comparison with the Keras step model and its drift from the windowed Keras model (the
    export gate's figures)."""
    gate = {r["file"]: r.get("parity") or {} for r in export_rows}
    lines = ["| step file · runtime | size vs windowed | p50 per call vs windowed | vs Keras step: max abs dp, "
             "top-1 | drift vs windowed Keras: perplexity, top-1, mean KL |", "|---|---|---|---|---|"]
    for row in rows:
        checkpoint, kind, fmt, mode_name, runtime = row["key"]
        if kind != "step" or not row.get("p50_us"):
            continue
        window = _find(rows, (checkpoint, "file", fmt, mode_name, runtime))
        parity = gate.get(row["row"].split(" · ")[0], {})
        drift = parity.get("drift") or {}
        exact = (f"{parity['max_abs_dp']:.1e}, {parity['top1']:.4f}" if parity.get("max_abs_dp") is not None
                 else "–")
        drifted = (f"{drift['perplexity_increase']:+.2%}, {drift['top1']:.3f}, {drift['mean_kl']:.1e}"
                   if drift.get("top1") is not None else "–")
        lines.append(f"| {row['row']} | {_ratio(row, window, 'size_kb'):.2f}× | {_ratio(row, window, 'p50_us'):.2f}× "
                     f"({row['p50_us']:.1f} µs) | {exact} | {drifted} |")
    return "\n".join(lines) if len(lines) > 2 else "- no step file was measured"
