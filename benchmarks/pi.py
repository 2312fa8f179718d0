"""carol-pi-check: prove the runtime and every exported file on an emulated Raspberry Pi (aarch64).

A Raspberry Pi OS Bookworm userland (Debian bookworm arm64: Python 3.11) is unpacked into a cache folder and
run under qemu-user, with the runtime's real aarch64 wheels from PyPI in two environments: numpy 2 with
ai-edge-litert and onnxruntime, and numpy < 2 with tflite-runtime 2.14. Every file carol-export makes
from the bundled checkpoint runs on each runtime, on a Pi 4 core (cortex-a72) and a Pi 5 core (cortex-a76),
each case in its own process with a timeout; its probabilities and greedy text are compared with the same
file on this x86-64 host. Emulated timings say nothing about a real Pi and are not reported.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import carolgen
from carolgen.runtime.errors import CarolError

SUITES = ["bookworm", "bookworm-updates"]
DEBIAN = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
PACKAGES = ["python3.11", "python3-pip", "libstdc++6"]
CPUS = {"cortex-a72": "Raspberry Pi 4", "cortex-a76": "Raspberry Pi 5"}
WHEEL_TAGS = ["manylinux2014_aarch64"] + [f"manylinux_2_{n}_aarch64" for n in range(17, 37)]
ENVIRONMENTS = {  # name -> (wheels to download, what to pip install, runtimes it serves)
    "modern": (["numpy>=2", "ai-edge-litert", "onnxruntime"], ["carolgen[litert,onnx]"], ["litert", "onnxruntime"]),
    "legacy": (["numpy<2", "tflite-runtime==2.14.0"], ["carolgen", "numpy<2", "tflite-runtime==2.14.0"],
               ["tflite-runtime"]),
}
# Largest max |dp| against the x86-64 run of the same file, per mode. Float files compute the same float
# math (other SIMD kernels); quantised files may round an int8 step differently on Arm's kernels.
# Measured worst cases: float files ~1e-7; dynamic 7.7e-3; int8 on tflite-runtime's reference kernels 3.1e-2
# (int8 rounding differences compound over the 100 unrolled steps; the file's gate against Keras is 0.25).
TOLERANCE = {"fp32": 1e-5, "fp16": 1e-5, "dynamic": 2e-2, "dynamic-compat": 2e-2, "int8": 5e-2}
CASE_TIMEOUT_S = 300
NEED_DISK_MB = 2000


def default_cache():
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "carolgen" / "pi"


def run(command, what, **kwargs):
    """Run a set-up command; failure is the user's environment, so a CarolError naming the step."""
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip().splitlines()[-1:] or [""]
        raise CarolError(f"{what} failed: {detail[0][:200]}") from None
    except FileNotFoundError as error:
        raise CarolError(f"{what} failed: {error.filename} not found") from None


def ensure_qemu():
    """qemu-aarch64-static, installed with apt-get when missing (needs root and Debian's registry)."""
    found = shutil.which("qemu-aarch64-static")
    if found:
        return found
    if os.geteuid() != 0:
        raise CarolError("qemu-user-static is not installed and installing it needs root: "
                         "sudo apt-get install qemu-user-static")
    run(["apt-get", "update", "-qq"], "apt-get update (no network to Debian's registry?)")
    run(["apt-get", "install", "-y", "-qq", "qemu-user-static"], "apt-get install qemu-user-static")
    return shutil.which("qemu-aarch64-static")


def check_disk(folder, need_mb=NEED_DISK_MB):
    folder.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < need_mb:
        raise CarolError(f"not enough disk in {folder}: {free_mb:.0f} MB free, the check needs {need_mb} MB")


