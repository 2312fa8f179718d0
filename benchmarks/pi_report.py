"""carol-pi-check's outputs: pi.json and the PI.md matrix (file x runtime x emulated core), written atomically."""
import json

from carolgen.runtime.atomic import write_text_atomic

MARK = {"ok": "✅", "mismatch": "⚠️", "refused": "❎", "crash": "💥"}
NOT_THERE = "– (no such runtime there)"


def cell(result, greedy_chars):
    if result is None:
        return NOT_THERE
    if result["status"] in ("ok", "mismatch"):
        limit = f" > {result['note']}" if result["status"] == "mismatch" else ""
        return (f"{MARK[result['status']]} max abs dp {result['max_abs_dp']:.1e}{limit} vs {result['against']}, "
                f"greedy {result['greedy']}/{greedy_chars}")
    return f"{MARK[result['status']]} {result['note']}"


def matrix_lines(results, cpus, greedy_chars):
    keys = list(dict.fromkeys((r["file"], r["runtime"], r["kernels"]) for r in results))
    found = {(r["file"], r["runtime"], r["kernels"], r["cpu"]): r for r in results}
    lines = ["| file | runtime | kernels | " + " | ".join(f"{cpu} ({pi})" for cpu, (_, pi) in cpus.items()) + " |",
             "|" + "---|" * (3 + len(cpus))]
    for key in keys:
        cells = [cell(found.get((*key, cpu)), greedy_chars) for cpu in cpus]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return lines


def target_lines(targets, cpus):
    """One paragraph per target: its userland and what was installed there, by which commands."""
    lines = []
    for name, target in targets.items():
        cores = ", ".join(f"{cpu} ({pi})" for cpu, (target_name, pi) in cpus.items() if target_name == name)
        lines.append(f"- **{name}** ({target['machine']}; {cores}): {target['userland']} with "
                     f"`apt install {target['apt']}` (unpacked from the .debs)")
        for env_name, env in target["environments"].items():
            lines.append(f"  - `{env_name}` (Python {env['python']}, numpy {env['numpy']}): `{env['pip']}` -> "
                         f"{', '.join(env['packages'])}; runtimes {', '.join(env['runtimes'])}")
            for package, said in env["unzipped"].items():
                lines.append(f"  - `pip install {package.replace('_', '-')}` there says: \"{said}\"; its wheel was "
                             "unzipped onto the path anyway, to record what it does (the forced cases)")
    return lines


def write_matrix(out, results, facts, timeout_s, greedy_chars, numpy_tolerance):
    from carolgen.export.modes import MODES
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "pi.json", json.dumps({"facts": facts, "reduced": facts["reduced"], "results": results},
                                                  indent=2))
    cpus = facts["cpus"]
    tolerances = ", ".join(f"{mode.name} {mode.pi_tolerance:g}" for mode in MODES.values())
    scope = (f"the reduced set ({len(results)} cases: a few files per target)" if facts["reduced"]
             else f"every accepted file of the bundled model, and the bundled seed-architecture model's fp32 files, "
                  f"on every runtime each target has ({len(results)} cases)")
    title = "Raspberry Pi compatibility matrix" + (" (reduced set)" if facts["reduced"] else "")
    write_text_atomic(out / "PI.md", f"""# {title}

Emulated, not a Pi: {facts['qemu']} on this {facts['host']} host, {facts['date']}. The targets, their
userlands and what their emulated pip installed (offline, from PyPI's wheels for that machine and carolgen's
own wheel; numpy on 32-bit Arm from Debian's python3-numpy, as pip has no armv7l numpy wheels):

{chr(10).join(target_lines(facts['targets'], cpus))}

This run covers {scope}. Each case ran in its own emulated process (timeout {timeout_s} s). It passes when
its next-character probabilities for 20 held-out windows match the same file on the same runtime on x86-64
(the cell names it; the same kind of kernels) within the mode's tolerance ({tolerances}; the numpy backend,
float arithmetic on every machine, {numpy_tolerance:g} in every mode) and, for fp32 and fp16 files and the
numpy backend, its {greedy_chars}-character greedy text is the same. Quantised files may round an int8 step
differently on Arm's kernels; their greedy agreement is shown, not required. `kernels`: `auto` is what
carolgen's runtime chooses; `optimised` and `reference` force tflite-runtime's kernels where carolgen refuses
the file there, to keep what the refusal avoids on record. Emulated speed is 20-90x below native and says
nothing about a Pi, so no timings are reported.

{chr(10).join(matrix_lines(results, cpus, greedy_chars))}

Legend: ✅ matches x86-64 · ⚠️ runs but differs beyond tolerance · ❎ refuses to load (a clean error; a failure
where carol-export's table says the runtime loads the file) · 💥 the interpreter crashed or hung (a finding;
carolgen's runtime must never take this path) · – the target has no such runtime (no wheel for it).
""")
