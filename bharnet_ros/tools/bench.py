"""``bharnet bench model``: speed of the models on this machine, PyTorch eager vs ONNX Runtime CPU.

One run measures, side by side and under the same machine load:

* the machine's fp32 matmul peak (best of numpy and torch on large square matrices, with the
  benchmark's thread count), so model throughput can be read as a fraction of what the cores do;
* per model (batch 1, the live input configuration): windows/s and latency p50/p95 with PyTorch
  eager, ONNX Runtime with 1 and 2 intra-op threads, and an int8 dynamically quantised ONNX model,
  each model's FLOPs (``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix
  products) and the achieved GFLOP/s as a fraction of the peak;
* the int8 model's accuracy cost against fp32: top-1 agreement and the largest probability
  difference over random-but-realistic windows;
* ONNX Runtime's per-op-type time shares (its profiler), to show where the time goes.

The result goes between marker lines in ``docs/benchmarks.md`` (other sections are kept), with the
machine description and the command. ``bench`` has sub-subcommands so that ``bench pipeline``
(pose stage + window + model) can be added next to ``bench model``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.paths import default_model, share_file
from bharnet_ros.core.stats import first_repeat
from bharnet_ros.tools import UsageError, check_count
from bharnet_ros.tools.outputs import check_document, output_option, terminated_as_interrupt
from bharnet_ros.tools.report_doc import command_line, machine_facts, replace_section

# variant key -> (YAML, expert-only, description)
VARIANTS = {
    "expert_only": ("bharnet_e.yaml", True, "BHaRNet-E expert-only"),
    "full": ("bharnet_e.yaml", False, "BHaRNet-E (4 branches)"),
}
LIVE_INPUT = {"frames": 64, "num_persons": 1, "body_layout": "ntu25"}
PEAK_SIZE = 2048
MOST_RUNS = 100_000  # timed runs per measurement: hours already
MOST_THREADS = 256  # ONNX Runtime and torch threads: beyond any CPU this runs on
MOST_WINDOWS = 10_000  # windows of the int8 accuracy check
# label -> (file suffix, op types to quantise (None: all supported), signed int8 weights)
QUANTISATIONS = {
    "ONNX Runtime int8 dynamic, all ops": ("int8_all", None, False),
    "ONNX Runtime int8 dynamic, MatMul/Gemm only": ("int8_matmul", ["MatMul", "Gemm"], True),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``bench model``, ``bench pipeline`` and ``bench soak``."""
    from bharnet_ros.tools import bench_pipeline

    sub = parser.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    model = sub.add_parser("model", help="model speed: PyTorch eager vs ONNX Runtime CPU, int8, %% of peak")
    add_model_arguments(model)
    model.set_defaults(bench_run=run_model)
    pipeline = sub.add_parser("pipeline", help="the real graph at 30 Hz: FPS, latency, CPU, dropped frames")
    bench_pipeline.add_pipeline_arguments(pipeline)
    pipeline.set_defaults(bench_run=bench_pipeline.run_pipeline)
    soak = sub.add_parser(
        "soak", help="the real graph for minutes at 30 Hz: memory growth and bounded queues"
    )
    bench_pipeline.add_soak_arguments(soak)
    soak.set_defaults(bench_run=bench_pipeline.run_soak)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bharnet bench model``."""
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="models to measure"
    )
    parser.add_argument("--out", type=output_option, help="markdown file to update (e.g. docs/benchmarks.md)")
    parser.add_argument("--runs", type=int, default=40, help="timed runs per ONNX Runtime measurement")
    parser.add_argument("--torch-runs", type=int, default=10, help="timed runs per PyTorch measurement")
    parser.add_argument("--threads", type=int, default=2, help="threads for PyTorch, the peak and ORT (max)")
    parser.add_argument(
        "--agreement-windows", type=int, default=64, help="windows for the int8 accuracy check"
    )
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 quantised model")
    parser.add_argument(
        "--shipped",
        type=Path,
        nargs="+",
        default=None,
        metavar="ONNX",
        help="also time these exported models (default: the shipped default), e.g. two exports to compare",
    )
    parser.add_argument(
        "--no-shipped", action="store_true", help="skip the shipped model (not together with --shipped)"
    )


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen ``bench`` sub-subcommand."""
    return int(args.bench_run(args) or 0)


