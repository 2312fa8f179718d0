"""carol-pi-check: prove the runtime and every exported file on an emulated Raspberry Pi (aarch64).

Every file carol-export makes from the bundled checkpoint runs on each runtime installed in the emulated Pi
(benchmarks/emulator.py), on a Pi 4 core (cortex-a72) and a Pi 5 core (cortex-a76), each case in its own
process with a timeout (benchmarks/runner.py); its probabilities and greedy text are compared with the same
file on this x86-64 host. Emulated timings say nothing about a real Pi and are not reported.
"""
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import carolgen
from carolgen.runtime.backends import BACKENDS
from carolgen.runtime.compat import REFUSALS
from carolgen.runtime.errors import CarolError

from . import emulator
from .pi_report import write_matrix
from .runner import host_command, run_probe

CPUS = {"cortex-a72": "Raspberry Pi 4", "cortex-a76": "Raspberry Pi 5"}
CASE_TIMEOUT_S = 300
GREEDY_CHARS = 100
# The CI set: one windowed file per runtime and one step file, as (format, mode, runtime, graph).
REDUCED = {("tflite", "fp32", "litert", "window"), ("tflite", "dynamic-compat", "tflite-runtime", "window"),
           ("tflite", "int8", "tflite-runtime", "window"), ("onnx", "fp32", "onnxruntime", "window"),
           ("tflite", "fp32", "litert", "step")}
# (Only the main checkpoint's files: the reduced set proves the runtimes, not every model.)


@dataclass(frozen=True)
class Case:
    file: str
    checkpoint: str  # a key of CHECKPOINTS: which windows (input encoding) the file takes
    format: str
    mode: str
    runtime: str
    kernels: str = "auto"  # auto: what carolgen's runtime chooses; optimised: forced, to record a known crash
    claim: str = ""  # what carol-export's table says about this runtime loading the file on aarch64
    graph: str = "window"  # window | step (export/graphs.py)


# The export table's runtimes column (export/audit.py) entry that speaks for each backend on the emulated Pi.
AUDIT_CLAIM = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime 2.14 aarch64",
               "onnxruntime": "onnxruntime"}


def failing(result):
    """A case (on the kernels carolgen chooses) fails when it differs from x86-64, crashes, or is refused
    although carol-export's table says this runtime loads the file: the table must say what the matrix finds."""
    if result["kernels"] != "auto":  # forced kernels: a finding on record, not a path carolgen takes
        return False
    refused_against_claim = result["status"] == "refused" and result["claim"].startswith("yes")
    return result["status"] in ("mismatch", "crash") or refused_against_claim


# The checkpoints whose files the check runs, with the modes exported from each: every mode of the bundled
# model, and the fp32 files of the bundled seed-architecture model (the baseline every report keeps); each
# as windowed and step files.
CHECKPOINTS = {"model": (carolgen.DEFAULT_CHECKPOINT, None), "seed": (carolgen.SEED_CHECKPOINT, ("fp32",))}


def exported_files(cache, reduced=False):
    """Every file carol-export makes from the checkpoints (on this host), or only the reduced set's, reused
    while they are unchanged; each row carries the stem of the checkpoint it came from."""
    from carolgen.checkpoint import file_sha256
    from carolgen.export import EXPORT_FORMATS, MODES, export
    from carolgen.export.graphs import GRAPHS
    checkpoints = {"model": CHECKPOINTS["model"]} if reduced else CHECKPOINTS

    def build(folder):
        rows = []
        for stem, (checkpoint, modes) in checkpoints.items():
            for fmt in EXPORT_FORMATS:
                for graph in GRAPHS:
                    wanted = [m for m in modes or MODES if not reduced or any(
                        (fmt, m, graph) == (f, mode, g) for f, mode, _, g in REDUCED)]
                    made = export(checkpoint, [fmt], wanted, out=folder, graphs=[graph]) if wanted else []
                    rows += [{**r.to_dict(), "checkpoint": stem} for r in made]
        (folder / "rows.json").write_text(json.dumps(rows))
    # Keyed by the checkpoints and by carolgen's sources: a changed exporter makes new files.
    digest = "-".join([file_sha256(path)[:8] for path, _ in checkpoints.values()]
                      + [emulator.source_digest(emulator.source_tree())])
    final = emulator.cached_folder(cache, f"files-{'reduced-' if reduced else ''}{digest}", build)
    return final, json.loads((final / "rows.json").read_text())


