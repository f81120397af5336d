"""Ingest benchmark: OTLP/HTTP protobuf batches into a running collector, against the raw
insert rate of the same rows into the same store, measured in the same run.

    .venv/bin/python bench/ingest.py                      # SQLite, 400 batches x 512 spans
    .venv/bin/python bench/ingest.py --batches 100 --database-url postgresql+psycopg://...

The collector runs as `throughline serve` in its own process pinned to one core; the
sender runs on the other. The sender keeps `--in-flight` requests open, more spans than the
server's write queue holds, which outruns the store on purpose: the collector must answer
429 with Retry-After instead of growing, so the peak RSS of the server stays bounded.

The raw insert is the writer's own insert (`collector.span_writer.insert_spans`: the
prepared INSERT through the sqlite3 driver's executemany, COPY on PostgreSQL) of the
already-decoded rows, in transactions as large as the writer's largest group commit, on a
fresh store with the same schema and indexes. On a shared machine both rates move with the
load (printed); the server's CPU time per span does not, so it is printed too. The pair
(raw insert, ingest) runs `--repeat` times, each on fresh stores, and the medians are the
result: one SQLite run alone varies by 15 % here.

The server's write queue is bounded at two of the writer's largest group commits by
default: the bound counts the group being written, so with a bound of one group the
writer would commit groups of half that size on average, and SQLite's cost per span grows
as groups shrink (each commit rewrites every index page it touched).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from collector.otlp import decode_protobuf
from collector.span_writer import MAX_BATCH, insert_spans
from store import migrate
from store.engine import make_engine

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ["closed_won_to_contract", "contract_to_project", "time_to_billing", "invoice_to_ar"]
SYSTEMS = ["crm", "clm", "psa", "billing", "erp"]


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def make_batches(count: int, size: int, seed: int = 7) -> list[bytes]:
    """Realistic sync spans: HTTP client semantics plus q2c attributes; 1 in 20 reaches a
    lifecycle stage."""
    rng = random.Random(seed)
    start = 1_767_225_600_000_000_000
    batches = []
    for b in range(count):
        spans = []
        for i in range(size):
            n = b * size + i
            deal = f"OPP-{rng.randrange(50_000):06d}"
            flow = rng.choice(FLOWS)
            system = rng.choice(SYSTEMS)
            t0 = start + n * 1_000_000
            attributes = [
                _kv("http.request.method", "POST"),
                _kv("url.full", f"https://{system}.example.com/api/v2/records/{n}"),
                _kv("server.address", f"{system}.example.com"),
                _kv("http.response.status_code", rng.choice([200, 200, 200, 201, 429, 502])),
                _kv("q2c.deal.id", deal),
                _kv("q2c.system", system),
                _kv("q2c.flow", flow),
                _kv("q2c.amount", round(rng.uniform(500, 90_000), 2)),
                _kv("q2c.currency", rng.choice(["USD", "GBP", "EUR"])),
                _kv("throughline.attempt", rng.randint(1, 3)),
                _kv("idempotency.key", f"{flow}:{deal}:{n}"),
            ]
            if n % 20 == 0:
                attributes += [_kv("q2c.stage", "invoiced"), _kv("q2c.invoice.id", f"INV-{n}")]
            spans.append(
                Span(
                    trace_id=rng.randbytes(16),
                    span_id=rng.randbytes(8),
                    parent_span_id=rng.randbytes(8),
                    name=f"POST /{system}/records",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=t0,
                    end_time_unix_nano=t0 + rng.randrange(5_000_000, 400_000_000),
                    attributes=attributes,
                    status=Status(code=Status.STATUS_CODE_OK),
                )
            )
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=Resource(
                        attributes=[_kv("service.name", "mulesoft-q2c"), _kv("host.name", "mule-1")]
                    ),
                    scope_spans=[ScopeSpans(spans=spans)],
                )
            ]
        )
        batches.append(request.SerializeToString())
    return batches


def raw_insert_rate(url: str, batches: list[bytes], group: int) -> tuple[float, float]:
    """Rows/s inserting the already-decoded rows straight into a fresh store, and this
    process's CPU time per row meanwhile (us)."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    rows = [r for body in batches for r in decode_protobuf(body).rows]
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), group):
        with engine.begin() as conn:
            insert_spans(conn, rows[i : i + group])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    engine.dispose()
    return len(rows) / elapsed, cpu / len(rows) * 1e6


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_ingest(url: str, batches: list[bytes], in_flight: int, queue_max: int) -> dict[str, float]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "THROUGHLINE_DATABASE__URL": url,
        "THROUGHLINE_SERVER__PORT": str(port),
        "THROUGHLINE_SERVER__QUEUE_MAX_SPANS": str(queue_max),
        # Ingest only: no syncs, probes or KPI refresh competing for the server's one core.
        "THROUGHLINE_SCHEDULER__ENABLED": "false",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "throughline", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(server.pid, {0})
        os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                detail = server.stderr.read() if server.stderr else ""
                raise SystemExit(f"server did not start: {detail}") from None
            time.sleep(0.05)
    refused = 0
    client = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=in_flight))
    headers = {"Content-Type": "application/x-protobuf"}

    def send(body: bytes) -> int:
        nonlocal refused
        while True:
            response = client.post(f"{base}/v1/traces", content=body, headers=headers)
            if response.status_code == 200:
                return 1
            if response.status_code in (429, 503):
                refused += 1
                time.sleep(min(float(response.headers.get("Retry-After", "1")), 1.0) / 10)
                continue
            raise SystemExit(f"unexpected {response.status_code}: {response.text[:200]}")

    cpu_before = cpu_seconds(server.pid)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(send, batches))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(server.pid) - cpu_before
    rss = peak_rss_mib(server.pid)
    client.close()
    server.terminate()
    server.wait(timeout=60)
    spans = sum(len(decode_protobuf(b).rows) for b in batches)
    return {
        "spans": spans,
        "seconds": elapsed,
        "rate": spans / elapsed,
        "cpu_us": cpu / spans * 1e6,
        "rss": rss,
        "refused": refused,
    }


