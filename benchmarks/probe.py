"""One case, run in a process of its own: `python -m carolgen.bench.probe REQUEST.json`.

Used by carol-bench (one row: speed and fidelity) and carol-pi-check (one emulated case: fidelity). It
imports only what the case needs (for a TFLite file: numpy and the interpreter), so its load time and peak
RSS are what a device running that file would see, and it runs under another Python (tflite-runtime 2.14
needs numpy < 2; the emulated Pi's) with only carolgen's runtime and bench on its path.

The request: model, backend, kernels (auto | reference | optimised), windows (.npy of inputs whose
probabilities are saved to probs_out), primes (greedy texts of greedy_chars each), for a timed row
timing {iterations, warmup, generate_chars}, and for a quality row samples {length and generate()'s
sampling options}: the texts the word rate is measured on. Prints one JSON object.
"""
import json
import resource
import sys
import time

import numpy as np

KERNELS = {"auto": None, "reference": True, "optimised": False}


def register_keras_rows():
    """The Keras rows (tf.function and the seed's predict loop), where this Python has the training side."""
    try:
        from carolgen.bench.seed_loop import SEED_LOOP
        from carolgen.keras_backend import KERAS
    except ImportError:  # a runtime-only Python: a foreign numpy, the emulated Pi
        return
    from carolgen.runtime.backends import register
    register(KERAS)
    register(SEED_LOOP)


def percentiles(samples_us):
    p50, p90, p99 = np.percentile(samples_us, [50, 90, 99])
    return {"p50_us": float(p50), "p90_us": float(p90), "p99_us": float(p99)}


def forward(backend, window):
    """One model call as generation makes it, as a function: a windowed file's forward pass over `window`
    (1, window, ...), a step file's one step (its last character, a zero state)."""
    if backend.graph == "window":
        return lambda: backend.probs(window)
    char, state = np.ascontiguousarray(window[:, -1]), np.zeros((1, *backend.state_shape), dtype=np.float32)
    return lambda: backend.step(char, state)


def latency(backend, window, iterations, warmup):
    call = forward(backend, window)
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    return percentiles(samples)


def peak_rss_mb():
    """This process's peak resident set. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    across fork+exec, so a probe started by a TensorFlow process would report TensorFlow's memory."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


TIMED_RUNS = 3


def timed(backend, windows, timing):
    """Greedy generation speed (the median of TIMED_RUNS runs after a warm-up of a tenth of the length),
    forward latency and peak memory of an opened backend."""
    from carolgen.runtime.generate import Generator
    generator = Generator(backend)
    generator.generate("", max(1, timing["generate_chars"] // 10), temperature=0)
    rates = []
    for _ in range(TIMED_RUNS):
        text = generator.generate("", timing["generate_chars"], temperature=0)
        rates.append(generator.timing.chars_per_second)
    figures = {"chars_per_s": float(np.median(rates)), "generated": text, "peak_rss_mb": peak_rss_mb()}
    figures.update(latency(backend, np.ascontiguousarray(windows[:1]), timing["iterations"], timing["warmup"]))
    return figures


PAIRED_BLOCK = 100  # calls per file per round of paired timing


def paired(request):
    """p50 of several files of one runtime, loaded in one process and timed in interleaved blocks (each
    file's first block is its warm-up), so that every file meets the same machine: the figures the report's
    speed ratios use. Rows timed minutes apart on this kind of machine differed by up to 1.7x."""
    from carolgen.runtime.backends import open_backend
    backends = [open_backend(model, request["backend"]) for model in request["paired"]]
    window = np.ascontiguousarray(np.load(request["windows"])[:1])
    calls = [forward(backend, window) for backend in backends]
    samples = [[] for _ in backends]
    for _ in range(request["rounds"] + 1):
        for call, times in zip(calls, samples, strict=True):
            for _ in range(PAIRED_BLOCK):
                start = time.perf_counter()
                call()
                times.append((time.perf_counter() - start) * 1e6)
    return {"paired_p50_us": [float(np.median(times[PAIRED_BLOCK:])) for times in samples]}


def paired_generation(request):
    """Median chars/s after the first character (the prime is not counted: a step file feeds it one step per
    character) of several files of one runtime generating in one process, in turn, greedy and at
    carol-generate's sampled defaults, one sample: the side-by-side figures the step files' targets use."""
    from carolgen.runtime.backends import open_backend
    from carolgen.runtime.generate import Generator
    from carolgen.runtime.sampling import DEFAULT_SAMPLING
    generators = [Generator(open_backend(model, request["backend"])) for model in request["generation"]]
    settings = {"greedy": {"temperature": 0}, "sampled": dict(DEFAULT_SAMPLING)}
    rates = {name: [[] for _ in generators] for name in settings}
    for number in range(request["rounds"] + 1):
        for generator, index in zip(generators, range(len(generators)), strict=True):
            for name, options in settings.items():
                generator.generate("", request["chars"], seed=number, **options)
                if number:  # the first round warms up
                    rates[name][index].append(generator.timing.steady_chars_per_second)
    return {f"{name}_chars_per_s": [float(np.median(r)) for r in per_file] for name, per_file in rates.items()}


def main(path):
    from carolgen.runtime.backends import open_backend
    from carolgen.runtime.errors import CarolError
    from carolgen.runtime.generate import Generator, probs_of_windows
    with open(path) as handle:
        request = json.load(handle)
    if request.get("paired"):
        print(json.dumps(paired(request)))
        return
    if request.get("generation"):
        print(json.dumps(paired_generation(request)))
        return
    register_keras_rows()
    started = time.perf_counter()
    try:
        backend = open_backend(request["model"], request["backend"], reference_kernels=KERNELS[request["kernels"]])
    except CarolError as error:
        sys.exit(f"{error}")
    result = {"load_s": time.perf_counter() - started, "kernels": getattr(backend, "kernels", "")}
    windows = np.load(request["windows"])
    if request.get("timing"):
        result.update(timed(backend, windows, request["timing"]))
    if request["primes"]:
        np.save(request["probs_out"], probs_of_windows(backend, windows))
        generator = Generator(backend)
        result["greedy"] = [generator.generate(p, request["greedy_chars"], temperature=0) for p in request["primes"]]
    if request.get("samples"):
        options = dict(request["samples"])
        result["samples"] = Generator(backend).generate_batch("", options.pop("length"), **options)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
