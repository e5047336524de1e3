"""``dinhdanh client`` (relying parties of the OpenID provider) and ``dinhdanh oidc`` (its keys)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry
from dinhdanh.registry.errors import RegistryError
from dinhdanh.store.unit_of_work import UnitOfWork

client_app = typer.Typer(help="Relying parties of the OpenID provider: register, approve, list, suspend.",
                         no_args_is_help=True)
oidc_app = typer.Typer(help="The OpenID provider: signing keys and housekeeping.", no_args_is_help=True)


def _vault(engine):
    from dinhdanh.store.vault import VaultError, for_database

    try:
        return for_database(engine.url.render_as_string(hide_password=False))
    except VaultError as exc:
        fail(str(exc))


@client_app.command("add")
def client_add(
    name: Annotated[str, typer.Option(help="The relying party's name, as people will see it")],
    redirect_uri: Annotated[list[str] | None, typer.Option("--redirect-uri", help="A redirect URI (repeat for more)")]
    = None,
    scopes: Annotated[str, typer.Option(help='Scopes it may ask for, e.g. "openid profile"')] = "openid",
    auth: Annotated[str, typer.Option(help="client_secret_basic or private_key_jwt")] = "client_secret_basic",
    jwks: Annotated[Path | None, typer.Option(help="The client's public JWKS (JSON file), for private_key_jwt",
                                              exists=True, dir_okay=False)] = None,
    grant: Annotated[list[str] | None, typer.Option(
        "--grant", help="A grant type (repeat): authorization_code, refresh_token, client_credentials "
                        "[default: authorization_code and refresh_token]")] = None,
    sector: Annotated[str | None, typer.Option(help="Pairwise sector (default: the host of the redirect URIs)")]
    = None,
    post_logout_redirect_uri: Annotated[list[str] | None, typer.Option(
        "--post-logout-redirect-uri", help="Where the browser may go after logout (repeat for more)")] = None,
    id_token_alg: Annotated[str, typer.Option(
        "--id-token-alg", help="How its ID tokens are signed (id_token_signed_response_alg): ES256 or RS256")]
    = "ES256",
    officer: Annotated[bool, typer.Option(
        "--officer", help="An officer client (the console, officers' tools): it may ask for the scope "
                          "dinhdanh.officer, which signs officers in at level 2")] = False,
    db: DbOption = None,
) -> None:
    """Register a relying party (pending until approved); prints its client_id and client_secret."""
    from dinhdanh.oidc.clients import register_client

    keys = None
    if jwks is not None:
        try:
            keys = json.loads(jwks.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            fail(f"{jwks} is not a JSON file")
    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            made = register_client(conn, name=name, redirect_uris=redirect_uri or [], scopes=scopes,
                                   auth_method=auth, jwks=keys, grant_types=grant, sector=sector,
                                   post_logout_redirect_uris=post_logout_redirect_uri, actor=actor_label(),
                                   id_token_alg=id_token_alg, officer=officer)
    except RegistryError as exc:
        fail_registry(exc)
    emit(made)
    typer.echo("the client can do nothing until approved: dinhdanh client approve "
               f"{made['client_id']} --agreement REF --purpose TEXT --security-level 3", err=True)


@client_app.command("approve")
def client_approve(
    client_id: Annotated[str, typer.Argument(help="The client to approve")],
    agreement: Annotated[str, typer.Option(help="Reference of the signed connection agreement")],
    purpose: Annotated[str, typer.Option(help="The purpose stated in the agreement")],
    security_level: Annotated[int, typer.Option(help="Attested information-security level (3 or above)")],
    db: DbOption = None,
) -> None:
    """Approve a relying party against its agreement (scope and purpose, security level 3)."""
    from dinhdanh.oidc.clients import approve_client

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            emit(approve_client(conn, client_id, agreement=agreement, purpose=purpose,
                                security_level=security_level, actor=actor_label()))
    except RegistryError as exc:
        fail_registry(exc)


@client_app.command("suspend")
def client_suspend(client_id: Annotated[str, typer.Argument()], db: DbOption = None) -> None:
    """Stop a relying party: no login, no token; the tokens it holds are revoked."""
    from dinhdanh.oidc.clients import suspend_client

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            emit(suspend_client(conn, client_id, actor=actor_label()))
    except RegistryError as exc:
        fail_registry(exc)


@client_app.command("list")
def client_list(db: DbOption = None) -> None:
    """Every relying party with its status."""
    from dinhdanh.oidc.clients import list_clients

    engine = engine_for(db, upgrade=True)
    with UnitOfWork(engine).read() as conn:
        emit(list_clients(conn))


@client_app.command("show")
def client_show(client_id: Annotated[str, typer.Argument()], db: DbOption = None) -> None:
    """One relying party."""
    from dinhdanh.oidc.clients import client_view

    engine = engine_for(db, upgrade=True)
    try:
        with UnitOfWork(engine).read() as conn:
            emit(client_view(conn, client_id))
    except RegistryError as exc:
        fail_registry(exc)


@client_app.command("reset-secret")
def client_reset_secret(client_id: Annotated[str, typer.Argument()], db: DbOption = None) -> None:
    """A new secret for a client_secret_basic client (printed once; the old one stops at once)."""
    from dinhdanh.oidc.clients import reset_secret

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            emit({"client_id": client_id, "client_secret": reset_secret(conn, client_id)})
    except RegistryError as exc:
        fail_registry(exc)


@oidc_app.command("rotate-keys")
def rotate_keys(db: DbOption = None) -> None:
    """Publish new signing keys (ES256 and RS256) now; each signs once relying parties' cached JWKS
    have expired (one cache lifetime and some skew later), with no second command. The keys they
    take over from stay published until their tokens expire, and in the key archive for ever."""
    from dinhdanh.oidc import keys

    engine = engine_for(db, upgrade=True)
    vault = _vault(engine)
    with engine.begin() as conn:
        made = keys.rotate_all(conn, vault)
        listed = keys.list_keys(conn)
    signs_from = next(k["signs_from"] for k in listed if k["kid"] == made[0].kid)
    emit({"kid": made[0].kid, "kids": {k.alg: k.kid for k in made}, "signs_from": signs_from, "keys": listed})


@oidc_app.command("keys")
def list_keys(db: DbOption = None) -> None:
    """The signing keys: signing, next (published, signing later), retired (published until its tokens expire)."""
    from dinhdanh.oidc import keys

    engine = engine_for(db, upgrade=True)
    with UnitOfWork(engine).read() as conn:
        emit(keys.list_keys(conn))


@oidc_app.command("purge")
def purge(db: DbOption = None) -> None:
    """Delete what has expired: codes, requests, sessions, tokens (past their expiry by a day)."""
    from dinhdanh.oidc.housekeeping import purge_expired

    emit(purge_expired(UnitOfWork(engine_for(db, upgrade=True))))
