"""carol-fuzz: mutated, truncated and tampered model files through the real runtime, counting outcomes.

Every case is `carol-generate --model MUTANT --length 20` run through the runtime's own command. The promise:
exit 0 with 20 characters, or exit 2 with one line on stderr; never a signal, a traceback or a hang. Cases
run in batches inside worker processes (a new process per case would make a deep run take hours): each
worker notes a case before running it, so when a worker dies of a signal the harness knows the case that
killed it, records a crash, and starts a new worker after it.

Mutants come from the files carol-export writes (every format and mode it gives the checkpoint), seeded:
flipped bytes, truncations, zeroed, duplicated and random ranges. Sealed files are refused by their digest
before an interpreter sees them; the `--trust-file` share of the cases strips the digest first, so the
verifier and the interpreters themselves are what meet the damage, and half of those run on the numpy
backend, so its weight readers meet it too.
"""
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from carolgen.runtime.atomic import write_text_atomic
from carolgen.runtime.cli_common import ArgumentParser, run_command

LENGTH = 20
CASE_TIMEOUT_S = 20
TRUST_SHARE = 0.25  # the share of cases run with --trust-file on an unsealed mutant
NUMPY_SHARE = 0.5  # the share of those run with --backend numpy (the others on the format's interpreter)


def flip(data, rng):
    out = bytearray(data)
    for position in rng.integers(0, len(out), rng.integers(1, 9)):
        out[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def truncate(data, rng):
    return data[:int(rng.integers(0, len(data)))]


def zero_range(data, rng):
    start = int(rng.integers(0, len(data)))
    return data[:start] + bytes(min(int(rng.integers(1, 64)), len(data) - start)) + data[start + 64:]


def duplicate_range(data, rng):
    start = int(rng.integers(0, len(data)))
    return data[:start] + data[start:start + int(rng.integers(1, 256))] + data[start:]


def random_range(data, rng):
    start, size = int(rng.integers(0, len(data))), int(rng.integers(1, 32))
    return data[:start] + rng.integers(0, 256, size, dtype=np.uint8).tobytes() + data[start + size:]


MUTATIONS = {f.__name__: f for f in (flip, truncate, zero_range, duplicate_range, random_range)}


def unsealed(data):
    """The file's bytes with its digest's key renamed (same length, so no other byte moves): the file then
    carries no digest, and `--trust-file` lets it reach the interpreter."""
    from carolgen.runtime import integrity
    renamed = "no_digest".ljust(len(integrity.KEY), "_")
    return data.replace(f'"{integrity.KEY}": "'.encode(), f'"{renamed}": "'.encode(), 1)


def make_cases(files, count, seed, folder):
    """[(case, mutant path, trust)] for `count` seeded mutants of `files`."""
    rng = np.random.default_rng(seed)
    sources = [(path, path.read_bytes()) for path in files]
    cases = []
    for number in range(count):
        path, data = sources[number % len(sources)]
        trust = bool(rng.random() < TRUST_SHARE)
        backend = "numpy" if trust and rng.random() < NUMPY_SHARE else None
        source = unsealed(data) if trust else data
        mutant = source
        while mutant == source:  # a mutation that changed nothing (zeroing zeros) is drawn again
            name = list(MUTATIONS)[int(rng.integers(0, len(MUTATIONS)))]
            mutant = MUTATIONS[name](source, rng)
        target = folder / f"{number:06d}{path.suffix}"
        target.write_bytes(mutant)
        cases.append({"case": number, "source": path.name, "mutation": name, "trust": trust, "backend": backend,
                      "path": str(target)})
    return cases


def run_case(case):
    """One case through carol-generate's own command, in this process: (outcome, detail)."""
    from carolgen.generate import main
    out, err = io.StringIO(), io.StringIO()
    args = ["--model", case["path"], "--length", str(LENGTH), "--seed", "1", "--quiet"]
    args += ["--backend", case["backend"]] if case.get("backend") else []
    signal.alarm(CASE_TIMEOUT_S)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(args + (["--trust-file"] if case["trust"] else []))
    except BaseException as error:  # anything escaping the command is a traceback the user would see
        return "traceback", f"{type(error).__name__}: {error}"[:200]
    finally:
        signal.alarm(0)
    lines = err.getvalue().strip().splitlines()
    if code == 0 and len(out.getvalue().strip("\n")) == LENGTH:
        return "generated", ""
    if code == 2 and len(lines) == 1 and "Traceback" not in err.getvalue():
        return "refused", lines[0][:200]
    return "wrong", f"exit {code}: {err.getvalue()[-200:]!r}"


class Hang(BaseException):
    """Raised by the alarm in a case that took too long (not an OSError, which the command would catch)."""


def worker(cases_file, results_file):
    """Run cases from a JSON list, appending one JSON line per case; a 'started' line comes first, so the
    harness can name the case a native crash stopped the worker in."""
    def hang(signum, frame):
        raise Hang(f"no result in {CASE_TIMEOUT_S} s")
    signal.signal(signal.SIGALRM, hang)
    with open(results_file, "a") as results:
        for case in json.loads(Path(cases_file).read_text()):
            results.write(json.dumps({"case": case["case"], "started": True}) + "\n")
            results.flush()
            outcome, detail = run_case(case)
            outcome = "hang" if detail.startswith("Hang") else outcome
            results.write(json.dumps({"case": case["case"], "outcome": outcome, "detail": detail}) + "\n")
            results.flush()


def run_cases(cases, folder):
    """{case: (outcome, detail)} for every case, restarting a worker after each native crash."""
    done, pending = {}, list(cases)
    while pending:
        cases_file, results_file = folder / "cases.json", folder / "results.jsonl"
        cases_file.write_text(json.dumps(pending))
        results_file.write_text("")
        process = subprocess.run([sys.executable, "-m", "carolgen.bench.fuzz", "--worker", str(cases_file),
                                  str(results_file)], capture_output=True, text=True)
        started = None
        for line in results_file.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("started"):
                started = entry["case"]
            else:
                done[entry["case"]] = (entry["outcome"], entry["detail"])
                started = None
        if started is not None:  # the worker died inside this case
            code = process.returncode
            done[started] = ("crash", f"signal {-code}" if code < 0 else f"exit {code}: {process.stderr[-200:]!r}")
        left = [c for c in pending if c["case"] not in done]
        if len(left) == len(pending):  # the worker died before any case: do not loop for ever
            done.update({c["case"]: ("crash", f"the worker did not start: {process.stderr[-200:]!r}") for c in left})
            left = []
        pending = left
    return done


def fuzz(files, count, seed):
    """Run `count` seeded mutants of `files`; returns the report document."""
    with tempfile.TemporaryDirectory() as folder:
        cases = make_cases(files, count, seed, Path(folder))
        outcomes = run_cases(cases, Path(folder))
    rows = [{**{k: v for k, v in c.items() if k != "path"}, "outcome": outcomes[c["case"]][0],
             "detail": outcomes[c["case"]][1]} for c in cases]
    tally = {}
    for row in rows:
        group = ("sealed" if not row["trust"] else
                 "trust-file, numpy backend" if row.get("backend") == "numpy" else "trust-file, interpreter")
        tally.setdefault(group, Counter())[row["outcome"]] += 1
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "seed": seed, "cases": count,
            "sources": sorted({f.name for f in files}), "tally": {k: dict(v) for k, v in tally.items()},
            "failures": [r for r in rows if r["outcome"] in ("crash", "traceback", "hang", "wrong")]}


