"""CPU time of the hot paths in process, with and without each of this head's shortcuts, in the
same run: what the HTTP benches cannot show on a machine whose speed moves by a third between runs.

    python bench/bench_in_process.py                # both, 3 rounds
    python bench/bench_in_process.py --rounds 5 --filings 600 --tokens 2000

- **filing** (issue 12): the real app (``create_app``) called as an ASGI app by this process (no
  socket, no HTTP parser), one citizen's filing after another: ``GET .../prefill`` then
  ``POST /api/v1/dossiers`` with the prefilled values, as ``bench_file_dossier.py`` files them (its
  register, citizens and tokens, built the same way, not timed). CPU time (``time.process_time``,
  every thread of this process) per filing, for the temporary absence and the exam registration,
  with the units of work on the event loop (``web.deps.in_unit(inline=True)``, the head) and in the
  thread pool (``UnitOfWork.starts_at_once`` switched off: one hop to the pool and back per
  request, as before).
- **token** (issue 13): the client-credentials token's unit of work alone (``Provider`` on a
  connection, the grant, the JWT, the row, the commit), with the signing key held by the process
  (``keys.SigningKeys``, the head) and read from its row each time.

Rounds alternate the variants; the table gives each round's figures and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("DINHDANH_OIDC_ISSUER", "https://dinhdanh.bench")


def _call(app, method: str, path: str, token: str, body: bytes = b""):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode()),
                         (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 80), "state": {}}
    sent, out, chunks = [False], {}, []

    async def receive():
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    async def run():
        await app(scope, receive, send)
        return out["status"], b"".join(chunks)

    return run()


def filing_cpu(service: str, filings: int, rounds: int, work: Path) -> dict[str, list[float]]:
    """ms of CPU a filing, per round, on the loop and in the pool."""
    import bench_file_dossier as fd
    from dinhdanh.store.engine import make_engine
    from dinhdanh.store.unit_of_work import UnitOfWork
    from dinhdanh.web.app import create_app

    fd.use_service(service)
    db, tokens = fd.build(3000, 40, work / service)
    app = create_app(make_engine(db))

    async def one(i: int) -> None:
        _, token = tokens[i % len(tokens)]
        status, body = await _call(app, "GET", fd.PREFILL, token)
        assert status == 200, body
        data = fd.nested(json.loads(body)["fields"])
        for name, value in fd.ASKED.items():
            data.setdefault(name, value)
        payload = json.dumps({"service": fd.SERVICE, "data": data}, ensure_ascii=False).encode()
        status, body = await _call(app, "POST", fd.DOSSIERS, token, payload)
        assert status == 201, body

    async def measure(count: int) -> float:
        started = time.process_time()
        for i in range(count):
            await one(i)
        return (time.process_time() - started) / count * 1000

    out: dict[str, list[float]] = {"loop": [], "pool": []}
    on_loop = UnitOfWork.starts_at_once
    try:
        asyncio.run(measure(100))  # warm-up
        for _ in range(rounds):
            for variant in ("loop", "pool"):
                UnitOfWork.starts_at_once = on_loop if variant == "loop" else property(lambda self: False)
                out[variant].append(asyncio.run(measure(filings)))
    finally:
        UnitOfWork.starts_at_once = on_loop
    return out


def token_cpu(count: int, rounds: int, work: Path) -> dict[str, list[float]]:
    """µs of CPU a client-credentials token's unit of work, per round, key held and key read."""
    import bench_token_peer as tp
    from dinhdanh.oidc import keys
    from dinhdanh.oidc.server import HttpRequest, Provider
    from dinhdanh.store.engine import make_engine
    from dinhdanh.store.unit_of_work import UnitOfWork
    from dinhdanh.store.vault import for_database

    db = f"sqlite:///{work / 'tokens.sqlite'}"
    setup = tp.setup_ours(db, 1)
    engine = make_engine(db)
    uow, vault, issuer = UnitOfWork(engine), for_database(db), os.environ["DINHDANH_OIDC_ISSUER"]
    http = HttpRequest("POST", issuer + "/token", headers=[("authorization", tp._basic(setup["partner"])),
                                                           ("content-type", "application/x-www-form-urlencoded")],
                       form=[("grant_type", "client_credentials"), ("scope", "dinhdanh.verify")], ip="127.0.0.1")

    def measure(held) -> float:
        started = time.process_time()
        for _ in range(count):
            with uow.begin() as conn:
                status, body, _ = Provider(conn, vault, issuer, held_keys=held).create_token_response(http)
            assert status == 200, body
        return (time.process_time() - started) / count * 1e6

    measure(keys.SigningKeys())  # warm-up
    out: dict[str, list[float]] = {"held": [], "read": []}
    for _ in range(rounds):
        out["held"].append(measure(keys.SigningKeys()))
        out["read"].append(measure(None))
    engine.dispose()
    return out


def main() -> None:
    from common import machine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--filings", type=int, default=400, help="filings a round and variant")
    parser.add_argument("--tokens", type=int, default=1500, help="token units a round and variant")
    parser.add_argument("--only", choices=("filing", "token"))
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-in-process-") as tmp:
        work = Path(tmp)
        rows = []
        if args.only in (None, "filing"):
            for service in ("1.003677", "dd.national-exam-registration"):
                (work / service).mkdir()
                got = filing_cpu(service, args.filings, args.rounds, work)
                rows.append((f"filing {service} (ms of CPU)", "units on the loop", "units in the pool", got["loop"],
                             got["pool"]))
        if args.only in (None, "token"):
            got = token_cpu(args.tokens, args.rounds, work)
            rows.append(("client-credentials unit (µs of CPU)", "signing key held", "key's row read", got["held"],
                         got["read"]))
    print()
    print("| path | head | rounds | median | before | rounds | median | head / before |")
    print("|---|---|---|---:|---|---|---:|---:|")
    for path, head, before, ours, theirs in rows:
        fmt = ", ".join
        print(f"| {path} | {head} | {fmt(f'{x:.2f}' for x in ours)} | {statistics.median(ours):.2f} | {before} | "
              f"{fmt(f'{x:.2f}' for x in theirs)} | {statistics.median(theirs):.2f} | "
              f"{statistics.median(ours) / statistics.median(theirs):.2f} |")


if __name__ == "__main__":
    main()
