#!/usr/bin/env python3
"""The Python side of `cargo xtask bench --compare`.

Measures Python's own `multiprocessing` on the metrics that `benches/suite` measures for this
project, with the same counts, message sizes and repetitions, and prints one JSON object per
line on stdout:

    {"metric": "pipe_rtt_us", "value": 20.5, "unit": "us", "impl": "python-multiprocessing", ...}

Extra fields echo the parameters used (`count`, `message_bytes`, `start_method`, ...), as the
suite's rows do. Progress goes to stderr. docs/benchmarks.md describes each metric.

    python3 benches/python/baseline.py [--quick] [--only NAME[,NAME...]]

`--quick` uses the suite's `--quick` counts; `--only` runs just the named metrics. Only the
standard library is needed.
"""

import argparse
import array
import ctypes
import json
import multiprocessing
import sys
import time

IMPL = "python-multiprocessing"


# --- work done in the child processes (module level, so that spawn and forkserver find it) ---


def do_nothing():
    pass


def square(x):
    return x * x


def echo(conn):
    """Sends every message back until it receives None."""
    while True:
        message = conn.recv()
        if message is None:
            return
        conn.send(message)


def drain_bytes(conn, count):
    """Receives `count` byte messages, then answers b"done"."""
    for _ in range(count):
        conn.recv_bytes()
    conn.send_bytes(b"done")


def consume(queue, count, done):
    for _ in range(count):
        queue.get()
    done.put(True)


def produce(queue, count):
    item = (1, "abc", 2.5)
    for _ in range(count):
        queue.put(item)


def increment_under_lock(value, count):
    for _ in range(count):
        with value.get_lock():
            value.value += 1


def sum_into(shared, out):
    out.value = sum(shared)


# --- measuring and printing ---


class Run:
    def __init__(self, quick, only):
        self.quick = quick
        self.only = only

    def wants(self, metric):
        return self.only is None or metric in self.only

    def size(self, quick, full):
        return quick if self.quick else full

    def emit(self, metric, value, unit, **params):
        if not self.wants(metric):
            return
        row = {"metric": metric, "value": round(value, 3), "unit": unit, "impl": IMPL}
        row.update(params)
        print(json.dumps(row), flush=True)


def best_of_3(measure):
    """The smallest of three measurements (each a float of seconds)."""
    return min(measure() for _ in range(3))


def spawn_join_ms(run):
    # Start + join of a do-nothing process, one row per start method; best of 3 runs of n.
    n = run.size(10, 40)
    default = multiprocessing.get_start_method()
    for method in ("spawn", "fork", "forkserver"):
        if method not in multiprocessing.get_all_start_methods():
            continue
        ctx = multiprocessing.get_context(method)

        def per_process():
            start = time.perf_counter()
            for _ in range(n):
                p = ctx.Process(target=do_nothing)
                p.start()
                p.join()
            return (time.perf_counter() - start) / n

        params = {"start_method": method, "count": n}
        if method == default:
            params["default"] = True
        run.emit("spawn_join_ms", best_of_3(per_process) * 1e3, "ms", **params)


def pipe_rtt_us(run):
    # An 8-byte message sent to a child that echoes it; 200 warm-up round trips, then the best
    # of 3 runs of n round trips.
    n = run.size(2_000, 20_000)
    message = b"x" * 8
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=echo, args=(theirs,))
    child.start()
    for _ in range(200):
        ours.send(message)
        ours.recv()

    def per_round_trip():
        start = time.perf_counter()
        for _ in range(n):
            ours.send(message)
            ours.recv()
        return (time.perf_counter() - start) / n

    per = best_of_3(per_round_trip)
    ours.send(None)
    child.join()
    run.emit("pipe_rtt_us", per * 1e6, "us", count=n, message_bytes=len(message))


def pipe_bytes_gbps(run):
    # n messages of 1 MiB with send_bytes, one way; the clock stops at the child's "done".
    size = 1 << 20
    n = run.size(200, 2_000)
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=drain_bytes, args=(theirs, n))
    child.start()
    payload = bytes(size)
    start = time.perf_counter()
    for _ in range(n):
        ours.send_bytes(payload)
    ours.recv_bytes()
    elapsed = time.perf_counter() - start
    child.join()
    run.emit("pipe_bytes_gbps", size * n / elapsed / 1e9, "GB/s", count=n, message_bytes=size)


def queue_items_per_s(run):
    # n items (1, "abc", 2.5) from one producer process to one consumer process, timed from
    # starting both until the consumer says it has them all.
    n = run.size(20_000, 200_000)
    queue = multiprocessing.Queue()
    done = multiprocessing.Queue()
    consumer = multiprocessing.Process(target=consume, args=(queue, n, done))
    producer = multiprocessing.Process(target=produce, args=(queue, n))
    start = time.perf_counter()
    consumer.start()
    producer.start()
    done.get()
    elapsed = time.perf_counter() - start
    producer.join()
    consumer.join()
    run.emit("queue_items_per_s", n / elapsed, "items/s", producers=1, consumers=1, count=n)


