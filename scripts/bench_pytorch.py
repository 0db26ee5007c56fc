#!/usr/bin/env python3
"""PyTorch's side of `cargo run --release --example compare`: times the same recurrent
workloads with torch.nn.LSTM / GRU / RNN on the CPU and prints one JSON object.

Usage: bench_pytorch.py --threads N [--min-seconds S] [--quick] [--only NAME ...]

Each workload is run in float32, time-major, with `torch.set_num_threads(N)`. "infer" is a
forward pass under `torch.inference_mode()`; "forward" is a forward pass recording the graph for
backward (an input that requires its gradient); "train" is a forward pass and the backward pass
of `output.sum()` to the input and every weight. Times are the median of repeated calls after a
warm-up, in milliseconds. Needs only PyTorch (install it into a virtual environment:
`python3 -m venv .venv && .venv/bin/pip install torch`). `--quick` runs the tiny workloads of
`compare --quick` instead.
"""

import argparse
import json
import statistics
import sys
import time

# (name, T, B, I, H, layers, bidirectional): the workloads of the comparison
WORKLOADS = [
    ("small", 50, 16, 64, 128, 1, False),
    ("medium", 100, 32, 256, 256, 1, False),
    ("large", 100, 64, 512, 512, 1, False),
    ("stream", 100, 1, 128, 256, 1, False),
    ("bi2", 100, 32, 256, 256, 2, True),
]
# the workloads of `compare --quick`
QUICK_WORKLOADS = [
    ("tiny", 5, 2, 8, 8, 1, False),
    ("tiny_b1", 5, 1, 8, 8, 1, False),
    ("tiny_bi2", 5, 2, 8, 8, 2, True),
]
CELLS = ["lstm", "gru", "rnn_tanh"]
MODES = ["infer", "forward", "train"]


def median_ms(fn, min_seconds):
    fn()  # warm-up
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= 200:
            break
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--only", nargs="*", default=None, help="workload names to run")
    parser.add_argument("--quick", action="store_true", help="the tiny workloads instead")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print(json.dumps({"error": "PyTorch is not installed"}))
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    modules = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}
    results = []
    for name, t, b, i, h, layers, bi in QUICK_WORKLOADS if args.quick else WORKLOADS:
        if args.only and name not in args.only:
            continue
        for cell in CELLS:
            net = modules[cell](i, h, num_layers=layers, bidirectional=bi)
            x = torch.randn(t, b, i)
            x_grad = x.clone().requires_grad_(True)

            def infer():
                with torch.inference_mode():
                    net(x)

            def forward():
                net(x_grad)

            def train():
                net.zero_grad(set_to_none=True)
                x_grad.grad = None
                out, _ = net(x_grad)
                out.sum().backward()

            for mode, fn in (("infer", infer), ("forward", forward), ("train", train)):
                ms = median_ms(fn, args.min_seconds)
                results.append({"workload": name, "cell": cell, "mode": mode, "ms": ms})
                print(f"{name} {cell} {mode}: {ms:.3f} ms", file=sys.stderr)
    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": args.threads,
        "results": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
