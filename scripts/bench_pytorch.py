#!/usr/bin/env python3
"""PyTorch's side of `cargo run --release --example compare`: times recurrent workloads with
torch.nn.LSTM / GRU / RNN on the CPU, and torch.matmul on one thread for the machine's peak.

Usage:
  bench_pytorch.py --serve --threads N
  bench_pytorch.py --threads N [--min-seconds S] [--quick] [--only NAME ...]

Every workload runs in float32, time-major, with `torch.set_num_threads(N)`. "infer" is a
forward pass under `torch.inference_mode()`; "forward" is a forward pass recording the graph
for backward (an input that requires its gradient); "train" is a forward pass and the backward
pass of `output.sum()` to the input and every weight. A time is the median of repeated calls
after two warm-up calls, over at least five calls and S seconds (at most 200 calls), in
milliseconds. Needs only PyTorch (install it into a virtual environment:
`python3 -m venv .venv && .venv/bin/pip install torch`).

--serve (what `compare` uses, so that it can alternate the two libraries entry by entry and
round by round): a session of one JSON object per line each way.
  - On start the script writes {"torch_version": "...", "threads": N}, or {"error": "..."}
    and exits (PyTorch cannot be imported).
  - {"op": "time", "cell": "lstm" | "gru" | "rnn_tanh", "mode": "infer" | "forward" | "train",
     "T": int, "B": int, "I": int, "H": int, "layers": int, "bidirectional": bool,
     "min_seconds": float}
    answers {"ms": float}. The module (seeded from 0 when first built) and its random input are
    built once per cell and shape and kept for the rest of the session.
  - {"op": "matmul", "n": int, "min_seconds": float} answers {"ms": float, "gflops": float,
    "threads": 1}: `torch.matmul` of two random n x n float32 matrices into a preallocated
    output with the thread count set to 1 for the measurement and restored after it; GFLOP/s
    count 2 n^3.
  - A request that cannot be carried out answers {"error": "..."}; the session goes on.
  - End of input ends the session.
Nothing else is written to standard output; messages go to standard error.

Without --serve the script times every workload of the comparison (the tiny ones of
`compare --quick` with --quick) once, and torch.matmul of 2048 x 2048 (256 x 256 with --quick),
and prints one JSON object: {"torch_version", "threads", "matmul_gflops", "results": [{"workload",
"cell", "mode", "ms"}, ...]}.
"""

import argparse
import json
import statistics
import sys
import time

# (name, T, B, I, H, layers, bidirectional): the workloads of the comparison (the same in
# examples/compare.rs)
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
# the size of the square product that measures the single-thread peak
PEAK_N = 2048
QUICK_PEAK_N = 256


def median_ms(fn, min_seconds):
    """The median time of `fn()` in milliseconds: two warm-up calls, then at least five calls
    and `min_seconds`, at most 200 calls."""
    fn()
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


class Bench:
    """The modules and inputs built so far, one per cell and shape, and the timing of a mode or
    of torch.matmul on them."""

    def __init__(self, torch, threads):
        self.torch = torch
        self.threads = threads
        self.modules = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}
        self.built = {}

    def entry(self, cell, shape):
        """The (module, input, input requiring its gradient) of `cell` on `shape` =
        (T, B, I, H, layers, bidirectional), built on first use."""
        key = (cell, shape)
        if key not in self.built:
            if cell not in self.modules:
                raise ValueError(f"unknown cell {cell!r}, expected one of {CELLS}")
            t, b, i, h, layers, bi = shape
            self.torch.manual_seed(0)
            net = self.modules[cell](i, h, num_layers=layers, bidirectional=bi)
            x = self.torch.randn(t, b, i)
            self.built[key] = (net, x, x.clone().requires_grad_(True))
        return self.built[key]

    def time_ms(self, cell, mode, shape, min_seconds):
        """Milliseconds of one `mode` call of `cell` on `shape`."""
        torch = self.torch
        net, x, x_grad = self.entry(cell, shape)

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

        calls = {"infer": infer, "forward": forward, "train": train}
        if mode not in calls:
            raise ValueError(f"unknown mode {mode!r}, expected one of {MODES}")
        return median_ms(calls[mode], min_seconds)

    def matmul(self, n, min_seconds):
        """torch.matmul of two n x n float32 matrices on one thread: (ms, GFLOP/s)."""
        torch = self.torch
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        torch.set_num_threads(1)
        try:
            ms = median_ms(lambda: torch.matmul(a, b, out=c), min_seconds)
        finally:
            torch.set_num_threads(self.threads)
        return ms, 2 * n**3 / ms / 1e6


def field(request, name, kind):
    """`request[name]`, checked to be of type `kind`."""
    if name not in request:
        raise ValueError(f"the request has no {name!r}")
    value = request[name]
    # a JSON integer is a valid float; a bool is not a valid int here
    ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
    if not ok or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{name!r} must be {kind.__name__}, got {value!r}")
    return value


def answer(bench, request):
    """The answer to one request of the --serve protocol."""
    if not isinstance(request, dict):
        raise ValueError("a request is a JSON object")
    op = request.get("op")
    if op == "time":
        shape = (
            field(request, "T", int),
            field(request, "B", int),
            field(request, "I", int),
            field(request, "H", int),
            field(request, "layers", int),
            field(request, "bidirectional", bool),
        )
        ms = bench.time_ms(
            field(request, "cell", str),
            field(request, "mode", str),
            shape,
            field(request, "min_seconds", float),
        )
        return {"ms": ms}
    if op == "matmul":
        ms, gflops = bench.matmul(field(request, "n", int), field(request, "min_seconds", float))
        return {"ms": ms, "gflops": gflops, "threads": 1}
    raise ValueError(f"unknown op {op!r}, expected 'time' or 'matmul'")


def send(obj):
    """Writes one line of the protocol."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(torch, threads):
    """The --serve session: one answer per request line until the end of input."""
    bench = Bench(torch, threads)
    send({"torch_version": torch.__version__, "threads": threads})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            send(answer(bench, json.loads(line)))
        except Exception as e:  # noqa: BLE001 - one bad request does not end the session
            send({"error": f"{type(e).__name__}: {e}"})
    return 0


def run_all(torch, args):
    """Without --serve: every workload once, and the matmul peak, as one JSON object."""
    bench = Bench(torch, args.threads)
    results = []
    for name, t, b, i, h, layers, bi in QUICK_WORKLOADS if args.quick else WORKLOADS:
        if args.only and name not in args.only:
            continue
        for cell in CELLS:
            for mode in MODES:
                ms = bench.time_ms(cell, mode, (t, b, i, h, layers, bi), args.min_seconds)
                results.append({"workload": name, "cell": cell, "mode": mode, "ms": ms})
                print(f"{name} {cell} {mode}: {ms:.3f} ms", file=sys.stderr)
    _, gflops = bench.matmul(QUICK_PEAK_N if args.quick else PEAK_N, args.min_seconds)
    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": args.threads,
        "matmul_gflops": gflops,
        "results": results,
    }))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--serve", action="store_true", help="answer requests on stdin")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--only", nargs="*", default=None, help="workload names to run")
    parser.add_argument("--quick", action="store_true", help="the tiny workloads instead")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"error": f"PyTorch cannot be imported: {e}"}))
        return 0
    torch.set_num_threads(args.threads)
    return serve(torch, args.threads) if args.serve else run_all(torch, args)


if __name__ == "__main__":
    sys.exit(main())
