"""Which sampling settings read best: word rate and repetition over a grid of temperature x top-p.

    python -m carolgen.bench.sampling_grid --out benchmarks/results      # SAMPLING.md for the bundled model

Word rate (carolgen/quality.py) alone would favour greedy text, which loops on real words; the repeated
share (of 4-word sequences that occur more than once in a sample) shows the looping. carol-generate's
defaults are the cell with the best word rate among those whose repeated share stays under REPEAT_LIMIT.
"""
import sys
from collections import Counter
from pathlib import Path

from carolgen.quality import WORD_RATE_SETTINGS, quality_samples, training_words, word_rate_of, words
from carolgen.runtime.atomic import write_text_atomic
from carolgen.runtime.cli_common import ArgumentParser, run_command
from carolgen.runtime.generate import load

TEMPERATURES = (0.0, 0.5, 0.6, 0.7, 0.8, 1.0)
TOP_PS = (0.8, 0.9, 1.0)
REPEAT_LIMIT = 0.05  # fewer than one 4-word sequence in twenty repeats: no loop a reader notices


def repeated_share(texts, n=4):
    """The share of n-word sequences in each text that occur more than once in it (0 = no loops)."""
    repeated = total = 0
    for text in texts:
        grams = Counter(tuple(w) for w in zip(*(words(text)[i:] for i in range(n)), strict=False))
        total += sum(grams.values())
        repeated += sum(count for count in grams.values() if count > 1)
    return repeated / total if total else 0.0


def grid(generator, known):
    """[(temperature, top_p, word rate, repeated share)] over the grid (greedy once: top-p does not apply)."""
    cells = []
    for temperature in TEMPERATURES:
        for top_p in TOP_PS if temperature else (1.0,):
            texts = quality_samples(generator, {**WORD_RATE_SETTINGS, "temperature": temperature, "top_p": top_p})
            cells.append((temperature, top_p, word_rate_of(texts, known), repeated_share(texts)))
    return cells


def best(cells):
    readable = [c for c in cells if c[0] > 0 and c[3] < REPEAT_LIMIT]
    return max(readable, key=lambda c: c[2]) if readable else None


def markdown(model, cells):
    chosen = best(cells)
    rows = [f"| {'greedy' if t == 0 else f'{t:g}'} | {p:g} | {rate:.3f} | {repeat:.3f} |"
            f"{' ← chosen' if (t, p, rate, repeat) == chosen else ''}" for t, p, rate, repeat in cells]
    return f"""# Sampling settings, measured

Model: `{model}`. Each cell: five samples of {WORD_RATE_SETTINGS['length']:,} characters from a fixed seed,
starting a song. Word rate: the share of generated words that occur in the training lyrics. Repeated: the
share of 4-word sequences that occur more than once in their sample (greedy text loops). Chosen for carol-generate's
defaults: the best word rate among sampled cells (temperature > 0) with repeated share under {REPEAT_LIMIT}.
Regenerate with `python -m carolgen.bench.sampling_grid --out benchmarks/results`.

| temperature | top-p | word rate | repeated | |
|---:|---:|---:|---:|---|
{chr(10).join(rows)}
"""


def main(argv=None):
    from carolgen.generate import bundled_model
    parser = ArgumentParser(prog="python -m carolgen.bench.sampling_grid", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="an exported file (default: the bundled model)")
    parser.add_argument("--out", default="bench-results", help="folder for SAMPLING.md")

    def body():
        args = parser.parse_args(argv)
        path = Path(args.model) if args.model else bundled_model()
        generator = load(path)
        cells = grid(generator, training_words(generator.backend.info))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "SAMPLING.md", markdown(path.name, cells))
        print(f"wrote {out}/SAMPLING.md; chosen: {best(cells)}", file=sys.stderr)
    return run_command(body)


if __name__ == "__main__":
    raise SystemExit(main())