def cases(rows, runtimes, reduced):
    """Every accepted file on every runtime of its format that the emulated Pi has. Where a backend's row
    says it refuses a mode on aarch64, the cases with its optimised and reference kernels forced run too, so
    that what the refusal avoids stays on record."""
    planned = []
    for row in (r for r in rows if r["status"] == "accepted"):
        for backend in (b for b in BACKENDS.values() if row["format"] in b.formats and b.name in runtimes):
            case = Case(row["file"], row["checkpoint"], row["format"], row["mode"], backend.name,
                        claim=row["runtimes"].get(AUDIT_CLAIM.get(backend.name, ""), ""),
                        graph=row.get("graph", "window"))
            planned.append(case)
            if (backend.name, "aarch64", row["mode"], case.graph) in REFUSALS:  # both kernels on record
                planned += [replace(case, kernels="optimised"), replace(case, kernels="reference")]
    if reduced:
        planned = [c for c in planned if (c.format, c.mode, c.runtime, c.graph) in REDUCED and c.kernels == "auto"
                   and c.checkpoint == "model"]
    return planned


def probe_request(files, case, windows):
    """`windows`: {checkpoint stem: .npy of held-out windows in that checkpoint's input encoding}."""
    return {"model": str(files / case.file), "backend": case.runtime, "kernels": case.kernels,
            "windows": str(windows[case.checkpoint]), "primes": [""], "greedy_chars": GREEDY_CHARS}


def host_reference(files, case, kernels, windows, workdir, tflite_python):
    """The same file on this x86-64 host with the same kind of kernels: on tflite-runtime 2.14 when the case
    runs on it (the same interpreter release), else on the format's gate backend."""
    from carolgen.export.formats import EXPORT_FORMATS
    if case.runtime == "tflite-runtime":
        runtime, (command, env) = case.runtime, host_command(tflite_python, workdir)
    else:
        runtime, (command, env) = EXPORT_FORMATS[case.format].gate_backend, host_command()
    host_case = replace(case, runtime=runtime, kernels=kernels or "auto")
    outcome = run_probe(command, probe_request(files, host_case, windows), workdir, env=env)
    if outcome.status != "ok":
        raise CarolError(f"{case.file} does not run on this host with {runtime}: {outcome.note}")
    return {"probs": outcome.probs, "greedy": outcome.result["greedy"][0], "against": f"x86-64 {runtime}"}


def verdict(case, outcome, host):
    from carolgen.export.modes import MODES
    from carolgen.export.parity import common_prefix
    entry = asdict(case)
    if outcome.status != "ok":
        return {**entry, "status": "crash" if outcome.status in ("crashed", "hung") else "refused",
                "note": outcome.note}
    tolerance = MODES[case.mode].pi_tolerance
    max_dp = float(np.abs(outcome.probs - host["probs"]).max())
    greedy = common_prefix(outcome.result["greedy"][0], host["greedy"])
    exact = case.mode in ("fp32", "fp16")  # float files must give the same greedy text as well
    ok = max_dp <= tolerance and (greedy == len(host["greedy"]) or not exact)
    return {**entry, "status": "ok" if ok else "mismatch", "max_abs_dp": max_dp, "greedy": greedy,
            "against": host["against"], "kernels_used": outcome.result.get("kernels", ""),
            "note": "" if ok else f"tolerance {tolerance:g}"}


