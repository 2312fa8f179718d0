"""The emulated Raspberry Pis: Debian bookworm userlands (Raspberry Pi OS Bookworm's base, Python 3.11)
unpacked from .debs under a private APT configuration, run under qemu-user, with Python environments
installed offline by the emulated pip from PyPI's wheels. No binfmt, chroot or host dpkg changes.

The targets are benchmarks/pi_targets.py's TARGETS table.

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
import zipfile
from dataclasses import dataclass
from pathlib import Path

import carolgen
from carolgen.runtime.errors import CarolError

from .pi_targets import TARGETS

SUITES = ["bookworm", "bookworm-updates"]
DEBIAN = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
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


def ensure_qemu(binary="qemu-aarch64-static"):
    """A qemu-user binary, with qemu-user-static installed by apt-get when missing (needs root and Debian's
    registry; announced on stderr first)."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0:
        raise CarolError(f"{binary} is not installed and installing it needs root: "
                         "sudo apt-get install qemu-user-static")
    print("carol-pi-check: installing qemu-user-static with apt-get (root)", file=sys.stderr, flush=True)
    run(["apt-get", "update", "-qq"], "apt-get update (no network to Debian's registry?)")
    run(["apt-get", "install", "-y", "-qq", "qemu-user-static"], "apt-get install qemu-user-static")
    return shutil.which(binary)


def check_disk(folder, need_mb=NEED_DISK_MB):
    folder.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < need_mb:
        raise CarolError(f"not enough disk in {folder}: {free_mb:.0f} MB free, the check needs {need_mb} MB")


def build_rootfs(cache, target=TARGETS["aarch64"], mirror=DEBIAN, security=SECURITY):
    """The target's userland (the arm64 one with a Pi-4-style /proc/cpuinfo)."""
    if not KEYRING.is_file():
        raise CarolError(f"{KEYRING} is missing: apt-get install debian-archive-keyring")
    arch = target.debian_arch

    def build(root):
        with tempfile.TemporaryDirectory(dir=cache) as apt:
            env = {**os.environ, "APT_CONFIG": str(private_apt(Path(apt), mirror, security, arch))}
            update_indexes(Path(apt), arch, env)
            run(["apt-get", "install", "--download-only", "--no-install-recommends", "-y", "-qq", *target.packages],
                f"downloading {arch} packages", env=env)
            for deb in sorted((Path(apt) / "cache" / "archives").glob("*.deb")):
                run(["dpkg-deb", "-x", str(deb), str(root)], f"unpacking {deb.name}")
        link_blas(root, target.triplet)
        if arch == "arm64":
            write_cpuinfo(root)
    return cached_folder(cache, f"rootfs-bookworm-{arch}", build)


def update_indexes(apt, arch, env):
    """apt-get update. Only the security suite may fail (its armhf index was seen stale on a mirror, with a
    size its signed Release contradicts); the userland is then bookworm and bookworm-updates, said on stderr."""
    done = subprocess.run(["apt-get", "update", "-qq", "--error-on=any"], capture_output=True, text=True, env=env)
    if done.returncode == 0:
        return
    lists = [p.name for p in (apt / "state" / "lists").glob("*Packages*")]
    main_ok = any("debian_dists_bookworm_main" in name for name in lists)
    if not main_ok or not any("bookworm-updates" in name for name in lists):
        detail = (done.stderr.strip().splitlines() or [""])[-1]
        raise CarolError(f"apt-get update for {arch} (no network to Debian's registry?) failed: {detail[:200]}")
    print(f"carol-pi-check: warning: Debian's security index for {arch} could not be fetched; building the "
          "userland from bookworm and bookworm-updates", file=sys.stderr, flush=True)


def link_blas(root, triplet):
    """The libblas.so.3 and liblapack.so.3 links Debian's update-alternatives makes when numpy is installed
    (dpkg-deb -x runs no scripts; numpy's import fails without them)."""
    folder = root / "usr" / "lib" / triplet
    for name in ("blas", "lapack"):
        if (folder / name / f"lib{name}.so.3").is_file() and not (folder / f"lib{name}.so.3").exists():
            (folder / f"lib{name}.so.3").symlink_to(f"{name}/lib{name}.so.3")


