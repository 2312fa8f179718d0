"""The emulated Raspberry Pi: a Debian bookworm arm64 userland (Raspberry Pi OS Bookworm's base, Python 3.11)
unpacked from .debs under a private APT configuration, run under qemu-user, with Python environments
installed offline from PyPI's aarch64 wheels by the emulated pip. No binfmt, chroot or host dpkg changes.

Every cache entry is made by `cached_folder`: built under a `.partial-` name and renamed when whole, so an
interrupted build never looks finished. Entries are keyed by content (the carolgen sources' digest, the
checkpoint's digest), so repeated runs reuse them.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import carolgen
from carolgen.runtime.errors import CarolError

SUITES = ["bookworm", "bookworm-updates"]
DEBIAN = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
PACKAGES = ["python3.11", "python3-pip", "libstdc++6"]
WHEEL_TAGS = ["manylinux2014_aarch64"] + [f"manylinux_2_{n}_aarch64" for n in range(17, 37)]
NEED_DISK_MB = 2000


@dataclass(frozen=True)
class Environment:
    """One emulated Python environment: the wheels it downloads, what its pip installs, the runtimes it serves."""

    name: str
    downloads: tuple
    installs: tuple
    runtimes: tuple


ENVIRONMENTS = {e.name: e for e in (
    Environment("modern", ("numpy>=2", "ai-edge-litert", "onnxruntime"), ("carolgen[litert,onnx]",),
                ("litert", "onnxruntime")),
    Environment("legacy", ("numpy<2", "tflite-runtime==2.14.0"), ("carolgen", "numpy<2", "tflite-runtime==2.14.0"),
                ("tflite-runtime",)),
)}


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


def cached_folder(cache, name, build):
    """cache/name, made by build(folder) under a `.partial-` name and renamed when whole; reused when present."""
    final = cache / name
    if final.is_dir():
        return final
    work = Path(tempfile.mkdtemp(prefix=f".partial-{name}-", dir=cache))
    try:
        build(work)
        os.replace(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def ensure_qemu():
    """qemu-aarch64-static, installed with apt-get when missing (needs root and Debian's registry)."""
    found = shutil.which("qemu-aarch64-static")
    if found:
        return found
    if os.geteuid() != 0:
        raise CarolError("qemu-user-static is not installed and installing it needs root: "
                         "sudo apt-get install qemu-user-static")
    print("carol-pi-check: installing qemu-user-static with apt-get (root)", file=sys.stderr, flush=True)
    run(["apt-get", "update", "-qq"], "apt-get update (no network to Debian's registry?)")
    run(["apt-get", "install", "-y", "-qq", "qemu-user-static"], "apt-get install qemu-user-static")
    return shutil.which("qemu-aarch64-static")


def check_disk(folder, need_mb=NEED_DISK_MB):
    folder.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < need_mb:
        raise CarolError(f"not enough disk in {folder}: {free_mb:.0f} MB free, the check needs {need_mb} MB")


def build_rootfs(cache, mirror=DEBIAN, security=SECURITY):
    """The arm64 userland (with a Pi-4-style /proc/cpuinfo)."""
    if not KEYRING.is_file():
        raise CarolError(f"{KEYRING} is missing: apt-get install debian-archive-keyring")

    def build(root):
        with tempfile.TemporaryDirectory(dir=cache) as apt:
            env = {**os.environ, "APT_CONFIG": str(private_apt(Path(apt), mirror, security))}
            run(["apt-get", "update", "-qq", "--error-on=any"],
                "apt-get update for arm64 (no network to Debian's registry?)", env=env)
            run(["apt-get", "install", "--download-only", "--no-install-recommends", "-y", "-qq", *PACKAGES],
                "downloading arm64 packages", env=env)
            for deb in sorted((Path(apt) / "cache" / "archives").glob("*.deb")):
                run(["dpkg-deb", "-x", str(deb), str(root)], f"unpacking {deb.name}")
        write_cpuinfo(root)
    return cached_folder(cache, "rootfs-bookworm-arm64", build)


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


def source_digest(root):
    """A digest of what goes into carolgen's wheel (sources and packaged files, not build timestamps)."""
    digest = hashlib.sha256()
    packaged = ("carolgen", "runtime", "export", "benchmarks", "lyrics")
    paths = [root / "pyproject.toml"] + sorted(p for folder in packaged for p in (root / folder).rglob("*")
                                                if p.is_file() and "__pycache__" not in p.parts)
    for path in paths:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def carolgen_wheel(cache):
    """carolgen's own (pure Python) wheel from the source tree: (folder, content digest)."""
    root = source_tree()
    digest = source_digest(root)

    def build(folder):
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
             str(folder), str(root)], "building carolgen's wheel")
    return cached_folder(cache, f"carolgen-wheel-{digest}", build), digest