@dataclass(frozen=True)
class Timing:
    """Latencies of repeated batch-1 runs, in seconds."""

    runtime: str
    threads: int
    samples: list[float]

    @property
    def windows_per_s(self) -> float:
        return 1.0 / statistics.fmean(self.samples)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples, q))


def time_calls(call: Callable[[], Any], runs: int, warmup: int = 3) -> list[float]:
    """Wall-clock seconds of ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def matmul_peak(threads: int, size: int = PEAK_SIZE, repeats: int = 6) -> dict[str, float]:
    """Best fp32 GFLOP/s of a ``size`` square matmul with numpy and with torch. The peak is torch's,
    on ``threads`` threads as the models run; numpy's BLAS takes every core it finds, so on a
    machine of more cores than ``threads`` it would overstate what the models could reach."""
    import torch

    torch.set_num_threads(threads)
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    flops = 2.0 * size**3
    numpy_best = flops / min(time_calls(lambda: a @ a, repeats, warmup=1)) / 1e9
    t = torch.from_numpy(a)
    torch_best = flops / min(time_calls(lambda: t @ t, repeats, warmup=1)) / 1e9
    return {"numpy": numpy_best, "torch": torch_best, "peak": torch_best}


def machine_description(threads: int) -> dict[str, str]:
    """The shared machine facts plus torch's version and this benchmark's thread count."""
    facts = machine_facts(("torch", "onnxruntime", "numpy"))
    facts["cores usable"] += f" (benchmark threads: {threads})"
    return facts


def build_live_model(key: str) -> Any:
    """The variant at full width in the live input configuration, with trained-like BN statistics."""
    import torch

    from bharnet_ros.model.attention import freeze_projections
    from bharnet_ros.model.batchnorm import calibrate_batchnorm
    from bharnet_ros.model.bharnet import build_model
    from bharnet_ros.model.config import load_model_config

    yaml_name, expert_only, _ = VARIANTS[key]
    torch.manual_seed(0)
    model = build_model(load_model_config(share_file(f"config/model/{yaml_name}"), {"input": LIVE_INPUT}))
    v, t = 25, LIVE_INPUT["frames"]
    batch = {"body": torch.randn(2, 3, t, v, 1), "hand": torch.randn(2, 3, t, v, 2)}
    calibrate_batchnorm(model, [batch])
    if expert_only:
        model = model.expert_only()
    freeze_projections(model)
    return model.eval()


def onnx_flops(path: Path) -> int | None:
    """FLOPs of one run of an ONNX model: its ``Conv``, ``MatMul`` and ``Gemm`` nodes (2 per MAC).

    Counted on the exported graph, so the built variants and a shipped file are counted alike.
    None where shape inference leaves a counted node's sizes unknown (a ``--dynamic-batch``
    export): a count of 0 would be a wrong number in the table.
    """
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes = {
        info.name: [dim.dim_value for dim in info.type.tensor_type.shape.dim]
        for info in [*graph.value_info, *graph.input, *graph.output]
    }
    shapes.update({init.name: list(init.dims) for init in graph.initializer})
    total = 0
    for node in graph.node:
        if node.op_type in ("Conv", "MatMul", "Gemm"):
            sizes = [shapes.get(name) for name in (node.output[0], *node.input[:2])]
            if any(not size or 0 in size for size in sizes):
                return None
            total += node_macs(node, shapes)
    return 2 * total


def shown_gflops(flops: int | None) -> str:
    """GFLOPs with three decimals, or n/a where they could not be counted."""
    return "n/a" if flops is None else f"{flops / 1e9:.3f}"


def node_macs(node: Any, shapes: dict[str, list[int]]) -> int:
    """Multiply-accumulates of one Conv, MatMul or Gemm node, from its input and output shapes."""
    out = shapes[node.output[0]]
    if node.op_type == "Conv":
        weight = shapes[node.input[1]]  # (C_out, C_in / groups, *kernel)
        return int(np.prod(out)) * int(np.prod(weight[1:]))
    first = shapes[node.input[0]]
    transposed = any(a.name == "transA" and a.i for a in node.attribute)
    inner = first[-2] if transposed else first[-1]
    return int(np.prod(out)) * inner


def torch_call(wrapper: Any, inputs: dict[str, np.ndarray], threads: int) -> Callable[[], Any]:
    """One batch-1 PyTorch eager forward (inference mode) as a callable."""
    import torch

    torch.set_num_threads(threads)
    tensors = [torch.from_numpy(inputs[name]) for name in wrapper.inputs]

    def call() -> None:
        with torch.inference_mode():
            wrapper(*tensors)

    return call


@dataclass
class Candidate:
    """One runtime configuration to time."""

    runtime: str
    threads: int
    call: Callable[[], Any]
    runs: int


def interleaved_timings(candidates: list[Candidate], rounds: int = 4) -> list[Timing]:
    """Time all candidates in alternating blocks, so that a load change on a shared machine hits all
    of them alike; the first call of every block is discarded (thread pools spinning down)."""
    samples: list[list[float]] = [[] for _ in candidates]
    for candidate in candidates:
        time_calls(candidate.call, 0, warmup=2)
    for round_index in range(rounds):
        for index, candidate in enumerate(candidates):
            share = candidate.runs // rounds + (round_index < candidate.runs % rounds)  # sums to runs
            samples[index] += time_calls(candidate.call, share, warmup=1) if share else []
    return [Timing(c.runtime, c.threads, found) for c, found in zip(candidates, samples, strict=True)]


# ONNX Runtime graph optimisation levels compared by the benchmark; "all" is what the node uses.
OPT_LEVELS = ("basic", "extended", "all")


def ort_session(
    path: Path,
    threads: int,
    profile_prefix: str | None = None,
    level: str = "all",
    save_to: Path | None = None,
) -> Any:
    """A CPU session; ``level`` is the graph optimisation level, ``save_to`` writes the optimised graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_call(
    path: Path, inputs: dict[str, np.ndarray], threads: int, level: str = "all"
) -> Callable[[], Any]:
    """One batch-1 ONNX Runtime CPU run as a callable."""
    session = ort_session(path, threads, level=level)
    return lambda: session.run(None, inputs)


