"""One benchmark row, run in a process of its own: `python -m carolgen.bench.probe REQUEST.json`.

It imports only what the row needs (for a TFLite row: numpy and the interpreter), so its peak RSS and load
time are what a device running that file would see. It can run under another Python (tflite-runtime 2.14
needs numpy < 2) with carolgen.runtime on its path. Prints one JSON object.
"""
import json
import resource
import sys
import time

import numpy as np


def percentiles(samples_us):
    p50, p90, p99 = np.percentile(samples_us, [50, 90, 99])
    return {"p50_us": float(p50), "p90_us": float(p90), "p99_us": float(p99)}


def open_row(request):
    """The backend for the request: a runtime backend, or the seed's own loop (Keras predict per window)."""
    if request["backend"] == "keras-predict":
        from carolgen.bench.seed_loop import open_seed_loop
        return open_seed_loop(request["model"])
    from carolgen.runtime.backends import open_backend
    return open_backend(request["model"], request["backend"], threads=1)


def latency(backend, window, iterations, warmup):
    for _ in range(warmup):
        backend.probs(window)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        backend.probs(window)
        samples.append((time.perf_counter() - start) * 1e6)
    return percentiles(samples)


def peak_rss_mb():
    """This process's peak resident set. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    across fork+exec, so a probe started by a TensorFlow process would report TensorFlow's memory."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(path):
    from carolgen.runtime.errors import CarolError
    request = json.loads(open(path).read())
    started = time.perf_counter()
    try:
        backend = open_row(request)
    except CarolError as error:
        sys.exit(f"{error}")
    result = {"load_s": time.perf_counter() - started}
    from carolgen.runtime.generate import Generator
    generator = Generator(backend)
    text = generator.generate("", request["generate_chars"], temperature=0)
    result.update(chars_per_s=generator.timing.chars_per_second, generated=text,
                  peak_rss_mb=peak_rss_mb())
    windows = np.load(request["windows"])
    result.update(latency(backend, np.ascontiguousarray(windows[:1]), request["iterations"], request["warmup"]))
    probs = np.concatenate([backend.probs(np.ascontiguousarray(w[None])) for w in windows]) \
        if request["fidelity"] else np.zeros((0,))
    np.save(request["probs_out"], probs)
    result["greedy"] = [Generator(backend).generate(p, 200, temperature=0) for p in request["primes"]] \
        if request["fidelity"] else []
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
