"""carol-export: the command around carolgen.export.export, ending with the table."""
import json
import math

from carolgen.runtime.cli_common import ArgumentParser, Progress, run_command
from carolgen.runtime.errors import EXIT_CHECK_FAILED, CarolError

from .formats import EXPORT_FORMATS
from .graphs import GRAPHS
from .modes import LIMIT_NAMES, MODES

EXAMPLES = """examples:
  carol-export                                   # bundled checkpoint -> ./model-fp32.tflite
  carol-export --model runs/default/model.keras --format all --quantize fp32,fp16,dynamic,int8
  carol-export --format onnx --quantize dynamic            # 0.31x the fp32 file, as fast
  carol-export --format tflite --quantize dynamic-compat   # loads on tflite-runtime 2.14 (older Pis)
  carol-export --format all --graph both                   # windowed and step files (O(1) per character)
  carol-export --quantize int8 --calibration-lyrics my-songs/ --gate int8.min_top1=0.95

status: accepted (passed the op audit and the parity gate) | rejected (kept as NAME.rejected; exit 1)
        | unsupported (the toolchain cannot make this combination: reason given) | failed (converter error)"""

STATUS_MARK = {"accepted": "✅", "rejected": "❌", "unsupported": "❎", "failed": "❌"}


def parse_args(argv):
    parser = ArgumentParser(prog="carol-export", description="Export a carolgen checkpoint to TFLite and ONNX.",
                            epilog=EXAMPLES)
    parser.add_argument("--model", help="checkpoint (.keras) to export (default: the bundled one)")
    parser.add_argument("--format", default="tflite", help=f"{' | '.join(EXPORT_FORMATS)} | all (comma-separated)")
    parser.add_argument("--quantize", default="fp32", help=f"comma-separated modes: {', '.join(MODES)}")
    parser.add_argument("--graph", default="window", choices=[*GRAPHS, "both"],
                        help="window: the model, exact; step: one character per call with a carried state, "
                             "several times faster, approximate (NAME-MODE-step.EXT); both")
    parser.add_argument("--output", help="folder for the files (default: beside the checkpoint; for the "
                                         "bundled checkpoint, the current folder)")
    parser.add_argument("--calibration-lyrics", help="lyrics folder for int8 calibration (default: training corpus)")
    parser.add_argument("--calibration-windows", type=int, default=500, help="calibration windows (>= 300)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset")
    parser.add_argument("--batch", type=int, default=1, help="TFLite batch size (ONNX files take any batch)")
    parser.add_argument("--gate", action="append", default=[], metavar="MODE.LIMIT=X",
                        help="override one parity-gate limit, e.g. int8.min_top1=0.95 (repeatable); limits: "
                             f"{', '.join(LIMIT_NAMES)} (max_ppl_increase 0.01 = +1%%); MODE 'drift' sets a step "
                             "file's limits against the windowed model")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    return parser.parse_args(argv)


def thresholds_from(pairs):
    """{mode: {limit: value}} from --gate MODE.LIMIT=X arguments (X a finite number)."""
    overrides = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        mode, _, limit = name.partition(".")
        try:
            number = float(value)
            if mode not in [*MODES, "drift"] or limit not in LIMIT_NAMES or not math.isfinite(number):
                raise ValueError
        except ValueError:
            raise CarolError(f"--gate takes MODE.LIMIT=NUMBER (modes: {', '.join(MODES)}, drift; limits: "
                             f"{', '.join(LIMIT_NAMES)}; a finite number), not {pair!r}") from None
        overrides.setdefault(mode, {})[limit] = number
    return overrides


def split_list(text, option):
    """The comma-separated names of an option, refusing an empty list."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise CarolError(f"{option} needs at least one name, not {text!r}")
    return names


def table(rows):
    """The closing table, Markdown-shaped so it pastes into a report."""
    lines = ["| file | size | LSTM as | perplexity vs Keras | top-1 | lost chars | max abs dp | step drift vs "
             "windowed: perplexity, top-1, KL | runtimes | status |", "|---|---:|---|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        p = r.parity
        figures = (f"{p['perplexity_increase']:+.2%} | {p['top1']:.4f} | {p['lost']} | {p['max_abs_dp']:.1e}"
                   if p else "- | - | - | -")
        d = p.get("drift") if p else None
        drift = f"{d['perplexity_increase']:+.2%}, {d['top1']:.3f}, {d['mean_kl']:.1e}" if d else "-"
        runtimes = "; ".join(f"{k}: {v}" for k, v in r.runtimes.items()) or "-"
        status = f"{STATUS_MARK[r.status]} {r.status}" + (f": {r.reason}" if r.reason else "")
        lines.append(f"| {r.file} | {r.size / 1024:.0f} KB | {r.lstm_as or '-'} | {figures} | {drift} | {runtimes} "
                     f"| {status} |")
    return "\n".join(lines)


def run(args):
    from .api import export
    formats = tuple(EXPORT_FORMATS) if args.format == "all" else split_list(args.format, "--format")
    modes = split_list(args.quantize, "--quantize")
    graphs = tuple(GRAPHS) if args.graph == "both" else (args.graph,)
    steps = Progress(len(formats) * len(graphs) * len(modes), "carol-export")

    def progress(row):
        steps.step(f"{STATUS_MARK[row.status]} {row.file}")
    output = args.output or (None if args.model else ".")
    rows = export(args.model, formats, modes, out=output, progress=progress, graphs=graphs,
                  calibration_lyrics=args.calibration_lyrics, calibration_windows=args.calibration_windows,
                  opset=args.opset, batch=args.batch, thresholds=thresholds_from(args.gate))
    print(json.dumps([r.to_dict() for r in rows], indent=2) if args.json else table(rows))
    return EXIT_CHECK_FAILED if any(r.status in ("rejected", "failed") for r in rows) else 0


def main(argv=None):
    return run_command(lambda: run(parse_args(argv)))
