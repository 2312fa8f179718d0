"""Run one exported file on one interpreter and print what it computes: probabilities for a set of windows
and a 100-character greedy continuation. Runs under emulated aarch64 Python as well as on the host.

    python -m carolgen.bench.pi_probe MODEL BACKEND WINDOWS.npy OUT.npy [auto|reference|optimised]
"""
import json
import sys

import numpy as np

GREEDY_CHARS = 100


KERNELS = {"auto": None, "": None, "reference": True, "optimised": False}


def main(model, backend, windows_path, out_path, kernels="auto"):
    from carolgen.runtime.backends import open_backend
    from carolgen.runtime.errors import CarolError
    from carolgen.runtime.generate import Generator
    try:
        opened = open_backend(model, backend, reference_kernels=KERNELS[kernels])
    except CarolError as error:
        sys.exit(f"{error}")
    windows = np.load(windows_path)
    probs = np.concatenate([opened.probs(np.ascontiguousarray(w[None])) for w in windows])
    np.save(out_path, probs)
    text = Generator(opened).generate("", GREEDY_CHARS, temperature=0)
    print(json.dumps({"greedy": text, "kernels": getattr(opened, "kernels", "")}))


if __name__ == "__main__":
    main(*sys.argv[1:6])