def ort_candidates(
    path: Path, inputs: dict[str, np.ndarray], args: argparse.Namespace, workdir: Path
) -> list[Candidate]:
    """fp32 at 1 and ``--threads`` threads, every optimisation level, and the saved optimised graph.

    The saved graph is ONNX Runtime's own output at level "all", loaded again with optimisation off:
    what a deployment that caches the optimised model would run.
    """
    label = "ONNX Runtime fp32"
    candidates = [
        Candidate(label, threads, ort_call(path, inputs, threads), args.runs)
        for threads in sorted({1, args.threads})
    ]
    for level in OPT_LEVELS[:-1]:
        call = ort_call(path, inputs, args.threads, level)
        candidates.append(Candidate(f"{label}, optimisation {level}", args.threads, call, args.runs))
    saved = workdir / f"{path.stem}_optimised.onnx"
    ort_session(path, args.threads, save_to=saved)
    call = ort_call(saved, inputs, args.threads, "none")
    candidates.append(Candidate(f"{label}, saved optimised graph", args.threads, call, args.runs))
    return candidates


def ort_op_shares(path: Path, inputs: dict[str, np.ndarray], threads: int, workdir: Path) -> dict[str, float]:
    """Share of kernel time per op type from ORT's profiler (10 profiled runs)."""
    session = ort_session(path, threads, str(workdir / "ort_profile"))
    for _ in range(10):
        session.run(None, inputs)
    events = json.loads(Path(session.end_profiling()).read_text())
    totals: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"]
    whole = sum(totals.values()) or 1
    return {op: dur / whole for op, dur in totals.most_common(8)}