def machine():
    """Where the run happened: Python, platform and the interpreters' versions."""
    import platform
    from importlib.metadata import PackageNotFoundError, version
    found = []
    for package in ("numpy", "ai-edge-litert", "onnxruntime"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    return f"Python {platform.python_version()}, {platform.platform()}, {', '.join(found)}"


def write_report(document, out):
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "fuzz.json", json.dumps(document, indent=2))
    lines = [f"# carol-fuzz: {document['cases']:,} mutants", "",
             f"Seed {document['seed']}, {document['date']}; {document['machine']}.",
             f"Sources (every file carol-export writes for the bundled model): {', '.join(document['sources'])}.",
             "Each case: `carol-generate --model MUTANT --length 20`; the promise is exit 0 with 20 characters or "
             "exit 2 with one line, never a crash, a traceback, a hang or other output.", "",
             "| cases | generated | refused (one line, exit 2) | crash | traceback | hang | wrong |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, tally in document["tally"].items():
        cells = [tally.get(k, 0) for k in ("generated", "refused", "crash", "traceback", "hang", "wrong")]
        lines.append(f"| {name} ({sum(cells):,}) | " + " | ".join(f"{c:,}" for c in cells) + " |")
    lines += ["", "Failures:" if document["failures"] else "No failures."]
    lines += [f"- case {f['case']} ({f['source']}, {f['mutation']}, trust {f['trust']}, backend "
              f"{f.get('backend') or 'auto'}): {f['outcome']}: {f['detail']}"
              for f in document["failures"][:50]]
    write_text_atomic(out / "FUZZ.md", "\n".join(lines) + "\n")


def exported_files(checkpoint, folder, lyrics=None):
    """Every file carol-export writes for the checkpoint, in every format, graph and mode (rejected ones too)."""
    from carolgen.export import EXPORT_FORMATS, MODES, export
    from carolgen.export.graphs import GRAPHS
    rows = export(checkpoint, list(EXPORT_FORMATS), list(MODES), out=folder, calibration_lyrics=lyrics,
                  graphs=list(GRAPHS))
    return [folder / r.file for r in rows if r.status in ("accepted", "rejected")]


def parse_args(argv):
    parser = ArgumentParser(prog="carol-fuzz", description="Run mutated model files through carol-generate.")
    parser.add_argument("--model", help="checkpoint whose exports are mutated (default: the bundled model)")
    parser.add_argument("--cases", type=int, default=300, help="mutants to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="fuzz-results", help="folder for FUZZ.md and fuzz.json")
    return parser.parse_args(argv)


def run(args):
    import carolgen
    from carolgen.runtime.errors import CarolError
    if not 1 <= args.cases <= 1_000_000:
        raise CarolError("--cases must be 1-1,000,000")
    with tempfile.TemporaryDirectory() as folder:
        files = exported_files(Path(args.model or carolgen.DEFAULT_CHECKPOINT), Path(folder))
        document = fuzz(files, args.cases, args.seed)
    write_report(document, Path(args.out))
    print(f"wrote {args.out}/FUZZ.md: {args.cases:,} cases, {len(document['failures'])} failures")
    return 1 if document["failures"] else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        return worker(*argv[1:3])
    return run_command(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
