"""OpenID provider: client-credentials tokens/s, refreshes/s and full logins/s, each against its floor.

The app runs in this process and is called through httpx's ASGI transport, one request at a time:
one core does all the provider's work (HTTP parsing, Authlib, the database, signing), and no
network or client process competes for it. SQLite register of synthetic people with e-ID
accounts (Argon2id m=7 MiB t=5 p=1), one approved relying party.

- client credentials: POST /token grant_type=client_credentials (client_secret_basic);
  floor: the bare ES256 signature of the same access token with joserfc.
- refresh: POST /token grant_type=refresh_token, rotating the refresh token each time;
  floor: the same bare signature.
- full login: /authorize -> login form (Argon2id passcode check) -> consent (prompt=consent)
  -> code exchange at /token (ID token, access and refresh tokens); floor: one bare Argon2id
  hash with the same parameters.

    python bench/bench_oidc.py --count 500 --logins 60
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import os
import secrets
import tempfile
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from common import hidden_form, machine, pkce, population_file

REDIRECT = "https://rp.example/cb"




async def _login(client, rp: dict, pid: str, passcode: str) -> dict:
    """One whole login in a fresh browser: returns the token response."""
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": rp["client_id"], "redirect_uri": REDIRECT,
              "scope": "openid profile", "state": "s", "nonce": secrets.token_urlsafe(12),
              "code_challenge": challenge, "code_challenge_method": "S256", "prompt": "consent"}
    browser = client  # a fresh browser: no cookies (a new client would also build an SSL context)
    browser.cookies.clear()
    if True:
        response = await browser.get("/authorize?" + urlencode(params))
        while response.status_code in (302, 303) and not response.headers["location"].startswith(REDIRECT):
            response = await browser.get(response.headers["location"])
        action, fields = hidden_form(response.text)
        response = await browser.post(action, data={**fields, "username": pid, "password": passcode})
        while response.status_code in (302, 303) and not response.headers["location"].startswith(REDIRECT):
            response = await browser.get(response.headers["location"])
        if response.status_code not in (302, 303):
            action, fields = hidden_form(response.text)
            response = await browser.post(action, data={**fields, "decision": "allow"})
            while response.status_code in (302, 303) and not response.headers["location"].startswith(REDIRECT):
                response = await browser.get(response.headers["location"])
        code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    token = await client.post("/token", data={"grant_type": "authorization_code", "code": code,
                                              "redirect_uri": REDIRECT, "code_verifier": verifier},
                              auth=(rp["client_id"], rp["client_secret"]))
    assert token.status_code == 200, token.text
    return token.json()


class Asgi:
    """The thinnest HTTP client there is: ASGI messages straight to the app (no client-side parsing),
    so the time measured is the provider's."""

    def __init__(self, app, host: str = "provider.test"):
        self.app, self.host = app, host

    async def post_form(self, path: str, body: bytes, authorization: str) -> tuple[int, bytes]:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "server": (self.host, 443), "client": ("127.0.0.1", 50000),
                 "headers": [(b"host", self.host.encode()), (b"authorization", authorization.encode()),
                             (b"content-type", b"application/x-www-form-urlencoded"),
                             (b"content-length", str(len(body)).encode())]}
        sent = {"body": b""}

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            elif message["type"] == "http.response.body":
                sent["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return sent["status"], sent["body"]


async def run(args) -> None:
    import httpx
    import sqlalchemy as sa
    from argon2 import PasswordHasher
    from joserfc import jwt
    from joserfc.jwk import ECKey

    from dinhdanh.eid import auth
    from dinhdanh.oidc import clients
    from dinhdanh.population.importer import import_population
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.engine import make_engine, upgrade
    from dinhdanh.store.vault import Vault
    from dinhdanh.web.app import create_app

    print(f"machine: {machine()}")
    folder = tempfile.mkdtemp(prefix="bench-oidc-")
    engine = make_engine(f"sqlite:///{folder}/register.sqlite")
    upgrade(engine)
    import_population(engine, population_file(10_000, 7))
    vault = Vault(os.urandom(32))
    passcode = "135790"
    with engine.begin() as conn:
        pids = conn.execute(sa.select(persons.c.pid).where(persons.c.status == "alive",
                                                           persons.c.date_of_birth < dt.date(2005, 1, 1))
                            .order_by(persons.c.person_id).limit(args.logins + 5)).scalars().all()
        for pid in pids:
            auth.enroll(conn, vault, pid, level=1, passcode=passcode, actor="bench")
        rp = clients.register_client(conn, name="Bench RP", redirect_uris=[REDIRECT], scopes="openid profile",
                                     grant_types=["authorization_code", "refresh_token"], actor="bench")
        partner = clients.register_client(conn, name="Bench partner", redirect_uris=[], scopes="dinhdanh.verify",
                                          grant_types=["client_credentials"], actor="bench")
        for made in (rp, partner):
            clients.approve_client(conn, made["client_id"], agreement="B-1", purpose="benchmark",
                                   security_level=3, actor="bench")
    app = create_app(engine)
    app.state.vault = vault
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="https://provider.test")
    basic = (rp["client_id"], rp["client_secret"])
    rp_auth = "Basic " + base64.b64encode(f"{rp['client_id']}:{rp['client_secret']}".encode()).decode()
    partner_auth = "Basic " + base64.b64encode(f"{partner['client_id']}:{partner['client_secret']}".encode()).decode()
    raw = Asgi(app)
    cc = urlencode({"grant_type": "client_credentials", "scope": "dinhdanh.verify"}).encode()

    # client credentials
    for _ in range(20):
        await raw.post_form("/token", cc, partner_auth)
    start = time.perf_counter()
    for _ in range(args.count):
        status, body = await raw.post_form("/token", cc, partner_auth)
    cc_seconds = time.perf_counter() - start
    assert status == 200, body

    # logins (also give the refresh tokens)
    for pid in pids[:3]:
        await _login(client, rp, pid, passcode)
    start = time.perf_counter()
    refresh = None
    for pid in pids[3:3 + args.logins]:
        refresh = (await _login(client, rp, pid, passcode))["refresh_token"]
    login_seconds = time.perf_counter() - start

    # refresh, rotating
    import json

    start = time.perf_counter()
    for _ in range(args.count):
        status, body = await raw.post_form(
            "/token", urlencode({"grant_type": "refresh_token", "refresh_token": refresh}).encode(), rp_auth)
        refresh = json.loads(body)["refresh_token"]
    refresh_seconds = time.perf_counter() - start
    assert status == 200, body
    await client.aclose()

    # floors
    key = ECKey.generate_key("P-256")
    payload = {"iss": "https://provider.test", "sub": partner["client_id"], "aud": "https://provider.test",
               "client_id": partner["client_id"], "scope": "dinhdanh.verify", "iat": 0, "exp": 3600, "jti": "x" * 22}
    start = time.perf_counter()
    for _ in range(args.count):
        jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "k"}, payload, key)
    sign_seconds = time.perf_counter() - start
    hasher = PasswordHasher(time_cost=5, memory_cost=7168, parallelism=1)
    start = time.perf_counter()
    for _ in range(args.logins):
        hasher.hash(passcode)
    argon_seconds = time.perf_counter() - start

    n, m = args.count, args.logins
    print(f"client credentials: {n / cc_seconds:,.0f} tokens/s; floor (bare ES256 JWT signature) "
          f"{n / sign_seconds:,.0f}/s; ratio {cc_seconds / sign_seconds:.1f}")
    print(f"refresh (rotating): {n / refresh_seconds:,.0f} refreshes/s; ratio {refresh_seconds / sign_seconds:.1f}")
    print(f"full login (authorize, passcode, consent, code exchange): {m / login_seconds:,.1f} logins/s; "
          f"floor (bare Argon2id m=7 MiB t=5 p=1) {m / argon_seconds:,.1f}/s; ratio {login_seconds / argon_seconds:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="client-credentials tokens and refreshes")
    parser.add_argument("--logins", type=int, default=60, help="full logins")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