def quantise(path: Path, name: str, op_types: list[str] | None, signed_weights: bool) -> Path:
    """int8 dynamic quantisation (weights int8, activations quantised at run time).

    The graph is constant-folded first (ONNX Runtime's basic level), so that weights the export
    computes from parameters (DeTGC's folded interpolation) are initializers the quantiser can read.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    folded = path.with_name(f"{path.stem}_folded.onnx")
    ort_session(path, 1, level="basic", save_to=folded)
    out = path.with_name(f"{path.stem}_{name}.onnx")
    weight_type = QuantType.QInt8 if signed_weights else QuantType.QUInt8
    logging.disable(logging.WARNING)  # the quantiser's "consider pre-processing" advice on the root logger
    try:
        quantize_dynamic(str(folded), str(out), weight_type=weight_type, op_types_to_quantize=op_types)
    finally:
        logging.disable(logging.NOTSET)
    return out


def agreement_windows(model: Any, count: int) -> list[dict[str, np.ndarray]]:
    """Random-but-realistic inputs: half demo windows through the real preprocessing, half noise."""
    from bharnet_ros.core.preprocess import PreprocessConfig
    from bharnet_ros.model.export import random_inputs, realistic_inputs

    preprocess = PreprocessConfig(**LIVE_INPUT)
    half = count // 2
    demo = [realistic_inputs(model, preprocess, seed) for seed in range(half)]
    noise = [random_inputs(model, seed) for seed in range(count - half)]
    return demo + noise


def int8_accuracy(fp32: Path, int8: Path, windows: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Top-1 agreement and max |probability difference| of the int8 model vs fp32 (softmax)."""
    from bharnet_ros.core.inference import softmax

    reference, quantised = ort_session(fp32, 2), ort_session(int8, 2)
    agree, max_diff = 0, 0.0
    for inputs in windows:
        p = softmax(reference.run(["logits"], inputs)[0][0])
        q = softmax(quantised.run(["logits"], inputs)[0][0])
        agree += int(p.argmax() == q.argmax())
        max_diff = max(max_diff, float(np.abs(p - q).max()))
    return {"agreement": agree / len(windows), "max_prob_diff": max_diff, "windows": len(windows)}


@dataclass
class ModelResult:
    """Everything measured for one model."""

    name: str
    flops: int | None
    timings: list[Timing]
    op_shares: dict[str, float]
    int8: dict[str, dict[str, float]]  # quantisation label -> accuracy vs fp32
    about: str = ""  # what a file row timed: its inputs and content (the variants share the header's)


def measure_variant(key: str, args: argparse.Namespace, workdir: Path) -> ModelResult:
    """Build, export and time one variant."""
    from bharnet_ros.core.preprocess import PreprocessConfig
    from bharnet_ros.model.export import ExportWrapper, export_onnx, random_inputs

    model = build_live_model(key)
    wrapper = ExportWrapper(model).eval()
    inputs = random_inputs(model)
    path = workdir / f"{key}.onnx"
    labels = [str(i) for i in range(model.config.num_classes)]
    export_onnx(model, path, labels, PreprocessConfig(**LIVE_INPUT))
    flops = onnx_flops(path)
    name = VARIANTS[key][2]
    print(f"[{name}] {shown_gflops(flops)} GFLOPs per window", file=sys.stderr)
    candidates = [
        Candidate("PyTorch eager", args.threads, torch_call(wrapper, inputs, args.threads), args.torch_runs),
        *ort_candidates(path, inputs, args, workdir),
    ]
    int8 = {}
    windows = [] if args.no_int8 else agreement_windows(model, args.agreement_windows)
    for label, (suffix, op_types, signed) in ({} if args.no_int8 else QUANTISATIONS).items():
        int8_path = quantise(path, suffix, op_types, signed)
        candidates.append(
            Candidate(label, args.threads, ort_call(int8_path, inputs, args.threads), args.runs)
        )
        int8[label] = int8_accuracy(path, int8_path, windows)
    return finish(name, flops, candidates, int8, path, inputs, args, workdir)


def file_labels(paths: list[Path]) -> list[str]:
    """Each file's shortest trailing part of its path that no other file ends with: two exports
    both named model.onnx (runs/a/, runs/b/) read alike in every row."""
    labels = []
    for path in paths:
        parts = path.absolute().parts
        others = [other.absolute().parts for other in paths if other.absolute() != path.absolute()]
        depth = next(
            (n for n in range(1, len(parts) + 1) if all(o[-n:] != parts[-n:] for o in others)), len(parts)
        )
        labels.append("/".join(parts[-depth:]))
    return labels