def build_rootfs(cache, mirror=DEBIAN, security=SECURITY):
    """The arm64 userland, built under a temporary name and renamed when whole; reused when present."""
    final = cache / "rootfs-bookworm-arm64"
    if final.is_dir():
        return final
    if not KEYRING.is_file():
        raise CarolError(f"{KEYRING} is missing: apt-get install debian-archive-keyring")
    work = Path(tempfile.mkdtemp(prefix="rootfs.partial-", dir=cache))
    try:
        config = private_apt(work, mirror, security)
        env = {**os.environ, "APT_CONFIG": str(config)}
        run(["apt-get", "update", "-qq", "--error-on=any"], "apt-get update for arm64 (no network to Debian's registry?)", env=env)
        run(["apt-get", "install", "--download-only", "--no-install-recommends", "-y", "-qq", *PACKAGES], "downloading arm64 packages", env=env)
        root = work / "root"
        for deb in sorted((work / "cache" / "archives").glob("*.deb")):
            run(["dpkg-deb", "-x", str(deb), str(root)], f"unpacking {deb.name}")
        write_cpuinfo(root)
        os.replace(root, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def private_apt(work, mirror, security):
    """An APT configuration of its own (arm64, empty dpkg status), so the host's dpkg is never touched."""
    for sub in ("state/lists/partial", "cache/archives/partial", "etc"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "status").write_text("")
    signed = f"[arch=arm64 signed-by={KEYRING}]"
    sources = [f"deb {signed} {mirror} {suite} main" for suite in SUITES]
    sources.append(f"deb {signed} {security} bookworm-security main")
    (work / "etc" / "sources.list").write_text("\n".join(sources) + "\n")
    config = work / "apt.conf"
    config.write_text("\n".join([
        'APT::Architecture "arm64";', 'APT::Architectures { "arm64"; };',
        f'Dir::State "{work}/state";', f'Dir::State::status "{work}/status";', f'Dir::Cache "{work}/cache";',
        f'Dir::Etc::SourceList "{work}/etc/sources.list";', f'Dir::Etc::SourceParts "{work}/etc";',
        'Acquire::Languages "none";', 'Debug::NoLocking "true";', 'APT::Sandbox::User "root";', ""]))
    return config


def write_cpuinfo(root):
    """A Pi-4-style /proc/cpuinfo inside the userland. qemu passes the host's x86 one through otherwise,
    and onnxruntime's start-up CPU probe crashes reading it. Emulation only: a real Pi has its own."""
    block = ("processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
             "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n"
             "CPU revision\t: 3\n\n")
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "cpuinfo").write_text("".join(block.format(n=n) for n in range(os.cpu_count() or 1)))