def _empty(url: str) -> None:
    engine = make_engine(url)
    migrate.downgrade(engine)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--in-flight",
        type=int,
        default=96,
        help="concurrent requests (default: more spans than the queue bound holds)",
    )
    parser.add_argument(
        "--queue-max",
        type=int,
        default=2 * MAX_BATCH,
        help="server write queue bound, in spans (default: two of the writer's largest "
        "groups, so one can fill while the other commits)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="paired runs (raw insert, then ingest); medians"
    )
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp folder")
    args = parser.parse_args()

    batches = make_batches(args.batches, args.batch_size)
    print(
        f"{len(batches)} OTLP protobuf batches x {args.batch_size} spans "
        f"({sum(map(len, batches)) / len(batches) / 1024:.0f} KiB each), "
        f"{args.repeat} paired runs"
    )
    if args.database_url:
        print("note: --database-url is emptied (migrated down) before every run")
    # The raw insert runs on the core the server will get, so both see the same load.
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    load = os.getloadavg()
    pairs = []
    for n in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as tmp:

            def url(name: str, tmp: str = tmp) -> str:
                return args.database_url or f"sqlite:///{tmp}/{name}.db"

            if args.database_url:
                _empty(args.database_url)
            raw, raw_cpu_us = raw_insert_rate(url("raw"), batches, group=MAX_BATCH)
            if args.database_url:
                _empty(args.database_url)
            result = run_ingest(url("ingest"), batches, args.in_flight, args.queue_max)
        pairs.append((raw, raw_cpu_us, result))
        print(
            f"run {n}: raw insert {raw:,.0f} spans/s (CPU {raw_cpu_us:.1f} us/span) | "
            f"ingest {result['rate']:,.0f} spans/s (server CPU {result['cpu_us']:.1f} us/span, "
            f"peak RSS {result['rss']:.0f} MiB, {result['refused']:.0f} refused) | "
            f"ratio {result['rate'] / raw:.2f}"
        )
    raw = statistics.median(p[0] for p in pairs)
    raw_cpu_us = statistics.median(p[1] for p in pairs)
    rate = statistics.median(p[2]["rate"] for p in pairs)
    cpu_us = statistics.median(p[2]["cpu_us"] for p in pairs)
    ratio = statistics.median(p[2]["rate"] / p[0] for p in pairs)
    rss = max(p[2]["rss"] for p in pairs)
    refused = sum(p[2]["refused"] for p in pairs)
    print(f"medians of {len(pairs)} paired runs:")
    print(
        f"raw insert of the same rows, same indexes:     {raw:>10,.0f} spans/s "
        f"(CPU {raw_cpu_us:.1f} us/span in the inserting process)"
    )
    print(
        f"OTLP/HTTP ingest, stored (server on 1 core):   {rate:>10,.0f} spans/s "
        f"(server CPU {cpu_us:.1f} us/span = {1e6 / cpu_us:,.0f} spans per CPU-second)"
    )
    print(
        f"ratio ingest / raw insert (median of the pairs): {ratio:.2f}  (target >= 0.5; "
        f"target rate >= 30,000 spans/s on SQLite)"
    )
    print(
        f"CPU per span, raw insert / server: {raw_cpu_us / cpu_us:.2f} (less sensitive to "
        "other load than the rates; on PostgreSQL the database's own CPU is in neither)"
    )
    print(
        f"server peak RSS (largest run): {rss:.0f} MiB; requests refused with 429/503 and "
        f"retried: {refused:.0f} over all runs (queue bound {args.queue_max:,} spans, "
        f"{args.in_flight} requests in flight = {args.in_flight * args.batch_size:,} spans)"
    )
    after = os.getloadavg()
    print(
        f"load average (1/5/15 min) at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"at end {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
