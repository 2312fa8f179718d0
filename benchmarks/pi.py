"""carol-pi-check: prove the runtime and every exported file on emulated Raspberry Pis.

Every file carol-export makes from the bundled checkpoint runs on each runtime installed in each emulated
Pi (benchmarks/emulator.py, TARGETS): 64-bit Pi OS on a Pi 4 core (cortex-a72) and a Pi 5 core
(cortex-a76), 32-bit Pi OS on an ARMv7 core (cortex-a7), and a Pi Zero's ARMv6 core (arm1176). Each case
runs in its own process with a timeout (benchmarks/runner.py); its probabilities and greedy text are
compared with the same file on the same runtime on this x86-64 host. Emulated timings say nothing about a
real Pi and are not reported.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import carolgen
from carolgen.runtime.backends import BACKENDS
from carolgen.runtime.compat import MACHINE_REFUSALS, refusal
from carolgen.runtime.errors import CarolError

from . import emulator
from .pi_report import write_matrix
from .runner import host_command, run_probe

# Every emulated core: QEMU_CPU -> (target, the Pi it stands for).
CPUS = {cpu: (target.name, pi) for target in emulator.TARGETS.values() for cpu, pi in target.cpus.items()}
CASE_TIMEOUT_S = 300
GREEDY_CHARS = 100
# The numpy backend computes in float on every machine, from the same dequantised weights: any file, in
# any mode, gives x86-64's probabilities to float32 rounding and the same greedy text.
NUMPY_TOLERANCE = 1e-5
# The CI set: ai-edge-litert and onnxruntime on 64-bit Pi OS (windowed and step), tflite-runtime on 32-bit Pi OS
# (the fp32 file, and the windowed int8 file it refuses), the numpy backend on a Pi Zero's core:
# (target, format, mode, runtime, graph). Only the environments these need are built.
REDUCED = {
    ("aarch64", "tflite", "fp32", "litert", "window"), ("aarch64", "onnx", "fp32", "onnxruntime", "window"),
    ("aarch64", "tflite", "fp32", "litert", "step"), ("armv7", "tflite", "fp32", "tflite-runtime", "window"),
    ("armv7", "tflite", "int8", "tflite-runtime", "window"), ("armv6", "tflite", "fp32", "numpy", "step")}
# (Only the main checkpoint's files: the reduced set proves the runtimes, not every model.)


@dataclass(frozen=True)
class Case:
    file: str
    checkpoint: str  # a key of CHECKPOINTS: which windows (input encoding) the file takes
    format: str
    mode: str
    runtime: str
    kernels: str = "auto"  # auto: what carolgen's runtime chooses; optimised: forced, to record a known crash
    claim: str = ""  # what carol-export's table says about this runtime loading the file on this target
    graph: str = "window"  # window | step (export/graphs.py)
    target: str = "aarch64"  # a key of emulator.TARGETS


def claim(row, runtime, machine):
    """What carol-export's runtimes column (export/audit.py) says of `runtime` loading the file on `machine`;
    the numpy backend runs every file carol-export makes, everywhere."""
    if runtime == "numpy":
        return "yes: the numpy backend runs every carolgen file"
    column = {"litert": "ai-edge-litert", "onnxruntime": "onnxruntime",
              "tflite-runtime": f"tflite-runtime 2.14 {machine}"}[runtime]
    return row["runtimes"].get(column, "")


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
                        (fmt, m, graph) == (f, mode, g) for _, f, mode, _, g in REDUCED)]
                    made = export(checkpoint, [fmt], wanted, out=folder, graphs=[graph]) if wanted else []
                    rows += [{**r.to_dict(), "checkpoint": stem} for r in made]
        (folder / "rows.json").write_text(json.dumps(rows))
    # Keyed by the checkpoints and by carolgen's sources: a changed exporter makes new files.
    digest = "-".join([file_sha256(path)[:8] for path, _ in checkpoints.values()]
                      + [emulator.source_digest(emulator.source_tree())])
    final = emulator.cached_folder(cache, f"files-{'reduced-' if reduced else ''}{digest}", build)
    return final, json.loads((final / "rows.json").read_text())


def cases(rows, pythons, reduced, targets):
    """Every accepted file on every runtime of its format that each emulated Pi has. Where carolgen refuses a
    runtime a file on a target (runtime/compat.py), the cases with its kernels forced run too, so that what
    the refusal avoids stays on record (both kernels where the runtime loads there, the optimised ones where
    it does not even install)."""
    planned = []
    for target in (emulator.TARGETS[name] for name in targets):
        runtimes = {runtime for target_name, runtime in pythons if target_name == target.name}
        for row in (r for r in rows if r["status"] == "accepted"):
            for backend in (b for b in BACKENDS.values() if row["format"] in b.formats and b.name in runtimes):
                graph = row.get("graph", "window")
                case = Case(row["file"], row["checkpoint"], row["format"], row["mode"], backend.name,
                            claim=claim(row, backend.name, target.machine), graph=graph, target=target.name)
                planned.append(case)
                if refusal(backend.name, target.machine, row["mode"], graph):
                    forced = ["optimised"] if (backend.name, target.machine) in MACHINE_REFUSALS else [
                        "optimised", "reference"]
                    planned += [replace(case, kernels=kernels) for kernels in forced]
    if reduced:
        planned = [c for c in planned if (c.target, c.format, c.mode, c.runtime, c.graph) in REDUCED
                   and c.kernels == "auto" and c.checkpoint == "model"]
    return planned


def probe_request(files, case, windows):
    """`windows`: {checkpoint stem: .npy of held-out windows in that checkpoint's input encoding}."""
    return {"model": str(files / case.file), "backend": case.runtime, "kernels": case.kernels,
            "windows": str(windows[case.checkpoint]), "primes": [""], "greedy_chars": GREEDY_CHARS}


def host_reference(files, case, kernels, windows, workdir, tflite_python):
    """The same file on this x86-64 host on the same runtime with the same kind of kernels (tflite-runtime
    2.14 in a Python of its own, numpy < 2)."""
    command, env = host_command(tflite_python, workdir) if case.runtime == "tflite-runtime" else host_command()
    host_case = replace(case, kernels=kernels or "auto")
    outcome = run_probe(command, probe_request(files, host_case, windows), workdir, env=env)
    if outcome.status != "ok":
        raise CarolError(f"{case.file} does not run on this host with {case.runtime}: {outcome.note}")
    return {"probs": outcome.probs, "greedy": outcome.result["greedy"][0], "against": f"x86-64 {case.runtime}"}


def verdict(case, outcome, host):
    from carolgen.export.modes import MODES
    from carolgen.export.parity import common_prefix
    entry = asdict(case)
    if outcome.status != "ok":
        return {**entry, "status": "crash" if outcome.status in ("crashed", "hung") else "refused",
                "note": outcome.note}
    tolerance = NUMPY_TOLERANCE if case.runtime == "numpy" else MODES[case.mode].pi_tolerance
    max_dp = float(np.abs(outcome.probs - host["probs"]).max())
    greedy = common_prefix(outcome.result["greedy"][0], host["greedy"])
    # float arithmetic must give the same greedy text as well
    exact = case.mode in ("fp32", "fp16") or case.runtime == "numpy"
    ok = max_dp <= tolerance and (greedy == len(host["greedy"]) or not exact)
    return {**entry, "status": "ok" if ok else "mismatch", "max_abs_dp": max_dp, "greedy": greedy,
            "against": host["against"], "kernels_used": outcome.result.get("kernels", ""),
            "note": "" if ok else f"tolerance {tolerance:g}"}


def check(out, cache, reduced=False, cpus=tuple(CPUS), tflite_python=None, log=print):
    """Build (or reuse) the emulated Pis, run every case, write PI.md and pi.json; returns the results."""
    from carolgen.export.windows import parity_set
    from carolgen.runtime.modelfile import read_model_file
    targets = tuple(dict.fromkeys(CPUS[cpu][0] for cpu in cpus))
    wanted = {(target, runtime) for target, _, _, runtime, _ in REDUCED} if reduced else None
    pythons = emulator.emulated_pythons(cache, log, targets, wanted)
    tflite_python = tflite_python or emulator.host_tflite_python(cache)
    log("exporting the files to check" + (" (the reduced set)" if reduced else ""))
    files, rows = exported_files(cache, reduced)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        windows = {stem: Path(workdir) / f"windows-{stem}.npy" for stem in CHECKPOINTS}
        for stem, (checkpoint, _) in CHECKPOINTS.items():
            np.save(windows[stem], parity_set(read_model_file(checkpoint).info, count=20)[0])
        hosts = {}
        for case in cases(rows, pythons, reduced, targets):
            python = pythons[(case.target, case.runtime)]
            for cpu in (c for c in cpus if CPUS[c][0] == case.target):
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
    facts = environment_facts(pythons, reduced, cpus, targets, cache)
    write_matrix(out, results, facts, CASE_TIMEOUT_S, GREEDY_CHARS, NUMPY_TOLERANCE)
    return results


def environment_facts(pythons, reduced, cpus, targets, cache):
    """What the matrix ran on: qemu, and per target its userland, Python and numpy, its environments'
    install commands and packages, and what its pip says of a wheel the environment had to unzip."""
    any_python = next(iter(pythons.values()))
    version = emulator.run([any_python.qemu, "--version"], "qemu --version").stdout.splitlines()[0]
    version = "qemu-user " + version.split(" ", 1)[1]  # the same release for every target's binary
    return {"qemu": version, "host": os.uname().machine, "reduced": reduced,
            "cpus": {cpu: list(CPUS[cpu]) for cpu in cpus}, "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "targets": {name: target_facts(emulator.TARGETS[name], pythons, cache) for name in targets}}


def target_facts(target, pythons, cache):
    cpu = next(iter(target.cpus))
    environments = {}
    for environment in target.environments:
        python = pythons.get((target.name, environment.runtimes[0]))
        if python is None:  # not built for this run (the reduced set builds what it needs)
            continue
        asked = python.command("-c", "import platform, numpy; print(platform.python_version(), numpy.__version__)")
        python_version, numpy_version = emulator.run(asked, "asking the emulated Python its versions",
                                                     env=python.env(cpu)).stdout.split()
        environments[environment.name] = {
            "runtimes": list(environment.runtimes), "python": python_version, "numpy": numpy_version,
            "pip": " ".join(emulator.pip_install_command(environment)),
            "packages": sorted(p.name.removesuffix(".dist-info") for p in python.site.glob("*.dist-info")),
            "unzipped": {name: pip_says(python, cpu, name, emulator.download_wheels(cache, target, environment))
                         for name in environment.unzipped}}
    return {"machine": target.machine, "userland": f"Debian bookworm {target.debian_arch}",
            "apt": " ".join(target.packages), "environments": environments}


def pip_says(python, cpu, package, wheels):
    """The last line of what the emulated pip says when asked to install `package` from the wheels the
    environment downloaded (a dry run: it installs nothing)."""
    with tempfile.TemporaryDirectory() as target:  # --target: the userland's own Python is externally managed
        done = subprocess.run(python.command("-m", "pip", "install", "--isolated", "--no-index", "--dry-run",
                                             "--target", target, "--find-links", str(wheels),
                                             package.replace("_", "-")),
                              capture_output=True, text=True, env=python.env(cpu))
    return (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or [""])[-1][:200]


def main(argv=None):
    from carolgen.runtime.cli_common import ArgumentParser, run_command
    parser = ArgumentParser(prog="carol-pi-check", description=__doc__.split("\n\n")[0],
                            epilog="examples:\n  carol-pi-check --reduced --cpu cortex-a72 --cpu cortex-a7 "
                                   "--cpu arm1176\n"
                                   "  carol-pi-check --out benchmarks/results      # regenerate the committed matrix")
    parser.add_argument("--out", default="pi-results", help="folder for PI.md and pi.json (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=emulator.default_cache(),
                        help="userland, wheels and files cache (default: %(default)s)")
    parser.add_argument("--clean-cache", action="store_true", help="delete the cache folder and stop")
    parser.add_argument("--reduced", action="store_true", help="a few files per target (the CI set)")
    parser.add_argument("--cpu", action="append", choices=list(CPUS),
                        help="emulated core(s), each selecting its target (default: all): "
                             + ", ".join(f"{cpu} = {pi}" for cpu, (_, pi) in CPUS.items()))
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
