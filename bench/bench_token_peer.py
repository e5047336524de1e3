"""The token endpoint against a certified peer (panva's oidc-provider): client-credentials tokens/s,
refresh-token rotations/s and JWKS answers/s, each server measured the same way, and the ratio.

    python bench/bench_token_peer.py --seconds 10
    python bench/bench_token_peer.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Servers, all pinned to core 0 (``taskset``) and started together, on loopback; one at a time is
loaded while the others wait idle (``--rounds``, below):

- ours: the real app (``create_app``) on uvicorn (httptools, uvloop), one worker, as
  ``dinhdanh serve`` runs it, its logs included: JSON lines at INFO (serve's default), one access
  line a request, written to a file (``--log-level WARNING``: without them; before 2026-12-07 the
  bench ran ours without, so earlier figures have no access log); a SQLite register (or a scratch PostgreSQL database), one approved
  partner (``client_secret_basic``, ``client_credentials``, scope ``dinhdanh.verify``) and one approved
  relying party (``authorization_code`` + ``refresh_token``), registered with the service functions
  the CLI calls (``oidc.clients.register_client`` / ``approve_client``). Every token is a JWT (ES256)
  whose row is written and committed before the answer; a refresh marks the old token rotated
  (reuse detection) and writes the new access and refresh rows, in one transaction.
- peer: ``oidc-provider`` (pinned ``PEER_VERSION``) installed with npm into
  ``~/.cache/dinhdanh-bench/oidc-provider`` (outside the package), on Node's own HTTP server
  (``provider.listen``), its default in-memory adapter (nothing is written to disk), no request
  log (its default). Clients alike: a ``client_secret_basic`` partner with ``client_credentials``, a relying party with
  ``authorization_code`` + ``refresh_token``; ``rotateRefreshToken: true``; access tokens are JWTs
  signed ES256 (``resourceIndicators`` with a default resource whose ``accessTokenFormat`` is
  ``jwt``), as ours are. Its refresh tokens are minted before each run through its own models
  (``provider.Grant`` + ``provider.RefreshToken``, saved through the adapter) — what its
  authorization-code exchange would store, without the browser interaction; the token endpoint
  then treats them as any other. Ours get theirs from real logins (authorize, passcode, consent,
  code exchange) before the server starts.
- floor (SQLite only): a bare ASGI callable on the same uvicorn doing the plainest form of ours'
  work on the same database file with the raw ``sqlite3`` driver: Basic credentials against the
  stored SHA-256, an ES256 JWT signed with joserfc, one INSERT (client credentials), or one
  SELECT + UPDATE (rotated) + two INSERTs (refresh), commit, JSON answer.

Load: one generator (this file with ``--load``, Python asyncio streams on uvloop) pinned to core 1,
``--connections`` keep-alive HTTP/1.1 connections each sending its next request when the last
answer arrived — identical for both servers. Refresh: each connection is one refresh chain and
always presents the refresh token of its previous answer (a failed answer breaks the chain and
counts as an error); each run starts fresh chains (``chains``: the peer's refresh grows dearer as a
chain grows longer, ours does not). A warm-up (``--warmup`` seconds) precedes each measured run.

``--generator wrk``: the same load sent by wrk instead (Debian's ``wrk`` package; pinned to core 1,
one thread for client credentials and JWKS, one thread a refresh chain; its latencies), as an
independent check of the generator. wrk stops with requests in flight, which would leave a chain on a token the server
already rotated, so its warm-up starts chains of its own too. Fresh chains: ours and the floor's
are minted at start-up, as many as the runs need; the peer's by its own models just before each
run, since its in-memory adapter, an LRU of 1,000 entries, evicts older ones.

Rounds (``--rounds``, 3 by default): in each, every grant goes to every server in turn, in the
reverse order every other round. This machine's speed drifts by a third over minutes (other
work on it); runs of the two servers close together in time see the same machine, so the ratio
printed is the median of the rounds' ratios, and the throughputs the median run's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import drop_database, free_port, machine, percentile, pinned, population_file, read_body, scratch_database, wait_up

HERE = Path(__file__).resolve()
ISSUER = "https://dinhdanh.bench"
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent.parent / "src"), "DINHDANH_OIDC_ISSUER": ISSUER}
PEER_VERSION = "9.13.3"
PEER_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dinhdanh-bench" / "oidc-provider"
REDIRECT = "https://rp.example/cb"
GRANTS = ("client_credentials", "refresh_token", "jwks")

# ----------------------------------------------------------------------------- the peer

PEER_SERVER = r"""
// oidc-provider for the token benchmark: written by bench/bench_token_peer.py, run by Node.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const [port, out, mintPort] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const issuer = `http://127.0.0.1:${port}`;
const api = 'https://api.bench';
const secret = (n) => randomBytes(n).toString('base64url');
const jwk = (pair) => pair.privateKey.export({ format: 'jwk' });
const es256 = { ...jwk(generateKeyPairSync('ec', { namedCurve: 'P-256' })), alg: 'ES256', use: 'sig', kid: 'es' };
const rs256 = { ...jwk(generateKeyPairSync('rsa', { modulusLength: 2048 })), alg: 'RS256', use: 'sig', kid: 'rs' };
const partner = { client_id: 'bench-partner', client_secret: secret(32) };
const rp = { client_id: 'bench-rp', client_secret: secret(32) };