def check(out, cache, reduced=False, cpus=tuple(CPUS), tflite_python=None, log=print):
    """Build (or reuse) the emulated Pi, run every case, write PI.md and pi.json; returns the results."""
    from carolgen.export.windows import parity_set
    from carolgen.runtime.modelfile import read_model_file
    pythons = emulator.emulated_pythons(cache, log)
    tflite_python = tflite_python or emulator.host_tflite_python(cache)
    log("exporting the files to check" + (" (the reduced set)" if reduced else ""))
    files, rows = exported_files(cache, reduced)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        windows = {stem: Path(workdir) / f"windows-{stem}.npy" for stem in CHECKPOINTS}
        for stem, (checkpoint, _) in CHECKPOINTS.items():
            np.save(windows[stem], parity_set(read_model_file(checkpoint).info, count=20)[0])
        hosts = {}
        for case in cases(rows, set(pythons), reduced):
            python = pythons[case.runtime]
            for cpu in cpus:
                outcome = run_probe(python.command(), probe_request(files, case, windows), workdir,
                                    env=python.env(cpu), timeout=CASE_TIMEOUT_S)
                host = None
                if outcome.status == "ok":
                    key = (case.file, case.runtime, outcome.result.get("kernels", ""))
                    if key not in hosts:
                        hosts[key] = host_reference(files, case, key[2], windows, workdir, tflite_python)
                    host = hosts[key]
                results.append({**verdict(case, outcome, host), "cpu": cpu})
                log(f"  {cpu} {case.file} on {case.runtime} ({case.kernels} kernels): {results[-1]['status']}")
    facts = environment_facts(pythons, reduced, cpus)
    write_matrix(out, results, facts, CASE_TIMEOUT_S, GREEDY_CHARS)
    return results


def environment_facts(pythons, reduced, cpus):
    python = next(iter(pythons.values()))
    version = emulator.run([python.qemu, "--version"], "qemu --version").stdout.splitlines()[0]
    packages = sorted({p.name.removesuffix(".dist-info") for python in set(pythons.values())
                       for p in python.site.glob("*.dist-info")})
    python_version = emulator.run(python.command("-c", "import platform; print(platform.python_version())"),
                                  "asking the emulated Python its version", env=python.env("cortex-a72")).stdout.strip()
    return {"qemu": version, "userland": f"Debian bookworm arm64 (Raspberry Pi OS Bookworm's base), "
                                         f"Python {python_version}",
            "packages": packages, "host": os.uname().machine, "reduced": reduced,
            "cpus": {cpu: CPUS[cpu] for cpu in cpus}, "date": datetime.now(UTC).isoformat(timespec="seconds")}


def main(argv=None):
    from carolgen.runtime.cli_common import ArgumentParser, run_command
    parser = ArgumentParser(prog="carol-pi-check", description=__doc__.split("\n\n")[0],
                            epilog="examples:\n  carol-pi-check --reduced --cpu cortex-a72\n"
                                   "  carol-pi-check --out benchmarks/results      # regenerate the committed matrix")
    parser.add_argument("--out", default="pi-results", help="folder for PI.md and pi.json (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=emulator.default_cache(),
                        help="userland, wheels and files cache (default: %(default)s)")
    parser.add_argument("--clean-cache", action="store_true", help="delete the cache folder and stop")
    parser.add_argument("--reduced", action="store_true", help="one file per runtime (the CI set)")
    parser.add_argument("--cpu", action="append", choices=list(CPUS), help="emulated core(s) (default: both)")
    parser.add_argument("--python-tflite-runtime", metavar="PATH",
                        help="a host Python with tflite-runtime 2.14 (numpy<2) to compare its cases with "
                             "(default: a venv the check makes in its cache)")
    args = parser.parse_args(argv)

    def log(message):
        print(f"carol-pi-check: {message}", file=sys.stderr, flush=True)

    def body():
        if args.clean_cache:
            size = emulator.cache_size_mb(args.cache) if args.cache.is_dir() else 0
            shutil.rmtree(args.cache, ignore_errors=True)
            print(f"removed {args.cache} ({size:.0f} MB)")
            return 0
        results = check(Path(args.out), args.cache, args.reduced, tuple(args.cpu or CPUS), args.python_tflite_runtime,
                        log=log)
        bad = [r for r in results if failing(r)]
        log(f"cache {args.cache}: {emulator.cache_size_mb(args.cache):.0f} MB (carol-pi-check --clean-cache frees it)")
        print(f"wrote {args.out}/PI.md: {len(results)} cases, {len(bad)} failing")
        return 1 if bad else 0
    return run_command(body)