def private_apt(work, mirror, security, arch="arm64"):
    """An APT configuration of its own (one architecture, empty dpkg status): the host's dpkg is never touched."""
    for sub in ("state/lists/partial", "cache/archives/partial", "etc"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "status").write_text("")
    signed = f"[arch={arch} signed-by={KEYRING}]"
    sources = [f"deb {signed} {mirror} {suite} main" for suite in SUITES]
    sources.append(f"deb {signed} {security} bookworm-security main")
    (work / "etc" / "sources.list").write_text("\n".join(sources) + "\n")
    config = work / "apt.conf"
    config.write_text("\n".join([
        f'APT::Architecture "{arch}";', f'APT::Architectures {{ "{arch}"; }};',
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


def download_wheels(cache, target, environment):
    """The target's wheels for one environment, downloaded once."""
    def build(folder):
        platforms = [arg for tag in target.wheel_tags for arg in ("--platform", tag)]
        run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version", "3.11",
             "--implementation", "cp", *platforms, *environment.pip_flags, "-d", str(folder), *environment.downloads],
            f"downloading {target.machine} wheels ({' '.join(environment.downloads)}) (no network to PyPI?)")
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
    """The userland's python3.11 under qemu-user, with one site folder on its path."""

    qemu: str
    root: Path
    site: Path

    def command(self, *args):
        return [self.qemu, "-L", str(self.root), str(self.root / "usr/bin/python3.11"), *args]

    def env(self, cpu):
        return {**os.environ, "QEMU_CPU": cpu, "PYTHONPATH": str(self.site), "PYTHONNOUSERSITE": "1"}


def pip_install_command(environment):
    """What the emulated pip is asked to install: the README's Pi sections quote it."""
    return ["pip", "install", *environment.pip_flags, *environment.installs]


def install_environment(qemu, root, cache, target, environment, carolgen_wheels, digest):
    """pip install (emulated, offline from the downloaded wheels) into a site folder."""
    wheels = download_wheels(cache, target, environment)
    cpu = next(iter(target.cpus))

    def build(folder):
        python = EmulatedPython(qemu, root, folder)
        offline = ["--isolated", "--no-index", "--quiet", "--target", str(folder), "--find-links", str(wheels),
                   "--find-links", str(carolgen_wheels)]
        command = pip_install_command(environment)
        run(python.command("-m", *command[:2], *offline, *command[2:]),
            f"installing the {environment.name} environment (emulated pip)", env=python.env(cpu), cwd=cache)
        for wheel in (w for w in wheels.glob("*.whl") if w.name.split("-")[0] in environment.unzipped):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(folder)
    return EmulatedPython(qemu, root, cached_folder(cache, f"site-{environment.name}-{digest}", build))


def emulated_pythons(cache, log, targets=tuple(TARGETS), wanted=None):
    """{(target, runtime backend): EmulatedPython} for every environment of the targets (or only those serving
    a (target, runtime) in `wanted`), building what the cache lacks."""
    check_disk(cache)
    wheels, digest = carolgen_wheel(cache)
    pythons = {}
    for target in (TARGETS[name] for name in targets):
        qemu = ensure_qemu(target.qemu)
        log(f"{target.name}: Debian bookworm {target.debian_arch} userland")
        root = build_rootfs(cache, target)
        for environment in target.environments:
            if wanted is not None and not any((target.name, runtime) in wanted for runtime in environment.runtimes):
                continue
            log(f"{target.name}: {environment.name} environment: {', '.join(environment.runtimes)}")
            python = install_environment(qemu, root, cache, target, environment, wheels, digest)
            pythons.update({(target.name, runtime): python for runtime in environment.runtimes})
    return pythons


def cache_size_mb(cache):
    return sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file() and not p.is_symlink()) / 2**20