const provider = new Provider(issuer, {
  clients: [
    { ...partner, grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic', scope: 'api:read' },
    { ...rp, grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      redirect_uris: ['https://rp.example/cb'], token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid offline_access api:read' },
  ],
  jwks: { keys: [es256, rs256] },
  scopes: ['openid', 'offline_access', 'api:read'],
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  rotateRefreshToken: true,
  ttl: { AccessToken: 600, ClientCredentials: 600, RefreshToken: 30 * 24 * 3600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => api,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: 'api:read', audience: api, accessTokenTTL: 600, accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});

// refresh tokens as the authorization-code exchange stores them (offline_access, the API's scope)
const client = await provider.Client.find(rp.client_id);
let accounts = 0;
async function mint(n) {
  const made = [];
  for (let i = 0; i < n; i += 1) {
    const accountId = `account-${accounts}`;
    accounts += 1;
    const grant = new provider.Grant({ accountId, clientId: rp.client_id });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope(api, 'api:read');
    const grantId = await grant.save();
    const now = Math.floor(Date.now() / 1000);
    const token = new provider.RefreshToken({
      accountId, client, grantId, gty: 'authorization_code', scope: 'offline_access api:read',
      resource: api, rotations: 0, authTime: now, iiat: now,
    });
    made.push(await token.save());
  }
  return made;
}
// every run's fresh chains, minted just before it (bench_token_peer.fresh_chains): the in-memory
// adapter is an LRU of 1,000 entries, which would have evicted tokens minted at start-up
createServer(async (req, res) => {
  const n = Number(new URL(req.url, 'http://x').searchParams.get('n'));
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(await mint(n)));
}).listen(mintPort, '127.0.0.1');
provider.listen(port, '127.0.0.1', () => {
  writeFileSync(out, JSON.stringify({ partner, rp, mint_port: mintPort }));
});
"""


def install_peer() -> Path:
    """oidc-provider ``PEER_VERSION`` in the cache directory (npm; once)."""
    installed = PEER_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != PEER_VERSION:
        PEER_DIR.mkdir(parents=True, exist_ok=True)
        (PEER_DIR / "package.json").write_text(json.dumps({"name": "dinhdanh-bench-peer", "private": True,
                                                           "type": "module"}))
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                        f"oidc-provider@{PEER_VERSION}"], cwd=PEER_DIR, check=True)
    script = PEER_DIR / "peer_server.mjs"
    script.write_text(PEER_SERVER)
    return script


def start_peer(script: Path, port: int, work: Path) -> tuple[subprocess.Popen, dict]:
    out = work / f"peer-{port}.json"
    server = subprocess.Popen([*pinned(0), "node", str(script), str(port), str(out), str(free_port())],
                              cwd=PEER_DIR, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not out.exists():
        if server.poll() is not None:  # its own error, if it wrote one, is above
            raise SystemExit(f"oidc-provider did not start: node exited with status {server.returncode}")
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit("oidc-provider did not start: no clients written within 60 s")
        time.sleep(0.1)
    time.sleep(0.1)
    return server, json.loads(out.read_text())


# ----------------------------------------------------------------------------- ours and the floor

def setup_ours(db: str, chains: int) -> dict:
    """Register, clients, and ``chains`` refresh tokens from real logins (not timed)."""
    import httpx
    import sqlalchemy as sa

    from bench_oidc import _login
    from dinhdanh.eid import auth
    from dinhdanh.oidc import clients
    from dinhdanh.population.importer import import_population
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.engine import make_engine, upgrade
    from dinhdanh.store.vault import for_database
    from dinhdanh.web.app import create_app
    from dinhdanh.web.oidc import set_issuer

    engine = make_engine(db)
    upgrade(engine)
    import_population(engine, population_file(10_000, 7))
    vault = for_database(db)
    with engine.begin() as conn:
        pids = conn.execute(sa.select(persons.c.pid).where(persons.c.status == "alive",
                                                           persons.c.date_of_birth < dt.date(2005, 1, 1))
                            .order_by(persons.c.person_id).limit(chains)).scalars().all()
        for pid in pids:
            auth.enroll(conn, vault, pid, level=1, passcode="135790", actor="bench")
        rp = clients.register_client(conn, name="Bench RP", redirect_uris=[REDIRECT], scopes="openid profile",
                                     grant_types=["authorization_code", "refresh_token"], actor="bench")
        partner = clients.register_client(conn, name="Bench partner", redirect_uris=[], scopes="dinhdanh.verify",
                                          grant_types=["client_credentials"], actor="bench")
        for made in (rp, partner):
            clients.approve_client(conn, made["client_id"], agreement="B-1", purpose="benchmark",
                                   security_level=3, actor="bench")
    app = create_app(engine)
    app.state.vault = vault
    set_issuer(app, ISSUER)

    async def logins() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            return [(await _login(client, rp, pid, "135790"))["refresh_token"] for pid in pids]

    refresh_tokens = asyncio.run(logins())
    engine.dispose()
    return {"partner": partner, "rp": rp, "refresh_tokens": refresh_tokens}


def serve_ours(db: str, port: int, log_level: str) -> None:
    import uvicorn

    from dinhdanh import logs
    from dinhdanh.store.engine import make_engine
    from dinhdanh.web.app import create_app, settle_heap

    # as serve logs by default: JSON lines on stderr (the bench sends them to a file), one access
    # line a request at INFO (``--log-level WARNING``: none)
    logs.configure(json=True, level=log_level)
    app = create_app(make_engine(db))
    settle_heap()  # as serve does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


FLOOR_TABLE = ("CREATE TABLE IF NOT EXISTS floor_tokens (id INTEGER PRIMARY KEY, kind TEXT, token_hash TEXT UNIQUE, "
               "jti TEXT, client_id TEXT, scope TEXT, family_id TEXT, issued_at TEXT, expires_at TEXT, "
               "rotated_at TEXT)")


def floor_app(db_path: str, clients_: dict, refresh_tokens: list[str]):
    """The plainest token endpoint: Basic credentials against stored SHA-256, a JWT, rows, commit."""
    import hashlib
    import hmac
    import sqlite3
    from urllib.parse import parse_qsl

    from joserfc import jwt
    from joserfc.jwk import ECKey

    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(FLOOR_TABLE)
    key = ECKey.generate_key("P-256", auto_kid=True)
    secrets_ = {c["client_id"]: hashlib.sha256(c["client_secret"].encode()).hexdigest() for c in clients_.values()}
    with conn:
        for value in refresh_tokens:
            conn.execute("INSERT OR IGNORE INTO floor_tokens (kind, token_hash, client_id, scope, family_id) "
                         "VALUES ('refresh', ?, ?, 'openid profile', ?)",
                         (hashlib.sha256(value.encode()).hexdigest(), clients_["rp"]["client_id"], secrets.token_hex(8)))

    def sign(client_id: str, scope: str) -> tuple[str, str]:
        now = int(time.time())
        jti = secrets.token_urlsafe(32)[:43]
        claims = {"iss": ISSUER, "sub": client_id, "aud": ISSUER, "client_id": client_id, "scope": scope,
                  "iat": now, "exp": now + 600, "jti": jti}
        return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}, claims, key), jti

    async def answer(send, status: int, body: dict) -> None:
        out = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode()),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": out})

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if scope["path"] == "/jwks":
            return await answer(send, 200, {"keys": [key.as_dict(private=False)]})
        form = dict(parse_qsl(body.decode()))
        auth = dict(scope["headers"]).get(b"authorization", b"").split(b" ", 1)[-1]
        client_id, _, secret = base64.b64decode(auth).decode().partition(":")
        stored = secrets_.get(client_id)
        if stored is None or not hmac.compare_digest(stored, hashlib.sha256(secret.encode()).hexdigest()):
            return await answer(send, 401, {"error": "invalid_client"})
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        # the write lock from the start (as ours' units take it), so a read never has to be upgraded;
        # a failure rolls back, so one busy moment (another server finishing its run) stays one error
        conn.execute("BEGIN IMMEDIATE")
        try:
            return await grant(send, form, client_id, now)
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return await answer(send, 503, {"error": "temporarily_unavailable"})

    async def grant(send, form: dict, client_id: str, now: str):
        if form.get("grant_type") == "client_credentials":
            token, jti = sign(client_id, "dinhdanh.verify")
            conn.execute("INSERT INTO floor_tokens (kind, token_hash, jti, client_id, scope, issued_at, expires_at) "
                         "VALUES ('access', ?, ?, ?, 'dinhdanh.verify', ?, ?)",
                         (hashlib.sha256(token.encode()).hexdigest(), jti, client_id, now, now))
            conn.execute("COMMIT")
            return await answer(send, 200, {"access_token": token, "token_type": "Bearer", "expires_in": 600,
                                            "scope": "dinhdanh.verify"})
        row = conn.execute("SELECT id, family_id, scope FROM floor_tokens WHERE token_hash = ? AND kind = 'refresh' "
                           "AND client_id = ?", (hashlib.sha256(form.get("refresh_token", "").encode()).hexdigest(),
                                                 client_id)).fetchone()
        if row is None or conn.execute("UPDATE floor_tokens SET rotated_at = ? WHERE id = ? AND rotated_at IS NULL",
                                       (now, row[0])).rowcount != 1:
            conn.execute("COMMIT")
            return await answer(send, 400, {"error": "invalid_grant"})
        token, jti = sign(client_id, row[2])
        refresh = secrets.token_urlsafe(48)
        conn.execute("INSERT INTO floor_tokens (kind, token_hash, jti, client_id, scope, family_id, issued_at, "
                     "expires_at) VALUES ('access', ?, ?, ?, ?, ?, ?, ?)",
                     (hashlib.sha256(token.encode()).hexdigest(), jti, client_id, row[2], row[1], now, now))
        conn.execute("INSERT INTO floor_tokens (kind, token_hash, jti, client_id, scope, family_id, issued_at, "
                     "expires_at) VALUES ('refresh', ?, ?, ?, ?, ?, ?, ?)",
                     (hashlib.sha256(refresh.encode()).hexdigest(), jti, client_id, row[2], row[1], now, now))
        conn.execute("COMMIT")
        await answer(send, 200, {"access_token": token, "token_type": "Bearer", "expires_in": 600,
                                 "refresh_token": refresh, "scope": row[2]})

    return app


def serve_floor(db: str, port: int, setup_file: str) -> None:
    import uvicorn

    setup = json.loads(Path(setup_file).read_text())
    app = floor_app(db.removeprefix("sqlite:///"), {"partner": setup["partner"], "rp": setup["rp"]},
                    setup["floor_refresh_tokens"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


# ----------------------------------------------------------------------------- load

def _basic(client: dict) -> str:
    return "Basic " + base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole answer (Content-Length or chunked)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            return status, await self.reader.readexactly(int(fields["content-length"]))
        if fields.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    return status, out
                out += chunk[:-2]
        return status, b""


def _head(method: str, path: str, port: int, authorization: str | None, length: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if authorization:
        lines += [f"Authorization: {authorization}", "Content-Type: application/x-www-form-urlencoded"]
    if method == "POST":
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``), None if unknown."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(port: int, grant: str, setup: dict, connections: int, warmup: float, seconds: float,
                server_pid: int | None = None) -> dict:
    from urllib.parse import urlencode

    tokens = list(setup.get("refresh_tokens", []))
    if grant == "refresh_token" and len(tokens) < connections:
        raise SystemExit(f"{connections} refresh chains need as many refresh tokens (have {len(tokens)})")
    cc_body = urlencode({"grant_type": "client_credentials", "scope": setup.get("cc_scope", "")}).encode()
    cc_head = _head("POST", "/token", port, _basic(setup["partner"]), len(cc_body))
    rp_auth = _basic(setup["rp"])
    jwks_head = _head("GET", "/jwks", port, None, 0)
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    measuring = {"on": False, "stop": False}
    first_error: list[str] = []

    async def chain(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = Connection(reader, writer)
        refresh = tokens[i] if grant == "refresh_token" else None
        try:
            while not measuring["stop"]:
                if grant == "client_credentials":
                    head, body = cc_head, cc_body
                elif grant == "jwks":
                    head, body = jwks_head, b""
                else:
                    body = urlencode({"grant_type": "refresh_token", "refresh_token": refresh}).encode()
                    head = _head("POST", "/token", port, rp_auth, len(body))
                started = time.perf_counter()
                status, answer = await conn.request(head, body)
                elapsed = time.perf_counter() - started
                ok = status == 200
                if ok and grant == "refresh_token":
                    refresh = json.loads(answer).get("refresh_token")
                    ok = bool(refresh)
                if measuring["on"]:
                    if ok:
                        counts["ok"] += 1
                        latencies.append(elapsed)
                    else:
                        counts["errors"] += 1
                if not ok:
                    if not first_error:
                        first_error.append(f"{status} {answer[:300]!r}")
                    if grant == "refresh_token":
                        return  # the chain is broken
        finally:
            writer.close()

    tasks = [asyncio.create_task(chain(i)) for i in range(connections)]
    await asyncio.sleep(warmup)
    measuring["on"] = True
    started, cpu_started = time.perf_counter(), cpu_seconds(server_pid)
    await asyncio.sleep(seconds)
    measuring["on"] = False
    duration, cpu_ended = time.perf_counter() - started, cpu_seconds(server_pid)
    cpu = None if cpu_started is None or cpu_ended is None else cpu_ended - cpu_started
    measuring["stop"] = True
    await asyncio.gather(*tasks, return_exceptions=True)
    ms = [x * 1000 for x in latencies] or [0.0]
    return {"requests": counts["ok"], "errors": counts["errors"], "rps": counts["ok"] / duration,
            "p50": percentile(ms, 50), "p99": percentile(ms, 99), "max": max(ms),
            "first_error": first_error[0] if first_error else None,
            # the server's CPU time an answer, and its share of a core, over the measured seconds
            "cpu_ms": None if cpu is None or not counts["ok"] else cpu / counts["ok"] * 1000,
            "cpu_share": None if cpu is None else cpu / duration}


# wrk (``--generator wrk``): one Lua state a thread; with one connection a thread (refresh), each
# thread is one chain, presenting the refresh token of its previous answer. wrk stops with requests
# in flight: a refresh the server answered but wrk did not read leaves its chain on a rotated token
# (presented again, it would revoke the family), so every wrk run starts fresh chains (``chains``).
WRK_SCRIPT = r"""
local grant, path, auth, scope, tokens = %(grant)s, %(path)s, %(auth)s, %(scope)s, {%(tokens)s}
local threads, next_id = {}, 1
function setup(thread)
  thread:set("token", tokens[next_id] or "")
  table.insert(threads, thread)
  next_id = next_id + 1
end
ok, broken, first_bad = 0, 0, ""  -- globals: done() reads them from each thread
function init(args)
  wrk.path = path
  if grant ~= "jwks" then
    wrk.method = "POST"
    wrk.headers["Authorization"] = auth
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    if grant == "client_credentials" then wrk.body = "grant_type=client_credentials&scope=" .. scope end
  end
end
function request()
  if grant == "refresh_token" then
    return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
  end
  return wrk.format()
end
function response(status, headers, body)
  if status == 200 then
    if grant == "refresh_token" then
      local next_token = body:match('"refresh_token"%%s*:%%s*"([^"]+)"')
      if next_token then token = next_token; ok = ok + 1 else broken = broken + 1 end
    else
      ok = ok + 1
    end
  else
    broken = broken + 1
  end
  if status ~= 200 and first_bad == "" then first_bad = status .. " " .. body:sub(1, 300):gsub("\n", " ") end
end
function done(summary, latency, requests)
  local good, bad = 0, 0
  for _, t in ipairs(threads) do good = good + t:get("ok"); bad = bad + t:get("broken") end
  io.write(string.format("RESULT %%d %%d %%d %%f %%f %%f %%d\n", good, bad, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
  for _, t in ipairs(threads) do
    if t:get("first_bad") ~= "" then io.write("BAD " .. t:get("first_bad") .. "\n") break end
  end
end
"""


def fresh_chains(setup: dict, pool: list[str], n: int) -> list[str]:
    """``n`` refresh tokens never presented, to start a run's chains from: the peer mints them now
    with its own models (``mint_port``; minted at start-up, they would have been evicted by then),
    ours and the floor take them from ``pool`` (minted at start-up: ``chains``)."""
    if setup.get("mint_port"):
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{setup['mint_port']}/mint?n={n}") as answer:
            return json.loads(answer.read())
    if len(pool) < n:
        raise SystemExit(f"{n} fresh refresh chains needed, {len(pool)} left: see chains()")
    taken = pool[:n]
    del pool[:n]
    return taken


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII is a Lua string literal


def _wrk_load(port: int, grant: str, setup: dict, connections: int, warmup: float, seconds: float,
              work: Path, server_pid: int | None) -> dict:
    """What ``_load`` measures, with wrk (pinned to core 1) sending the requests: a warm-up run,
    then the measured one. The latencies are wrk's (its HdrHistogram, microseconds)."""
    from urllib.parse import quote

    refresh = grant == "refresh_token"
    pool = list(setup.get("refresh_tokens", [])) if refresh else []
    threads = connections if refresh else 1

    def once(duration: float) -> tuple[list[str], float | None]:
        tokens = fresh_chains(setup, pool, connections) if refresh else []
        script = work / f"wrk-{port}-{grant}.lua"
        script.write_text(WRK_SCRIPT % {
            "grant": _lua(grant), "path": _lua("/jwks" if grant == "jwks" else "/token"),
            "auth": _lua(_basic(setup["rp"] if refresh else setup["partner"])),
            "scope": _lua(quote(setup.get("cc_scope", ""))), "tokens": ", ".join(_lua(t) for t in tokens)})
        cpu_started = cpu_seconds(server_pid)
        done = subprocess.run([*pinned(1), "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
                               "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}"],
                              capture_output=True, text=True)
        cpu_ended = cpu_seconds(server_pid)
        if done.returncode:
            raise SystemExit(f"wrk failed: {done.stderr}")
        cpu = None if cpu_started is None or cpu_ended is None else cpu_ended - cpu_started
        return done.stdout.splitlines(), cpu

    if warmup > 0:
        once(warmup)
    lines, cpu = once(seconds)
    result = next(line for line in lines if line.startswith("RESULT ")).split()
    good, bad, duration_us = int(result[1]), int(result[2]), int(result[3])
    p50, p99, most = (float(x) / 1000 for x in result[4:7])
    socket_errors = int(result[7])
    duration = duration_us / 1e6
    first_bad = next((line[4:] for line in lines if line.startswith("BAD ")), None)
    return {"requests": good, "errors": bad + socket_errors, "rps": good / duration, "p50": p50, "p99": p99,
            "max": most, "first_error": None if not bad + socket_errors else f"{bad} bad answers ({first_bad}), "
                                                                           f"{socket_errors} socket errors",
            "cpu_ms": None if cpu is None or not good else cpu / good * 1000,
            "cpu_share": None if cpu is None else cpu / duration, "refresh_tokens": pool}


def chains(args, grants) -> int:
    """Refresh tokens ours and the floor mint at start-up: every run of refresh starts fresh chains, one a
    connection (the Python generator's warm-up goes on in the measured run's chains; wrk's is a run
    of its own). Fresh, because the peer's refresh grows dearer as its chains grow longer (its CPU an
    answer went from 0.61 to 1.32 ms over seven rounds of chains carried on), and ours does not: a
    chain carried from round to round measured that, not the endpoint."""
    if "refresh_token" not in grants:
        return args.connections
    return args.connections * args.rounds * (2 if args.generator == "wrk" and args.warmup > 0 else 1)


def run_load(port: int, grant: str, setup: dict, connections: int, warmup: float, seconds: float,
             work: Path, server_pid: int | None = None, generator: str = "python") -> dict:
    """The load generator in its own process, pinned to core 1; ``setup`` holds the clients and
    the refresh tokens to start fresh chains from (``fresh_chains``): those left unused come back
    in the result's ``refresh_tokens``."""
    if generator == "wrk":
        return _wrk_load(port, grant, setup, connections, warmup, seconds, work, server_pid)
    pool = list(setup.get("refresh_tokens", []))
    if grant == "refresh_token":
        setup = {**setup, "refresh_tokens": fresh_chains(setup, pool, connections)}
    spec = work / f"load-{port}-{grant}.json"
    spec.write_text(json.dumps(setup))
    done = subprocess.run([*pinned(1), sys.executable, str(HERE), "--load", str(spec), "--port", str(port),
                           "--grant", grant, "--connections", str(connections), "--warmup", str(warmup),
                           "--seconds", str(seconds), "--server-pid", str(server_pid or 0)],
                          env=ENV, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the load generator failed: {done.stderr}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "refresh_tokens": pool}


def load_main(args) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    setup = json.loads(Path(args.load).read_text())
    result = asyncio.run(_load(args.port, args.grant, setup, args.connections, args.warmup, args.seconds,
                               args.server_pid))
    print(json.dumps(result))


# ----------------------------------------------------------------------------- plumbing

def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def token_rows(db: str) -> dict[str, int]:
    import sqlalchemy as sa

    from dinhdanh.oidc.tables import oidc_tokens
    from dinhdanh.store.engine import make_engine

    engine = make_engine(db)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(oidc_tokens.c.kind, sa.func.count()).group_by(oidc_tokens.c.kind)).all())
    engine.dispose()
    return rows


def report(label: str, grant: str, r: dict, round_: int) -> None:
    cpu = (f"; server CPU {r['cpu_ms']:.3f} ms an answer ({r['cpu_share']:.0%} of its core)"
           if r.get("cpu_ms") is not None else "")
    print(f"round {round_} {label} {grant}: {r['rps']:,.0f}/s; p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
          f"max {r['max']:.1f} ms; {r['requests']:,} answers, {r['errors']} errors{cpu}"
          + (f" (first: {r['first_error']})" if r["first_error"] else ""), flush=True)


def measure(servers: dict, grants, args, work: Path) -> dict[str, dict[str, list[dict]]]:
    """Load every started server (label -> (process, port, setup)) per grant, ``args.rounds`` times:
    within a round each grant goes to every server in turn, and every other round in the reverse
    order, so that the machine's drift over the minutes of a run weighs on all of them alike.
    Every run of refresh starts fresh chains (``chains``)."""
    from concurrent.futures import ThreadPoolExecutor

    results: dict[str, dict[str, list[dict]]] = {label: {g: [] for g in grants} for label in servers}
    labels = list(servers)

    def run(label: str, grant: str) -> dict:
        server, port, setup = servers[label]
        r = run_load(port, grant, setup, args.connections, args.warmup, args.seconds, work, server.pid,
                     args.generator)
        if grant == "refresh_token":
            setup["refresh_tokens"] = r["refresh_tokens"]
        return r

    for round_ in range(1, args.rounds + 1):
        for grant in grants:
            order = labels if round_ % 2 else labels[::-1]
            if args.together:  # every server loaded at once, sharing core 0 (their loads share core 1)
                with ThreadPoolExecutor(len(order)) as pool:
                    done = dict(zip(order, pool.map(lambda label: run(label, grant), order)))
            else:
                done = {label: run(label, grant) for label in order}
            for label in order:
                results[label][grant].append(done[label])
                report(label, grant, done[label], round_)
    return results


def median_run(runs: list[dict]) -> dict | None:
    """The run of median throughput (the first of the two middle ones), None for none."""
    if not runs:
        return None
    return sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections (refresh chains)")
    parser.add_argument("--together", action="store_true",
                        help="load the servers at the same time on the same core: the ratio is then of the "
                             "server CPU time an answer, which the machine's drift changes alike for both")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of runs, the servers taken in turn (the ratio: the median of the rounds')")
    parser.add_argument("--postgres", metavar="URL", help="ours on a scratch database on this server")
    parser.add_argument("--generator", choices=("python", "wrk"), default="python",
                        help="the load: this file's asyncio client, or wrk (one thread, or one a refresh chain)")
    parser.add_argument("--grants", default=",".join(GRANTS), help="client_credentials,refresh_token,jwks")
    parser.add_argument("--servers", default="ours,peer,floor", help="ours,peer,floor")
    parser.add_argument("--log-level", default="INFO", choices=("INFO", "WARNING"),
                        help="ours' log level: INFO (serve's default) writes an access line a request")
    parser.add_argument("--serve", choices=("ours", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--grant", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        return load_main(args)
    if args.serve == "ours":
        return serve_ours(args.db, args.port, args.log_level)
    if args.serve == "floor":
        return serve_floor(args.db, args.port, args.setup)
    grants = [g for g in args.grants.split(",") if g]
    servers = [s for s in args.servers.split(",") if s]
    postgres = args.postgres is not None
    if postgres:
        from bench_verify import BENCH_MASTER_KEY

        os.environ.setdefault("DINHDANH_MASTER_KEY", BENCH_MASTER_KEY)
        ENV.setdefault("DINHDANH_MASTER_KEY", os.environ["DINHDANH_MASTER_KEY"])
        servers = [s for s in servers if s != "floor"]  # the floor is SQLite's
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {machine()}; node {node}; oidc-provider {PEER_VERSION}; load: {args.connections} connections, "
          f"{args.warmup:g} s warm-up + {args.seconds:g} s, server on core 0, load generator on core 1")
    print(f"rounds: {args.rounds}, each server in turn per grant, the order reversed every other round")
    scratch = None
    started: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory(prefix="bench-token-peer-") as tmp:
        work = Path(tmp)
        try:
            if "peer" in servers:
                port = free_port()
                process, peer_setup = start_peer(install_peer(), port, work)
                started["peer"] = (process, port, {**peer_setup, "cc_scope": "api:read"})
            if "ours" in servers or "floor" in servers:
                if postgres:
                    db, scratch = scratch_database(args.postgres, "bench_token")
                else:
                    db = f"sqlite:///{work / 'register.sqlite'}"
                ours = setup_ours(db, chains(args, grants))
                before = token_rows(db)
                setup_file = work / "setup.json"
                setup_file.write_text(json.dumps({**ours, "floor_refresh_tokens": [
                    secrets.token_urlsafe(48) for _ in range(chains(args, grants))]}))
                if "ours" in servers:
                    port = free_port()
                    with (work / "ours.log").open("w") as log_file:  # the server keeps its own descriptor
                        process = subprocess.Popen([*pinned(0), sys.executable, str(HERE), "--serve", "ours", "--db",
                                                    db, "--port", str(port), "--log-level", args.log_level], env=ENV,
                                                   stderr=log_file)
                    started["ours"] = (process, port, {**ours, "cc_scope": "dinhdanh.verify"})
                if "floor" in servers:
                    floor_setup = json.loads(setup_file.read_text())
                    port = free_port()
                    process = subprocess.Popen([*pinned(0), sys.executable, str(HERE), "--serve", "floor", "--db", db,
                                                "--port", str(port), "--setup", str(setup_file)], env=ENV)
                    started["floor"] = (process, port, {**floor_setup, "cc_scope": "dinhdanh.verify",
                                                        "refresh_tokens": floor_setup["floor_refresh_tokens"]})
            for _, port, _ in started.values():
                wait_up(port)
            runs = measure(started, grants, args, work)
            if "ours" in started:
                after = token_rows(db)
                written = {k: after.get(k, 0) - before.get(k, 0) for k in ("access", "refresh")}
                print(f"ours: token rows written (warm-ups included): {written}")
                access_lines = sum(1 for line in (work / "ours.log").open() if '"dinhdanh.access"' in line)
                print(f"ours: access-log lines written (--log-level {args.log_level}): {access_lines:,}")
                wanted_access = sum(r["requests"] for g in ("client_credentials", "refresh_token")
                                    for r in runs["ours"].get(g, []))
                if written["access"] < wanted_access:
                    raise SystemExit("fewer access-token rows than tokens answered")
        finally:
            for process, _, _ in started.values():
                stop(process)
            if scratch:
                drop_database(args.postgres, scratch)
    results = {label: {g: median_run(per[g]) for g in grants} for label, per in runs.items()}
    backend = "PostgreSQL" if postgres else "SQLite"
    print()
    print("| grant | back-end | ours /s | ours p50 | ours p99 | peer /s | peer p50 | peer p99 | ours / peer "
          "| floor /s | floor / ours |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    met = []
    for grant in grants:
        o, p, f = (results.get(s, {}).get(grant) for s in ("ours", "peer", "floor"))

        def cell(r, key, fmt):
            return fmt.format(r[key]) if r else "–"

        # the median of the rounds' ratios (each round's runs close together in time)
        pairs = list(zip(runs.get("ours", {}).get(grant, []), runs.get("peer", {}).get(grant, [])))
        if args.together:  # each had a share of one core: compare what an answer cost each
            ratios = sorted(b["cpu_ms"] / a["cpu_ms"] for a, b in pairs if a.get("cpu_ms") and b.get("cpu_ms"))
        else:
            ratios = sorted(a["rps"] / b["rps"] for a, b in pairs if b["rps"])
        ratio = f"{ratios[(len(ratios) - 1) // 2]:.2f}" if ratios else "–"
        floor_ratio = f"{f['rps'] / o['rps']:.2f}" if o and f else "–"
        print(f"| {grant} | {backend} | {cell(o, 'rps', '{:,.0f}')} | {cell(o, 'p50', '{:.2f} ms')} "
              f"| {cell(o, 'p99', '{:.2f} ms')} | {cell(p, 'rps', '{:,.0f}')} | {cell(p, 'p50', '{:.2f} ms')} "
              f"| {cell(p, 'p99', '{:.2f} ms')} | {ratio} | {cell(f, 'rps', '{:,.0f}')} | {floor_ratio} |")
        if ratios and grant != "jwks":
            met.append((grant, ratios[(len(ratios) - 1) // 2] >= 1))
            print(f"  {grant}: ours / peer by round: {', '.join(f'{x:.2f}' for x in ratios)} (sorted)")
    for grant, ok in met:
        print(f"goal (ours >= peer) for {grant}: {'met' if ok else 'NOT met'}")
    errors = [(s, g) for s, per in runs.items() for g, rs in per.items() for r in rs if r["errors"]]
    if errors:
        raise SystemExit(f"errors during the runs: {errors}")


if __name__ == "__main__":
    main()
