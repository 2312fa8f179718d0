"""carol-generate: write a carol from a model file, on whichever interpreter is installed."""
import difflib
import json
import sys
import textwrap
from pathlib import Path

from .atomic import check_writable
from .backends import BACKENDS
from .cli_common import ArgumentParser, run_command, seed_number
from .encoding import UNKNOWN_POLICIES, normalise
from .errors import CarolError
from .generate import check_run, load, new_seed
from .inputs import read_text_file
from .sampling import DEFAULT_SAMPLING, check_sampling

EXAMPLES = """examples:
  carol-generate --prime "bells across the" --length 300 --temperature 0.7
  carol-generate --temperature 0 --model model-fp32.onnx
  carol-generate --num-samples 4 --top-p 0.9 --seed 7 --json
  carol-generate --continue lyrics/snow-falls-soft.txt --compare
  carol-generate --backend keras --attention attention.png --length 30"""


def parse_args(argv):
    parser = ArgumentParser(prog="carol-generate", description="Write carol lyrics with a carolgen model file.",
                            epilog=EXAMPLES)
    parser.add_argument("--model", help="a .tflite, .onnx or .keras file (default: the bundled model)")
    parser.add_argument("--prime", default="", help="text to start from (default: the start of a song)")
    parser.add_argument("--length", type=int, default=400, help="characters to write per sample")
    parser.add_argument("--temperature", type=float, default=DEFAULT_SAMPLING["temperature"],
                        help="0 = greedy (a small character model's greedy text loops: 'the snow and the snow and "
                             "...'); higher = wilder")
    parser.add_argument("--top-k", type=int, default=DEFAULT_SAMPLING["top_k"],
                        help="sample from the k likeliest characters (0 = all)")
    parser.add_argument("--top-p", type=float, default=DEFAULT_SAMPLING["top_p"],
                        help="nucleus sampling mass (1 = off)")
    parser.add_argument("--seed", type=seed_number, help="random seed, 0 or more (printed when not given)")
    parser.add_argument("--num-samples", type=int, default=1, help="continuations to write, as one batch")
    parser.add_argument("--backend", help=f"{', '.join(BACKENDS)} (default: the first installed that may run the "
                                          "file here; numpy, slower, where none)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads")
    parser.add_argument("--unknown", choices=UNKNOWN_POLICIES, default="error",
                        help="what to do with prime characters outside the vocabulary")
    parser.add_argument("--continue", dest="continue_file", metavar="FILE",
                        help="prime with the first half of a lyrics file and write the second half")
    parser.add_argument("--compare", action="store_true", help="with --continue: show both halves side by side")
    parser.add_argument("--attention", metavar="PNG", help="draw which characters each output attended to")
    parser.add_argument("--trust-file", action="store_true",
                        help="run an exported file that carries no integrity digest (an older export, a hand-made "
                             "graph); an interpreter is no sandbox: only for files you trust")
    parser.add_argument("--quiet", action="store_true", help="no speed line or backend note on stderr")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    return parser.parse_args(argv)


