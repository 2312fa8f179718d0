"""The emulated Raspberry Pis carol-pi-check builds (benchmarks/emulator.py), one row of TARGETS each: 64-bit
Pi OS (arm64, Pi 4 and Pi 5 cores), 32-bit Pi OS (armhf, ARMv7: Debian's python3-numpy, since pip has no
armv7l numpy wheels, and tflite-runtime 2.14's armv7l wheel), and a Pi Zero / Pi 1 (ARMv6: Debian armel,
the closest userland Debian builds for an ARMv6 core, with numpy alone).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Environment:
    """One emulated Python environment: the wheels it downloads, what its pip installs (with `pip_flags`),
    the runtimes it serves. `--no-deps` where numpy comes from Debian's python3-numpy (no armv7l wheels)."""

    name: str
    downloads: tuple
    installs: tuple
    runtimes: tuple
    pip_flags: tuple = ()
    unzipped: tuple = ()  # downloaded wheels put on the path unzipped, bypassing pip: a record, not advice


def _manylinux(arch):
    return ("manylinux2014_" + arch, *(f"manylinux_2_{n}_{arch}" for n in range(17, 37)))


@dataclass(frozen=True)
class Target:
    """One emulated Pi: its Debian userland, its qemu, the cores it stands for, its Python environments."""

    name: str
    machine: str  # platform.machine() there
    debian_arch: str
    qemu: str
    cpus: dict  # QEMU_CPU -> the Pi whose core it is
    packages: tuple  # Debian packages of the userland
    wheel_tags: tuple
    environments: tuple
    triplet: str  # the multiarch folder (Debian's numpy needs its BLAS links made there)


PI_OS_32_NUMPY = ("python3.11", "python3-pip", "python3-numpy", "libstdc++6")
TARGETS = {t.name: t for t in (
    Target("aarch64", "aarch64", "arm64", "qemu-aarch64-static",
           {"cortex-a72": "Raspberry Pi 4", "cortex-a76": "Raspberry Pi 5"},
           ("python3.11", "python3-pip", "libstdc++6"), _manylinux("aarch64"), (
               Environment("modern", ("numpy>=2", "ai-edge-litert", "onnxruntime"), ("carolgen[litert,onnx]",),
                           ("litert", "onnxruntime", "numpy")),
               Environment("legacy", ("numpy<2", "tflite-runtime==2.14.0"),
                           ("carolgen", "numpy<2", "tflite-runtime==2.14.0"), ("tflite-runtime",))),
           "aarch64-linux-gnu"),
    Target("armv7", "armv7l", "armhf", "qemu-arm-static", {"cortex-a7": "Raspberry Pi 2/3, 32-bit Pi OS"},
           PI_OS_32_NUMPY, (*_manylinux("armv7l"), "linux_armv7l"), (
               Environment("pi-os-32", ("tflite-runtime==2.14.0",), ("carolgen", "tflite-runtime==2.14.0"),
                           ("tflite-runtime", "numpy"), pip_flags=("--no-deps",)),),
           "arm-linux-gnueabihf"),
    Target("armv6", "armv6l", "armel", "qemu-arm-static", {"arm1176": "Raspberry Pi Zero / Zero W / 1"},
           PI_OS_32_NUMPY, (*_manylinux("armv7l"), "linux_armv7l"), (
               Environment("pi-zero", ("tflite-runtime==2.14.0",), ("carolgen",), ("numpy", "tflite-runtime"),
                           pip_flags=("--no-deps",), unzipped=("tflite_runtime",)),),
           "arm-linux-gnueabi"),
)}
