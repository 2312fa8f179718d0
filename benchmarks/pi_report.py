"""carol-pi-check's outputs: pi.json and the PI.md matrix, written atomically."""
import json

from carolgen.runtime.atomic import write_text_atomic

MARK = {"ok": "✅", "mismatch": "⚠️", "refused": "❎", "crash": "💥"}


def cell(result, greedy_chars):
    if result["status"] in ("ok", "mismatch"):
        limit = f" > {result['note']}" if result["status"] == "mismatch" else ""
        return (f"{MARK[result['status']]} max abs dp {result['max_abs_dp']:.1e}{limit} vs {result['against']}, "
                f"greedy {result['greedy']}/{greedy_chars}")
    return f"{MARK[result['status']]} {result['note']}"


def matrix_lines(results, cpus, greedy_chars):
    keys = list(dict.fromkeys((r["file"], r["runtime"], r["kernels"]) for r in results))
    lines = ["| file | runtime | kernels | " + " | ".join(f"{c} ({name})" for c, name in cpus.items()) + " |",
             "|" + "---|" * (3 + len(cpus))]
    for key in keys:
        cells = [cell(next(r for r in results if (r["file"], r["runtime"], r["kernels"]) == key and r["cpu"] == c),
                      greedy_chars) for c in cpus]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return lines


def write_matrix(out, results, facts, timeout_s, greedy_chars):
    from carolgen.export.modes import MODES
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "pi.json", json.dumps({"facts": facts, "reduced": facts["reduced"], "results": results},
                                                  indent=2))
    cpus = facts["cpus"]
    cores = " and ".join(f"a {name} core ({cpu})" for cpu, name in cpus.items())
    tolerances = ", ".join(f"{mode.name} {mode.pi_tolerance:g}" for mode in MODES.values())
    scope = (f"the reduced set ({len(results)} cases: one file per runtime)" if facts["reduced"]
             else f"every accepted file of the bundled model, and the bundled seed-architecture model's fp32 files, "
                  f"on every runtime ({len(results)} cases)")
    title = "Raspberry Pi (aarch64) compatibility matrix" + (" (reduced set)" if facts["reduced"] else "")
    write_text_atomic(out / "PI.md", f"""# {title}

Emulated, not a Pi: {facts['qemu']} running a {facts['userland']} userland on this {facts['host']} host,
{facts['date']}. Installed from PyPI's aarch64 wheels: {', '.join(facts['packages'])}.

This run covers {scope}, on {cores}. Each case ran in its own emulated process (timeout {timeout_s} s). It
passes when its next-character probabilities for 20 held-out windows match the same file on x86-64 (the
column names the interpreter, using the same kind of kernels) within the mode's tolerance ({tolerances})
and, for fp32 and fp16, its {greedy_chars}-character greedy text is the same. Quantised files may round an
int8 step differently on Arm's kernels; their greedy agreement is shown, not required. `kernels`: `auto` is
what carolgen's runtime chooses; `optimised` forces tflite-runtime's optimised kernels, to keep the crash
the runtime avoids on record. Emulated speed is 20-90x below native and says nothing about a Pi, so no
timings are reported.

{chr(10).join(matrix_lines(results, cpus, greedy_chars))}

Legend: ✅ matches x86-64 · ⚠️ runs but differs beyond tolerance · ❎ refuses to load (a clean error; a failure
where carol-export's table says the runtime loads the file) · 💥 the interpreter crashed or hung (a finding;
carolgen's runtime must never take this path).
""")