def download_wheels(cache, environment):
    """aarch64 wheels for one environment, downloaded once."""
    def build(folder):
        platforms = [arg for tag in WHEEL_TAGS for arg in ("--platform", tag)]
        run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version", "3.11",
             "--implementation", "cp", *platforms, "-d", str(folder), *environment.downloads],
            f"downloading aarch64 wheels ({' '.join(environment.downloads)}) (no network to PyPI?)")
    return cached_folder(cache, f"wheels-{environment.name}", build)


def host_tflite_python(cache):
    """A host (x86-64) venv with tflite-runtime 2.14 and numpy < 2: the reference for tflite-runtime cases.
    Only its python is used after the rename (a venv's scripts keep their old paths, python does not care)."""
    def build(folder):
        run([sys.executable, "-m", "venv", str(folder)], "creating the host tflite-runtime venv")
        run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "numpy<2", "tflite-runtime==2.14.0"],
            "installing tflite-runtime 2.14 on the host (no network to PyPI?)")
    return str(cached_folder(cache, "host-tflite-runtime", build) / "bin" / "python")


@dataclass(frozen=True)
class EmulatedPython:
    """The userland's python3.11 under qemu-aarch64, with one site folder on its path."""

    qemu: str
    root: Path
    site: Path

    def command(self, *args):
        return [self.qemu, "-L", str(self.root), str(self.root / "usr/bin/python3.11"), *args]

    def env(self, cpu):
        return {**os.environ, "QEMU_CPU": cpu, "PYTHONPATH": str(self.site), "PYTHONNOUSERSITE": "1"}


def install_environment(qemu, root, cache, environment, carolgen_wheels, digest):
    """pip install (emulated, offline from the downloaded wheels) into a site folder."""
    wheels = download_wheels(cache, environment)

    def build(folder):
        python = EmulatedPython(qemu, root, folder)
        run(python.command("-m", "pip", "install", "--isolated", "--no-index", "--quiet", "--target", str(folder),
                           "--find-links", str(wheels), "--find-links", str(carolgen_wheels), *environment.installs),
            f"installing the {environment.name} environment (emulated pip)", env=python.env("cortex-a72"), cwd=cache)
    return EmulatedPython(qemu, root, cached_folder(cache, f"site-{environment.name}-{digest}", build))


def emulated_pythons(cache, log):
    """{runtime backend: EmulatedPython} for every environment, building what the cache lacks."""
    qemu = ensure_qemu()
    check_disk(cache)
    log("arm64 userland (Debian bookworm = Raspberry Pi OS Bookworm)")
    root = build_rootfs(cache)
    wheels, digest = carolgen_wheel(cache)
    pythons = {}
    for environment in ENVIRONMENTS.values():
        log(f"{environment.name} environment: {', '.join(environment.runtimes)}")
        python = install_environment(qemu, root, cache, environment, wheels, digest)
        pythons.update({runtime: python for runtime in environment.runtimes})
    return pythons


def cache_size_mb(cache):
    return sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file() and not p.is_symlink()) / 2**20