def halves(path, normalisation):
    """(first half, second half) of a lyrics file, normalised like training, split at a space near the middle."""
    text = normalise(read_text_file(path, "lyrics file"), **normalisation).strip()
    if len(text) < 2:
        raise CarolError(f"{path} has too little text to continue")
    middle = text.find(" ", len(text) // 2)
    middle = len(text) // 2 if middle < 0 else middle + 1
    return text[:middle], text[middle:]


def side_by_side(left, right, width=38):
    """Two texts in columns, headed, for --compare."""
    a, b = textwrap.wrap(left, width) or [""], textwrap.wrap(right, width) or [""]
    rows = [f"{'held-back half':<{width}} | generated", f"{'-' * width}-+-{'-' * width}"]
    rows += [f"{a[i] if i < len(a) else '':<{width}} | {b[i] if i < len(b) else ''}"
             for i in range(max(len(a), len(b)))]
    return "\n".join(rows)


def similarity(a, b):
    """Character-level similarity in [0, 1] (difflib's ratio of matching characters)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def check_args(args):
    """Everything that can be refused before a model is loaded or a character written."""
    check_sampling(args.temperature, args.top_k, args.top_p)
    check_run(args.length, args.num_samples)
    if args.temperature == 0 and args.num_samples > 1:
        raise CarolError("--temperature 0 is greedy: every one of --num-samples would be the same text; "
                         "sample with a temperature above 0, or write one")
    if args.compare and not args.continue_file:
        raise CarolError("--compare shows the held-back half of a --continue file: give --continue FILE")
    if args.model is not None and not args.model.strip():
        raise CarolError("--model is empty: name a .tflite, .onnx or .keras file, or leave --model out for the "
                         "bundled model")
    if args.attention:
        from .plots import pyplot
        pyplot()  # matplotlib missing is said now, not after the text was written
        check_writable(args.attention)


def run(args, default_model):
    check_args(args)
    model = Path(args.model) if args.model is not None else default_model(args.backend)
    generator = load(model, backend=args.backend, threads=args.threads, trust=args.trust_file)
    info = generator.backend.info
    warning = info.verdict_warning(model.name)
    if warning:
        print(warning, file=sys.stderr)
    note = getattr(generator.backend, "note", None)  # why an automatic choice fell to the numpy backend
    if note and not args.quiet:
        print(f"carol-generate: {note}", file=sys.stderr)
    seed = new_seed() if args.seed is None else args.seed
    prime, length, target = args.prime, args.length, None
    if args.continue_file:
        prime, target = halves(args.continue_file, generator.backend.info.normalisation)
        length = len(target)
    options = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=seed,
                   num_samples=args.num_samples, unknown=args.unknown, attention=bool(args.attention))
    texts, interrupted = write_texts(generator, prime, length, options,
                                     stream=not args.json and args.num_samples == 1)
    report(args, generator, model, seed, texts, target, interrupted)
    if interrupted:
        raise KeyboardInterrupt  # after what was written has been shown: exit 130
    if args.attention:
        from .plots import plot_generation_attention
        plot_generation_attention(generator, prime, texts[0], args.attention)


def write_texts(generator, prime, length, options, stream):
    """(texts, interrupted): generate; with `stream`, each character goes to stdout as it comes. Ctrl-C
    stops the generation, not the run: what was written so far is still reported."""
    texts = [[] for _ in range(options["num_samples"])]
    try:
        for step in generator.stream_batch(prime, length, **options):
            for text, char in zip(texts, step, strict=True):
                text.append(char)
            if stream:
                sys.stdout.write(step[0])
                sys.stdout.flush()
    except KeyboardInterrupt:
        return ["".join(t) for t in texts], True
    return ["".join(t) for t in texts], False


def report(args, generator, model, seed, texts, target, interrupted=False):
    timing, backend = generator.timing, generator.backend.name
    if args.json:
        info = generator.backend.info
        document = {"texts": texts, "seed": seed, "model": str(model), "backend": backend,
                    "verdict": info.verdict, "verdict_warning": info.verdict_warning(model.name),
                    "interrupted": interrupted,
                    "batch_mode": timing.batch_mode, "timings": {
                        "characters": timing.characters, "samples": timing.samples,
                        "first_char_seconds": timing.first_char_seconds, "total_seconds": timing.total_seconds,
                        "chars_per_second": timing.chars_per_second}}
        if target is not None:
            document.update(held_back=target, similarity=similarity(target, texts[0]))
        print(json.dumps(document, ensure_ascii=False))
        return
    if args.num_samples > 1:
        print("\n\n".join(f"--- sample {i + 1} ---\n{t}" for i, t in enumerate(texts)))
    else:
        print()
    if target is not None and args.compare:
        print(f"\n{side_by_side(target, texts[0])}\nsimilarity {similarity(target, texts[0]):.3f}")
    if not args.quiet:
        print(f"{timing.characters * timing.samples} chars in {timing.total_seconds:.3f} s "
              f"({timing.chars_per_second:,.0f} chars/s, {timing.batch_mode}) · seed {seed} · "
              f"{backend} · {model.name}", file=sys.stderr)


def no_default_model(backend):
    raise CarolError("--model is required (this entry point has no bundled model)")


def main(argv=None, default_model=no_default_model):
    """carol-generate. `default_model(backend name or None)` gives the file to use when --model is not given."""
    return run_command(lambda: run(parse_args(argv), default_model))