def lock_uncontended_ns(run):
    # acquire + release of a Lock in this process; best of 3 runs of n.
    n = run.size(100_000, 1_000_000)
    lock = multiprocessing.Lock()

    def per_pair():
        start = time.perf_counter()
        for _ in range(n):
            lock.acquire()
            lock.release()
        return (time.perf_counter() - start) / n

    run.emit("lock_uncontended_ns", best_of_3(per_pair) * 1e9, "ns", count=n)


def value_locked_incr_per_s(run):
    # Two processes each add 1 n times to one shared 64-bit Value under its lock; the time
    # covers starting and joining both.
    n = run.size(20_000, 200_000)
    value = multiprocessing.Value("q", 0)
    workers = [
        multiprocessing.Process(target=increment_under_lock, args=(value, n)) for _ in range(2)
    ]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if value.value != 2 * n:
        sys.exit(f"value_locked_incr_per_s: counted {value.value}, expected {2 * n}")
    run.emit("value_locked_incr_per_s", 2 * n / elapsed, "ops/s", processes=2, count=n)


def array_share_gbps(run):
    # A child sums a shared array of n doubles made by the parent and writes the sum into a
    # shared Value; the time covers starting and joining the child. The array holds ones, so
    # that the sum shows that every element was read.
    n = run.size(1_000_000, 10_000_000)
    shared = multiprocessing.RawArray("d", n)
    ones = array.array("d", [1.0]) * n
    ctypes.memmove(shared, ones.buffer_info()[0], n * 8)
    del ones
    out = multiprocessing.Value("d", 0.0)
    start = time.perf_counter()
    child = multiprocessing.Process(target=sum_into, args=(shared, out))
    child.start()
    child.join()
    elapsed = time.perf_counter() - start
    if out.value != n:
        sys.exit(f"array_share_gbps: the child summed {out.value}, expected {n}")
    run.emit("array_share_gbps", n * 8 / elapsed / 1e9, "GB/s", elements=n)


def pool_map_tasks_per_s(run):
    # Pool(2).map(square, range(n)) with the default chunk size, after a warm-up map of 1000.
    n = run.size(100_000, 1_000_000)
    with multiprocessing.Pool(2) as pool:
        pool.map(square, range(1000))
        start = time.perf_counter()
        results = pool.map(square, range(n))
        elapsed = time.perf_counter() - start
    if results[-1] != (n - 1) ** 2:
        sys.exit("pool_map_tasks_per_s: wrong result")
    run.emit("pool_map_tasks_per_s", n / elapsed, "tasks/s", workers=2, count=n)


def pool_apply_async_tasks_per_s(run):
    # n apply_async(square, i) calls on Pool(2), then every get(), after one warm-up apply.
    n = run.size(5_000, 50_000)
    with multiprocessing.Pool(2) as pool:
        pool.apply(square, (3,))
        start = time.perf_counter()
        pending = [pool.apply_async(square, (i,)) for i in range(n)]
        total = sum(p.get() for p in pending)
        elapsed = time.perf_counter() - start
    if total <= 0:
        sys.exit("pool_apply_async_tasks_per_s: wrong result")
    run.emit("pool_apply_async_tasks_per_s", n / elapsed, "tasks/s", workers=2, count=n)


def manager_list_ops_per_s(run):
    # n append calls on a list proxy of a local Manager, each returning once the server applied it.
    n = run.size(2_000, 20_000)
    with multiprocessing.Manager() as manager:
        shared = manager.list()
        start = time.perf_counter()
        for i in range(n):
            shared.append(i)
        elapsed = time.perf_counter() - start
        if len(shared) != n:
            sys.exit("manager_list_ops_per_s: wrong length")
    run.emit("manager_list_ops_per_s", n / elapsed, "ops/s", count=n)


# In the order the suite prints them.
METRICS = [
    spawn_join_ms,
    pipe_rtt_us,
    pipe_bytes_gbps,
    queue_items_per_s,
    lock_uncontended_ns,
    value_locked_incr_per_s,
    array_share_gbps,
    pool_map_tasks_per_s,
    pool_apply_async_tasks_per_s,
    manager_list_ops_per_s,
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the suite's --quick counts")
    parser.add_argument("--only", metavar="NAME[,NAME...]", help="run only these metrics")
    args = parser.parse_args()
    only = None
    if args.only is not None:
        only = {name for name in args.only.split(",") if name}
        unknown = only - {m.__name__ for m in METRICS}
        if unknown:
            print(f"baseline: unknown metric(s): {', '.join(sorted(unknown))}", file=sys.stderr)
    run = Run(args.quick, only)
    for metric in METRICS:
        if run.wants(metric.__name__):
            print(f"baseline: {metric.__name__}", file=sys.stderr, flush=True)
            metric(run)


if __name__ == "__main__":
    main()
