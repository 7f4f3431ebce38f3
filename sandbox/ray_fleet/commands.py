"""`sandbox ray up | down | status`: a fleet of sandbox workers on an existing Ray cluster."""
from __future__ import annotations

import argparse
import json
import sys

from sandbox.ray_fleet import DEFAULT_NAME, SCHEME, RayFleetError
from sandbox.ray_fleet.connect import ADDRESS_ENV
from sandbox.ray_fleet.registry import BINDS

DESCRIPTION = f"""\
Sandbox workers on a Ray cluster: each a `sandbox serve` owned by a Ray actor that reserves
its CPUs, spread over the nodes with free CPUs, restarted by Ray when it dies, found by
clients through a registry actor: SandboxClient("{SCHEME}NAME"), or the verl reward's
`addresses: {SCHEME}NAME`. The cluster: --address, else ${ADDRESS_ENV}, else the one `ray`
finds ($RAY_ADDRESS, the last `ray start` here)."""


def _progress(message: str) -> None:
    print(f"sandbox ray: {message}", file=sys.stderr, flush=True)


def _print_status(state, as_json: bool) -> None:
    if as_json:
        print(json.dumps(state.to_dict()))
        return
    header = ("worker", "node", "address", "capacity", "in-flight", "heartbeat")
    rows = [header] + [(w.worker_id, w.node_id[:12], w.address, str(w.capacity),
                        "?" if w.in_flight < 0 else str(w.in_flight), f"{w.age_s:.1f}s ago")
                       for w in state.live]
    if state.live:
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    settings = state.settings
    listen = "127.0.0.1" if settings.bind == "loopback" else "node addresses"
    print(f"{len(state.live)} worker(s) live on {len({w.node_id for w in state.live})} node(s), "
          f"capacity {state.capacity}; listening on {listen}"
          f"{', token required' if settings.token_file else ''}{', TLS' if settings.tls else ''}")
    if state.not_live:
        print(f"{len(state.not_live)} starting, restarting or waiting for resources "
              f"(`ray status` shows pending demands): {', '.join(state.not_live)}")


def cmd_up(args, CliError) -> int:
    from sandbox.ray_fleet.control import up
    requested = {key: value for key, value in (
        ("cpus_per_worker", args.cpus_per_worker), ("resource", args.resource),
        ("bind", args.bind), ("token_file", args.token_file), ("tls_cert", args.tls_cert),
        ("tls_key", args.tls_key), ("tls_ca", args.tls_ca), ("grace_s", args.grace))
        if value is not None}
    try:
        state = up(args.name, workers=args.workers, cpus=args.cpus, fill=args.fill,
                   address=args.address, wait_s=args.wait, max_restarts=args.max_restarts,
                   progress=_progress, **requested)
    except RayFleetError as exc:
        raise CliError(str(exc)) from None
    _print_status(state, args.json)
    expected = len(state.live) + len(state.not_live)
    if args.wait > 0 and state.not_live:
        raise CliError(f"{len(state.live)} of {expected} workers live after {args.wait:g} s; the "
                       "others start when resources free up (`ray status` shows the demand)")
    return 0


def cmd_status(args, CliError) -> int:
    from sandbox.ray_fleet.control import status
    try:
        state = status(args.name, args.address)
    except RayFleetError as exc:
        raise CliError(str(exc)) from None
    _print_status(state, args.json)
    return 0


def cmd_down(args, CliError) -> int:
    from sandbox.ray_fleet.control import down
    try:
        stopped = down(args.name, args.address, progress=_progress)
    except RayFleetError as exc:
        raise CliError(str(exc)) from None
    print(f"fleet {args.name}: {stopped} worker(s) stopped, registry removed")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default=DEFAULT_NAME,
                        help=f"the fleet's name: clients use {SCHEME}NAME (default {DEFAULT_NAME})")
    parser.add_argument("--address", metavar="HOST:PORT",
                        help=f"the Ray cluster (its GCS address; default ${ADDRESS_ENV}, else "
                             "the one `ray` finds)")


def add_commands(sub, CliError) -> None:
    ray = sub.add_parser("ray", help="sandbox workers on a Ray cluster (up, down, status)",
                         description=DESCRIPTION,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = ray.add_subparsers(dest="ray_command", required=True)

    up = verbs.add_parser("up", help="start workers (or change how many run)",
                          description="Create the fleet if needed and bring it to the number of "
                                      "workers asked for; wait until they are live.")
    _common(up)
    how_many = up.add_mutually_exclusive_group()
    how_many.add_argument("--workers", type=int, help="this many workers in all")
    how_many.add_argument("--cpus", type=float, help="workers for this many CPUs in all")
    how_many.add_argument("--fill", action="store_true",
                          help="as many more workers as the free CPUs hold now")
    up.add_argument("--cpus-per-worker", type=float,
                    help="CPUs each worker reserves from Ray; its capacity (submissions at once) "
                         "is this, at least 1 (default 1)")
    up.add_argument("--resource", metavar="NAME",
                    help="only on nodes with this custom Ray resource, one unit per worker "
                         "(e.g. `ray start --resources '{\"sandbox\": 8}'` on CPU-only nodes)")
    up.add_argument("--bind", choices=BINDS,
                    help="loopback (default): workers listen on 127.0.0.1 and serve clients on "
                         "their own machine; node: on the node's address, for the whole cluster "
                         "(needs --token-file)")
    up.add_argument("--token-file", metavar="PATH",
                    help="workers require this bearer token; the path must hold it on every node "
                         "(clients on a node read it there unless they have their own)")
    up.add_argument("--tls-cert", metavar="PEM", help="workers serve TLS with this certificate "
                                                      "(a path on every node)")
    up.add_argument("--tls-key", metavar="PEM", help="the certificate's key (a path on every node)")
    up.add_argument("--tls-ca", metavar="PEM", help="the CA clients trust for the workers' "
                                                    "certificates (a path on every node)")
    up.add_argument("--grace", type=float, help="seconds a stopping worker has to finish what it "
                                                "grades (default 10)")
    up.add_argument("--max-restarts", type=int, default=-1,
                    help="times Ray restarts a worker that dies (default -1: always)")
    up.add_argument("--wait", type=float, default=120.0,
                    help="seconds to wait for the workers to be live (default 120; 0: do not wait)")
    up.add_argument("--json", action="store_true", help="print the fleet's status as JSON")
    up.set_defaults(func=lambda args: cmd_up(args, CliError))

    status = verbs.add_parser("status", help="live workers, their nodes, capacity and load")
    _common(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=lambda args: cmd_status(args, CliError))

    down = verbs.add_parser("down", help="stop every worker and remove the fleet",
                            description="Stop the fleet's workers (each finishes what it grades "
                                        "within the grace) and remove its registry.")
    _common(down)
    down.set_defaults(func=lambda args: cmd_down(args, CliError))