def source_tree():
    root = Path(carolgen.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise CarolError("carol-pi-check builds carolgen's wheel, so it runs from a source checkout "
                         "(pip install -e .)")
    return root


def download_wheels(cache, name, requirements):
    """aarch64 wheels for one environment (and carolgen's own wheel), downloaded once."""
    final = cache / f"wheels-{name}"
    if final.is_dir():
        return final
    work = Path(tempfile.mkdtemp(prefix=f"wheels-{name}.partial-", dir=cache))
    try:
        platforms = [arg for tag in WHEEL_TAGS for arg in ("--platform", tag)]
        run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version", "3.11",
             "--implementation", "cp", *platforms, "-d", str(work), *requirements],
            f"downloading aarch64 wheels ({' '.join(requirements)}) (no network to PyPI?)")
        os.replace(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def host_tflite_python(cache):
    """A host (x86-64) venv with tflite-runtime 2.14 and numpy < 2: the reference for tflite-runtime cases.
    Only its python is used after the rename (a venv's scripts keep their old paths, python does not care)."""
    final = cache / "host-tflite-runtime"
    if not final.is_dir():
        work = Path(tempfile.mkdtemp(prefix="host-tflite-runtime.partial-", dir=cache))
        try:
            run([sys.executable, "-m", "venv", str(work)], "creating the host tflite-runtime venv")
            run([str(work / "bin" / "python"), "-m", "pip", "install", "--quiet", "numpy<2", "tflite-runtime==2.14.0"],
                "installing tflite-runtime 2.14 on the host (no network to PyPI?)")
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return str(final / "bin" / "python")


class EmulatedPython:
    """The userland's python3.11 under qemu-aarch64, with one site folder on its path."""

    def __init__(self, qemu, root, site):
        self.qemu, self.root, self.site = qemu, root, site

    def command(self, *args):
        return [self.qemu, "-L", str(self.root), str(self.root / "usr/bin/python3.11"), *args]

    def env(self, cpu):
        return {**os.environ, "QEMU_CPU": cpu, "PYTHONPATH": str(self.site), "PYTHONNOUSERSITE": "1"}


def build_carolgen_wheel(cache):
    """carolgen's own (pure Python) wheel from the source tree, in a folder named by its hash."""
    import hashlib
    with tempfile.TemporaryDirectory(dir=cache) as folder:
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", folder,
             str(source_tree())], "building carolgen's wheel")
        wheel = next(Path(folder).glob("carolgen-*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:12]
        final = cache / f"carolgen-wheel-{digest}"
        if not final.is_dir():
            final.mkdir()
            shutil.copy(wheel, final)
    return final, digest


def install_environment(qemu, root, cache, name, carolgen_wheels, digest):
    """pip install (emulated, offline from the downloaded wheels) into a site folder; reused when present."""
    downloads, specs, _ = ENVIRONMENTS[name]
    final = cache / f"site-{name}-{digest}"
    if not final.is_dir():
        wheels = download_wheels(cache, name, downloads)
        work = Path(tempfile.mkdtemp(prefix=f"site-{name}.partial-", dir=cache))
        try:
            python = EmulatedPython(qemu, root, work)
            run(python.command("-m", "pip", "install", "--isolated", "--no-index", "--quiet", "--target", str(work),
                               "--find-links", str(wheels), "--find-links", str(carolgen_wheels), *specs),
                f"installing the {name} environment (emulated pip)", env=python.env("cortex-a72"), cwd=cache)
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return EmulatedPython(qemu, root, final)


def exported_files(cache):
    """Every file carol-export makes from the bundled checkpoint (on this host), reused per checkpoint."""
    from carolgen.checkpoint import file_sha256
    final = cache / f"files-{file_sha256(carolgen.DEFAULT_CHECKPOINT)[:12]}"
    if not (final / "rows.json").is_file():
        from carolgen.export import MODES, export
        rows = export(None, ["tflite", "onnx"], MODES, out=final)
        (final / "rows.json").write_text(json.dumps([r.to_dict() for r in rows]))
    return final, json.loads((final / "rows.json").read_text())


def cases(rows, reduced):
    """(file, mode, backend, kernels) to run. tflite-runtime's int8 case also runs with its optimised
    kernels forced, to keep the crash that the runtime's automatic choice avoids on the record."""
    planned = []
    for row in rows:
        if row["status"] != "accepted":
            continue
        backends = ["onnxruntime"] if row["format"] == "onnx" else ["litert", "tflite-runtime"]
        for backend in backends:
            planned.append((row["file"], row["mode"], backend, "auto"))
            if backend == "tflite-runtime" and row["mode"] == "int8":
                planned.append((row["file"], row["mode"], backend, "optimised"))
    if reduced:
        keep = {("model-fp32.tflite", "litert"), ("model-int8.tflite", "tflite-runtime"),
                ("model-fp32.onnx", "onnxruntime")}
        planned = [c for c in planned if (c[0], c[2]) in keep and c[3] == "auto"]
    return planned


def probe(command, env, files, case, windows, out):
    """Run one case; returns (result dict or None, note). A signal or a timeout is a finding, not an error."""
    file, _, backend, kernels = case
    args = ["-m", "carolgen.bench.pi_probe", str(files / file), backend, str(windows), str(out), kernels]
    try:
        # cwd: `python -m` puts the working folder first on sys.path; a source checkout there would shadow
        # the installed carolgen with one whose runtime/ is not in place.
        done = subprocess.run(command(*args), capture_output=True, text=True, timeout=CASE_TIMEOUT_S, env=env,
                              cwd=Path(windows).parent)
    except subprocess.TimeoutExpired:
        return None, f"hung: no answer in {CASE_TIMEOUT_S} s"
    if done.returncode < 0 or done.returncode > 128:
        signal = -done.returncode if done.returncode < 0 else done.returncode - 128
        return None, f"crashed (signal {signal})"
    if done.returncode != 0:
        return None, "does not load: " + ((done.stderr.strip().splitlines() or ["?"])[-1]
                                          .replace(str(files) + "/", "")[:150])
    return json.loads(done.stdout.strip().splitlines()[-1]), ""


def verdict(case, result, note, probs, host):
    from carolgen.export.parity import common_prefix
    file, mode, backend, kernels = case
    entry = {"file": file, "mode": mode, "runtime": backend, "kernels": kernels}
    if result is None:
        return {**entry, "status": "crash" if note.startswith(("crashed", "hung")) else "refused", "note": note}
    max_dp = float(np.abs(probs - host["probs"]).max())
    greedy = common_prefix(result["greedy"], host["greedy"])
    ok = max_dp <= TOLERANCE[mode] and (greedy == len(host["greedy"]) or mode not in ("fp32", "fp16"))
    return {**entry, "status": "ok" if ok else "mismatch", "max_abs_dp": max_dp, "greedy": greedy,
            "against": host["against"],
            "kernels_used": result.get("kernels", ""), "note": "" if ok else f"tolerance {TOLERANCE[mode]:g}"}


def host_reference(files, case, kernels, windows, workdir, tflite_python=None):
    """The same file on this x86-64 host, with the same kind of TFLite kernels the emulated run used: on
    tflite-runtime 2.14 when its Python is given (the same interpreter release), else on ai-edge-litert
    (TFLite) or onnxruntime (ONNX). Returns the probabilities, the greedy text and what ran them."""
    file, mode, backend, _ = case
    python, env = sys.executable, dict(os.environ)
    if backend == "tflite-runtime" and tflite_python:
        from carolgen.bench.rows import shadow_package
        python, env["PYTHONPATH"] = tflite_python, shadow_package(Path(workdir) / "shadow")
    else:
        backend = "onnxruntime" if file.endswith(".onnx") else "litert"
    out = Path(workdir) / f"host-{file}-{backend}-{kernels}.npy"
    result, note = probe(lambda *a: [python, *a], env, files, (file, mode, backend, kernels or "auto"), windows, out)
    if result is None:
        raise CarolError(f"{file} does not run on this host with {backend}: {note}")
    return {"probs": np.load(out), "greedy": result["greedy"], "against": f"x86-64 {backend}"}


def check(out, cache, reduced=False, cpus=tuple(CPUS), tflite_python=None, log=print):
    """Build (or reuse) the emulated Pi, run every case, write PI.md and pi.json; returns the results."""
    from carolgen.export.windows import parity_set
    from carolgen.runtime.modelfile import read_model_file
    qemu = ensure_qemu()
    check_disk(cache)
    log("arm64 userland (Debian bookworm = Raspberry Pi OS Bookworm)")
    root = build_rootfs(cache)
    carolgen_wheels, digest = build_carolgen_wheel(cache)
    pythons = {}
    for name, (_, _, runtimes) in ENVIRONMENTS.items():
        log(f"{name} environment: {', '.join(runtimes)}")
        python = install_environment(qemu, root, cache, name, carolgen_wheels, digest)
        pythons.update({runtime: python for runtime in runtimes})
    tflite_python = tflite_python or host_tflite_python(cache)
    log("exporting every file from the bundled checkpoint")
    files, rows = exported_files(cache)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        windows = Path(workdir) / "windows.npy"
        np.save(windows, parity_set(read_model_file(carolgen.DEFAULT_CHECKPOINT).info, count=20)[0])
        hosts = {}
        for case in cases(rows, reduced):
            python = pythons[case[2]]
            for cpu in cpus:
                out_npy = Path(workdir) / "probs.npy"
                out_npy.unlink(missing_ok=True)
                result, note = probe(python.command, python.env(cpu), files, case, windows, out_npy)
                probs, host = None, None
                if result is not None:
                    key = (case[0], case[2], result.get("kernels", ""))
                    if key not in hosts:
                        hosts[key] = host_reference(files, case, key[2], windows, workdir, tflite_python)
                    probs, host = np.load(out_npy), hosts[key]
                results.append({**verdict(case, result, note, probs, host), "cpu": cpu})
                log(f"  {cpu} {case[0]} on {case[2]} ({case[3]} kernels): {results[-1]['status']}")
    write_matrix(out, results, environment_facts(qemu, root, pythons), reduced)
    return results


def environment_facts(qemu, root, pythons):
    version = run([qemu, "--version"], "qemu --version").stdout.splitlines()[0]
    packages = sorted({p.name.removesuffix(".dist-info") for python in set(pythons.values())
                       for p in python.site.glob("*.dist-info")})
    from datetime import datetime, timezone
    python = next(iter(pythons.values()))
    python_version = run(python.command("-c", "import platform; print(platform.python_version())"),
                         "asking the emulated Python its version", env=python.env("cortex-a72")).stdout.strip()
    return {"qemu": version, "userland": f"Debian bookworm arm64 (Raspberry Pi OS Bookworm's base), Python {python_version}",
            "packages": packages, "host": os.uname().machine, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


MARK = {"ok": "✅", "mismatch": "⚠️", "refused": "❎", "crash": "💥"}


def cell(result):
    if result["status"] in ("ok", "mismatch"):
        limit = f" > {result['note']}" if result["status"] == "mismatch" else ""
        return (f"{MARK[result['status']]} max abs dp {result['max_abs_dp']:.1e}{limit} vs {result['against']}, "
                f"greedy {result['greedy']}/100")
    return f"{MARK[result['status']]} {result['note']}"


def write_matrix(out, results, facts, reduced):
    from carolgen.runtime.atomic import write_text_atomic
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "pi.json", json.dumps({"facts": facts, "reduced": reduced, "results": results}, indent=2))
    cpus = list(dict.fromkeys(r["cpu"] for r in results))
    keys = list(dict.fromkeys((r["file"], r["runtime"], r["kernels"]) for r in results))
    header = "| file | runtime | kernels | " + " | ".join(f"{c} ({CPUS.get(c, c)})" for c in cpus) + " |"
    lines = [header, "|" + "---|" * (3 + len(cpus))]
    for key in keys:
        cells = [cell(next(r for r in results if (r["file"], r["runtime"], r["kernels"]) == key and r["cpu"] == c))
                 for c in cpus]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    tolerances = ", ".join(f"{mode} {value:g}" for mode, value in TOLERANCE.items())
    write_text_atomic(out / "PI.md", f"""# Raspberry Pi (aarch64) compatibility matrix{' (reduced set)' if reduced else ''}

Emulated, not a Pi: {facts['qemu']} running a {facts['userland']} userland on this {facts['host']} host,
{facts['date']}. Installed from PyPI's aarch64 wheels: {', '.join(facts['packages'])}.

Each case ran in its own emulated process (timeout {CASE_TIMEOUT_S} s) on a Pi 4 core (cortex-a72) and a
Pi 5 core (cortex-a76). It passes when its next-character probabilities for 20 held-out windows match the
same file on x86-64 (the column names the interpreter, using the same kind of kernels) within the mode's tolerance ({tolerances}) and, for fp32
and fp16, its 100-character greedy text is the same. Quantised files may round an int8 step differently on
Arm's kernels; their greedy agreement is shown, not required. `kernels`: `auto` is what carolgen's runtime
chooses; `optimised` forces tflite-runtime's optimised kernels, to keep the crash the runtime avoids on
record. Emulated speed is 20-90x below native and says nothing about a Pi, so no timings are reported.

{chr(10).join(lines)}

Legend: ✅ matches x86-64 · ⚠️ runs but differs beyond tolerance · ❎ refuses to load (clean error) ·
💥 the interpreter crashed or hung (a finding; carolgen's runtime must never take this path).
""")


def main(argv=None):
    from carolgen.runtime.cli_common import ArgumentParser, run_command
    parser = ArgumentParser(prog="carol-pi-check", description=__doc__.split("\n\n")[0],
                            epilog="examples:\n  carol-pi-check --out benchmarks/results\n"
                                   "  carol-pi-check --reduced --cpu cortex-a72 --out /tmp/pi")
    parser.add_argument("--out", default="benchmarks/results", help="folder for PI.md and pi.json")
    parser.add_argument("--cache", type=Path, default=default_cache(), help="userland, wheels and files cache")
    parser.add_argument("--reduced", action="store_true", help="one file per runtime (the CI set)")
    parser.add_argument("--cpu", action="append", choices=list(CPUS), help="emulated core(s) (default: both)")
    parser.add_argument("--python-tflite-runtime", metavar="PATH",
                        help="a host Python with tflite-runtime 2.14 (numpy<2) to compare its cases with "
                             "(default: a venv the check makes in its cache)")
    args = parser.parse_args(argv)

    def body():
        results = check(Path(args.out), args.cache, args.reduced, tuple(args.cpu or CPUS), args.python_tflite_runtime,
                        log=lambda m: print(f"carol-pi-check: {m}", file=sys.stderr, flush=True))
        bad = [r for r in results if r["status"] == "mismatch" or (r["status"] == "crash" and r["kernels"] == "auto")]
        print(f"wrote {args.out}/PI.md: {len(results)} cases, {len(bad)} failing")
        return 1 if bad else 0
    return run_command(body)