def measure_file(
    path: Path, label: str, inputs: dict[str, np.ndarray], args: argparse.Namespace, workdir: Path
) -> ModelResult:
    """Time an exported model as it is (the shipped default): ONNX Runtime only, on ``inputs``
    (from :func:`file_inputs`, made before any timing); ``label`` names it in the table."""
    flops = onnx_flops(path)
    name = f"shipped `{label}`" if path.resolve() == default_model().resolve() else f"file `{label}`"
    print(f"[{name}] {shown_gflops(flops)} GFLOPs per window", file=sys.stderr)
    result = finish(name, flops, ort_candidates(path, inputs, args, workdir), {}, path, inputs, args, workdir)
    result.about = file_about(path, inputs)
    return result


def file_about(path: Path, inputs: dict[str, np.ndarray]) -> str:
    """What a file's rows timed: its own input shapes and weights, and which file (by SHA-256), since
    the variants' header (live input, untrained weights) does not describe them."""
    shapes = ", ".join(f"{name} `{tuple(array.shape)}`" for name, array in inputs.items())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"the file as exported, batch 1 on its own inputs ({shapes}), its own weights; SHA-256 {digest}…"


def finish(
    name: str,
    flops: int | None,
    candidates: list[Candidate],
    int8: dict[str, dict[str, float]],
    path: Path,
    inputs: dict[str, np.ndarray],
    args: argparse.Namespace,
    workdir: Path,
) -> ModelResult:
    """Time the candidates side by side and profile the fp32 model."""
    timings = interleaved_timings(candidates)
    shares = ort_op_shares(path, inputs, args.threads, workdir)
    for timing in timings:
        print(
            f"[{name}] {timing.runtime} x{timing.threads}: {timing.windows_per_s:.1f} windows/s",
            file=sys.stderr,
        )
    return ModelResult(name, flops, timings, shares, int8)


