"""What `clevermail config check` looks at beyond the schema (config.py): the files and
accounts a valid config refers to.

Problems (the check fails): the TLS certificate and key must exist, be readable and
load as a matching pair (stdlib ssl, as the server loads them), each named by path.
Warnings (the check passes): a hostname of localhost, which other servers would see
in EHLO and Received; a local domain without a postmaster account or alias (RFC 5321
4.5.1: every domain accepts postmaster; routing.py then falls back to [server]
postmaster or the first account), a [server] postmaster that is no account; users-file
sections that are not valid account names (the server skips them).

Not part of loading a config: `user list` must work where the key is not readable.
"""

import os
import ssl

from configobj import ConfigObj, ConfigObjError

from .accounts import AccountError, AccountStore
from .aliases import AliasStore
from .routing import Router, RoutingError


def tls_problems(certificate, key):
    """One line per problem with [tls] certificate/key ([] when neither is set)."""
    if not certificate and not key:
        return []
    problems = []
    for name, path in (("certificate", certificate), ("key", key)):
        why = _unreadable(path)
        if why:
            problems.append(f"[tls] {name}: {path}: {why}")
    if problems:
        return problems
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cafile=certificate)     # the certificate alone
    except (ssl.SSLError, ValueError) as exc:
        return [f"[tls] certificate: {certificate}: not a PEM certificate ({_reason(exc)})"]
    try:
        # an encrypted key gets an empty password (a refusal) instead of a tty prompt
        context.load_cert_chain(certificate, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if getattr(exc, "reason", "") == "KEY_VALUES_MISMATCH":
            return [f"[tls] certificate {certificate} and key {key} do not match "
                    "(the key is not the certificate's)"]
        return [f"[tls] key: {key}: not a usable PEM private key, or encrypted ({_reason(exc)})"]
    return []


def _unreadable(path):
    """Why `path` cannot be read as a file, or None."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "is a directory, not a file"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    return None


def _reason(exc):
    return getattr(exc, "reason", None) or str(exc)


def warnings(settings):
    """Warnings about a config that loads and works, but not as a real domain needs."""
    server = settings.server
    out = []
    hostname = server.hostname.lower().rstrip(".")
    if hostname == "localhost" or hostname.startswith("localhost.") or hostname.endswith(".localhost"):
        out.append(f"[server] hostname is {server.hostname!r}: other mail servers see this name "
                   "in EHLO and Received headers; set the name your MX record points to")
    users = _users_file_warnings(server.users_file, server.domains)
    out += users
    if any(w.startswith(f"{server.users_file} cannot be read") for w in users):
        return out
    accounts = AccountStore(server.users_file, server.domains)
    aliases = AliasStore(server.aliases_file, server.domains)
    postmaster_ok = bool(server.postmaster) and accounts.lookup(server.postmaster) is not None
    if server.postmaster and not postmaster_ok:
        out.append(f"[server] postmaster {server.postmaster!r} is not an account in {server.users_file}")
    router = Router(accounts, aliases, postmaster=server.postmaster)
    for domain in accounts.domains:
        address = f"postmaster@{domain}"
        if postmaster_ok or accounts.lookup_ascii("postmaster", domain) or aliases.targets(address):
            continue
        try:        # where the server sends it now (routing.py): the first account, or nowhere
            route = router.resolve(address)
            goes = "goes to " + ", ".join(route.accounts + route.external)
        except RoutingError:
            goes = "is refused"
        out.append(f"no {address} account or alias and no [server] postmaster account: "
                   f"mail to {address} {goes}")
    return out


def _users_file_warnings(path, domains):
    """Sections of users.ini the server skips (hand edits), and an unreadable file."""
    if not os.path.exists(path):
        return []
    try:
        cfg = ConfigObj(path, encoding="utf-8", list_values=False)
    except (ConfigObjError, OSError, UnicodeDecodeError) as exc:
        return [f"{path} cannot be read, the server keeps its accounts from before: {exc}"]
    accounts = AccountStore(path, domains)
    out = []
    for section in cfg.sections:
        try:
            accounts.canonical(section)
        except AccountError as exc:
            out.append(f"{path}: [{section}] is skipped: {exc}")
        else:
            if not cfg[section].get("password"):
                out.append(f"{path}: [{section}] has no password: nobody can log in as it")
    return out
