"""Command line: `paymember serve`, `paymember loadtest` and `paymember bench service`."""

from __future__ import annotations

import argparse

from loadtests import limits


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add `serve` and `loadtest` to `sub` and `service` to `bench`."""
    s = sub.add_parser("serve", help="run the HTTP service (N shard processes)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8080,
                   help="port of shard 0; shard i listens on port+i (0: free ports)")
    s.add_argument("--shards", type=int, default=1, help="shard processes, one engine each")
    s.add_argument("--journal", metavar="DIR", help="journal directory (one subdir per shard)")
    s.add_argument("--fsync", default="always", metavar="POLICY",
                   help="journal fsync policy: always (default), <N>ms, or off")
    s.add_argument("--program", action="append", default=[], metavar="FILE",
                   help="loyalty program TOML (repeatable)")
    s.add_argument("--verify", choices=("hmac", "rsa"), default="hmac",
                   help="notification signatures: shared-key HMAC-SHA256 or platform RSA-SHA256")
    s.add_argument("--insecure-no-verify", action="store_true",
                   help="accept unsigned requests (loopback benchmarks only)")
    s.add_argument("--plaintext", action="store_true",
                   help="also accept plaintext resources (algorithm NONE)")
    s.add_argument("--columns-max", type=int, default=limits.COLUMNS_PAYMENTS_MAX,
                   metavar="N", help="most payments a /v1/payments:columns body "
                   f"(1..{limits.COLUMNS_PAYMENTS_LIMIT}; default %(default)s)")
    s.add_argument("--columns-body-max", type=int, default=limits.COLUMNS_BODY_BYTES_MAX,
                   metavar="BYTES", help="largest /v1/payments:columns body "
                   f"(1..{limits.COLUMNS_BODY_BYTES_LIMIT}; default %(default)s)")
    s.add_argument("--urls-file", metavar="FILE", help="write the shards' URLs here as JSON")
    s.set_defaults(func=_serve)

    lt = sub.add_parser("loadtest", help="start the service and Locust, run a load scenario")
    lt.add_argument("scenario", help="load scenario TOML (scenarios/load_*.toml)")
    lt.add_argument("--duration", type=float, help="override the scenario's duration, seconds")
    lt.add_argument("--out", default="reports/runs/loadtest", help="output directory")
    lt.add_argument("--shards", type=int, help="override the scenario's shard count")
    lt.add_argument("--processes", type=int,
                    help="generator processes (Locust workers; default: scenario)")
    lt.add_argument("--members", type=int, help="override the scenario's member population")
    lt.add_argument("--generator", choices=("locust", "fast"),
                    help="locust (the whole mix) or fast (pre-built notifications, open loop)")
    lt.add_argument("--scaling", action="store_true",
                    help="run the scenario at each of --shards-list and --members-list and "
                         "write DIR/scaling.json and DIR/scaling.html")
    lt.add_argument("--shards-list", default="1,2", help="shard counts for --scaling")
    lt.add_argument("--members-list", default="10000,100000,1000000",
                    help="member populations for --scaling")
    lt.set_defaults(func=_loadtest)

    b = bench.add_parser("service", help="service throughput against a trivial endpoint "
                                         "(our generator, and wrk)")
    b.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    b.add_argument("--connections", type=int, default=64, help="closed-loop connections")
    b.add_argument("--threads", type=int, default=1, help="wrk threads")
    b.add_argument("--batch-only", action="store_true",
                   help="the batch endpoints only (JSON batches, columnar bodies on 1 and 2 "
                        "shards)")
    b.set_defaults(func=_bench_service)


def _serve(args: argparse.Namespace) -> int:
    from loadtests.server import run
    from loadtests.settings import Settings

    settings = Settings(host=args.host, port=args.port, shards=args.shards,
                        programs=tuple(args.program), journal=args.journal, fsync=args.fsync,
                        verify="off" if args.insecure_no_verify else args.verify,
                        allow_plaintext=args.plaintext, urls_file=args.urls_file,
                        columns_payments_max=args.columns_max,
                        columns_body_bytes_max=args.columns_body_max)
    return run(settings)


def _loadtest(args: argparse.Namespace) -> int:
    from loadtests.runner import run_loadtest

    if args.duration is not None and not 0 < args.duration <= limits.LOADTEST_DURATION_S_MAX:
        print(f"paymember loadtest: --duration must be in (0, {limits.LOADTEST_DURATION_S_MAX}]")
        return 2
    if args.scaling:
        from loadtests.scaling import run_scaling

        try:
            shards = [int(x) for x in args.shards_list.split(",")]
            members = [int(x) for x in args.members_list.split(",")]
        except ValueError:
            print("paymember loadtest: --shards-list and --members-list take integers a,b,c")
            return 2
        return run_scaling(args.scenario, args.out, shards, members, duration_s=args.duration,
                           processes=args.processes, generator=args.generator)
    return run_loadtest(args.scenario, args.out, duration_s=args.duration, shards=args.shards,
                        processes=args.processes, members=args.members,
                        generator=args.generator)


def _bench_service(args: argparse.Namespace) -> int:
    from loadtests.bench import run_bench

    return run_bench(args.duration, args.connections, args.threads, args.batch_only)