def run_model(args: argparse.Namespace) -> int:
    """``bharnet bench model``."""
    check_counts(args)
    check_choices(args)
    files = exported_files(args)
    if args.out is not None:
        check_document(args.out, [path for path, _ in files], section="bench-model")
    machine = machine_description(args.threads)
    peak_before = matmul_peak(args.threads)
    # SIGTERM (`timeout`) removes the exports as Ctrl-C does: 21 MB were left per run
    with terminated_as_interrupt(), tempfile.TemporaryDirectory(prefix="bharnet_bench_") as tmp:
        results = [measure_variant(key, args, Path(tmp)) for key in args.variants]
        labels = file_labels([path for path, _ in files])
        results += [
            measure_file(path, label, inputs, args, Path(tmp))
            for (path, inputs), label in zip(files, labels, strict=True)
        ]
    peak_after = matmul_peak(args.threads)
    machine["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    peak = {k: max(peak_before[k], peak_after[k]) for k in peak_before}
    section = render(machine, peak, results, command_line())
    print(section)
    if args.out is not None:
        replace_section(args.out, "bench-model", section)
        print(f"updated {args.out}", file=sys.stderr)
    return 0


def check_counts(args: argparse.Namespace) -> None:
    """Each count of ``bench model`` within its range (0 int8 windows would divide by zero at the end)."""
    for option, value, most in (
        ("--runs", args.runs, MOST_RUNS),
        ("--torch-runs", args.torch_runs, MOST_RUNS),
        ("--threads", args.threads, MOST_THREADS),
        ("--agreement-windows", args.agreement_windows, MOST_WINDOWS),
    ):
        check_count(option, value, 1, most)


def check_choices(args: argparse.Namespace) -> None:
    """UsageError for options that contradict or repeat, before any work: ``--no-shipped`` silently
    dropped the files of ``--shipped``, and a variant or file named twice was measured twice."""
    if args.no_shipped and args.shipped is not None:
        raise UsageError("--no-shipped and --shipped contradict each other; give one of them")
    variant = first_repeat(args.variants)
    if variant is not None:
        raise UsageError(f"--variants names {variant} twice; give each variant once")
    path = first_repeat([path.resolve() for path in args.shipped or []])
    if path is not None:
        raise UsageError(f"--shipped names {path} twice; give each file once")


def exported_files(args: argparse.Namespace) -> list[tuple[Path, dict[str, np.ndarray]]]:
    """The exported models to time besides the variants (``--shipped``, else the default if present),
    each with its batch-1 inputs: all loaded and checked here, before minutes of timing."""
    if args.no_shipped:
        return []
    if args.shipped is not None:
        return [(path, file_inputs(path, "--shipped")) for path in args.shipped]
    path = default_model()
    if not path.is_file():
        print(
            f"note: no shipped model at {path} (make model builds it); timing the variants only",
            file=sys.stderr,
        )
        return []
    return [(path, file_inputs(path, "shipped model"))]


def file_inputs(path: Path, option: str) -> dict[str, np.ndarray]:
    """Batch-1 inputs for an exported model the recognizer loads; UsageError naming ``option`` if not.

    The shapes are the recognizer's (:class:`OnnxClassifier` checks its metadata against the graph
    and runs it once), so a ``--dynamic-batch`` export, whose graph names its batch axis ``batch``
    instead of a number, gets batch 1 like any other.
    """
    from bharnet_ros.core.inference import InferenceError, OnnxClassifier, random_feed

    try:
        classifier = OnnxClassifier(path, providers="cpu")
    except InferenceError as err:
        raise UsageError(f"{option}: {err}") from None
    return random_feed({name: classifier.input_shapes[name] for name in classifier.input_names})


def render(machine: dict[str, str], peak: dict[str, float], results: list[ModelResult], command: str) -> str:
    """The markdown section: command, machine, peak, the table, int8 accuracy and ORT op shares."""
    lines = [
        f"Produced by `{command}`. The BHaRNet-E rows: batch 1, live input: body `(1, 3, 64, 25, 1)` "
        "(ntu25, one person), "
        "hands `(1, 3, 64, 25, 2)`; untrained weights with BatchNorm statistics from random data "
        "(speed does not depend on training). Windows/s = 1 / mean latency; GFLOP/s and % of peak "
        "follow from it; min ms is the fastest run (closest to an idle machine). A file's rows (shipped or "
        "given) time that file as it is, described below the table.",
        "",
        *(f"* {k}: {v}" for k, v in machine.items()),
        f"* fp32 matmul peak ({PEAK_SIZE}^2, best of before/after the runs): torch on the benchmark's "
        f"threads {peak['peak']:.1f} GFLOP/s (numpy, on all its BLAS threads, {peak['numpy']:.1f} GFLOP/s)",
        "",
        "| model | GFLOPs/window | runtime | threads | windows/s | p50 ms | p95 ms | min ms | GFLOP/s "
        "| % of peak |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        name = result.name
        for t in result.timings:
            gflops, rate = shown_gflops(result.flops), "n/a | n/a"
            if result.flops is not None:
                achieved = result.flops * t.windows_per_s / 1e9
                rate = f"{achieved:.1f} | {100 * achieved / peak['peak']:.0f} %"
            lines.append(
                f"| {name} | {gflops} | {t.runtime} | {t.threads} | {t.windows_per_s:.1f} | "
                f"{t.percentile(50) * 1e3:.1f} | {t.percentile(95) * 1e3:.1f} | {min(t.samples) * 1e3:.1f} | "
                f"{rate} |"
            )
    lines.append("")
    for result in results:
        name = result.name
        for label, q in result.int8.items():
            lines.append(
                f"* {name}, {label.removeprefix('ONNX Runtime ')} vs fp32 on {q['windows']:.0f} windows "
                f"(half demo windows through the preprocessing, half noise): top-1 agreement "
                f"{100 * q['agreement']:.0f} %, max probability difference {q['max_prob_diff']:.3f}"
            )
        if result.about:
            lines.append(f"* {name}: {result.about}")
        shares = ", ".join(f"{op} {100 * share:.0f} %" for op, share in result.op_shares.items())
        lines.append(f"* {name} ONNX Runtime fp32 kernel time by op type: {shares}")
    return "\n".join(lines)
