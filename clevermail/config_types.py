"""The value types of the configuration schema (config_schema.py): the checks
configobj's `validate` calls by name (CHECKS) for host:port values, listen lists,
nameservers, CIDR lists, send_as grants, certificate fingerprints and quota sizes, and
the one host:port parser.  Each turns the text into the typed value the settings keep,
or raises validate's error with the reason that `config check` prints.
"""

import ipaddress

from validate import ValidateError, VdtValueError

from .accounts import AccountError, domain_to_ascii
from .store.quota import parse_messages, parse_storage


# -- host:port, the one parser -----------------------------------------------------------
def parse_hostport(value, default_port=None):
    """'host:port' or '[v6]:port' -> (host, port); raises ValueError.  With a
    default_port, 'host', a bare IPv6 address and '[v6]' are accepted too."""
    value = value.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")) or (not rest and default_port is None):
            raise ValueError(f"{value!r} is not [address]:port")
        port = rest[1:] if rest else str(default_port)
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    elif default_port is not None and (":" not in value or _is_ip(value)):
        host, port = value, str(default_port)
    else:
        raise ValueError(f"{value!r} is not host:port (IPv6 goes in brackets)")
    if not host:
        raise ValueError(f"{value!r} has no host")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} has no valid port")
    return host, int(port)


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


class _Invalid(ValidateError):
    """A check's own message, shown as it is (VdtValueError would wrap it in quotes)."""


def _as_list(value):
    if isinstance(value, str):
        return [value] if value.strip() else []
    return list(value)


def _listen_list(value):
    try:
        return [parse_hostport(v) for v in _as_list(value)]
    except ValueError as exc:
        raise _Invalid(str(exc)) from None


def _hostport(value):
    """One host:port where a connection goes (port 0 means nothing there); '' = None."""
    if not isinstance(value, str):
        raise _Invalid("one host:port is needed, not a list")
    if not value.strip():
        return None
    try:
        host, port = parse_hostport(value)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    if port == 0:
        raise _Invalid(f"{value.strip()!r} has no valid port")
    return host, port


def _listen_hostport(value):
    """One host:port to listen on (port 0 = any free port); '' = None (off)."""
    if not isinstance(value, str):
        raise _Invalid("one host:port is needed, not a list")
    if not value.strip():
        return None
    try:
        return parse_hostport(value)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None


def is_loopback(host):
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False        # a name: where it points may change, so it is not loopback


def _nameserver_list(value):
    """DNS servers: IP addresses, port 53 unless given; empty items mean none (a
    one-item list is written `x,`, and no item at all `""`)."""
    out = []
    for item in _as_list(value):
        if not item.strip():
            continue
        try:
            host, port = parse_hostport(item, default_port=53)
            address = str(ipaddress.ip_address(host))
            if not port:
                raise ValueError(item)
        except ValueError:
            raise _Invalid(f"{item.strip()!r} is not an address or address:port") from None
        out.append((address, port))
    return out


def _cidr_list(value):
    try:
        return [ipaddress.ip_network(v.strip(), strict=False) for v in _as_list(value)]
    except ValueError as exc:
        raise VdtValueError(str(exc)) from None


def _send_as_list(value):
    """'account=pattern' items -> ((account, pattern), ...), both lower-case with
    A-label domains, as accounts and sender_identity compare them."""
    out = []
    for item in _as_list(value):
        if not item.strip():
            continue
        account, eq, pattern = item.partition("=")
        try:
            if not eq or "@" not in account or "@" not in pattern:
                raise ValueError
            local, _, domain = account.strip().rpartition("@")
            account = f"{local.lower()}@{domain_to_ascii(domain)}"
            local, _, domain = pattern.strip().rpartition("@")
            domain = domain.lower() if domain.isascii() else domain_to_ascii(domain)
            pattern = f"{local.lower()}@{domain}"
        except (ValueError, AccountError):
            raise _Invalid(f"{item.strip()!r} is not account@domain=pattern@domain") from None
        out.append((account, pattern))
    return out


def _fingerprint(value):
    """A SHA-256 certificate fingerprint: 64 hex digits, colons allowed -> lower-case
    hex without colons; '' = none."""
    if not isinstance(value, str):
        raise _Invalid("one fingerprint is needed, not a list")
    text = value.strip().replace(":", "").lower()
    if text and (len(text) != 64 or any(c not in "0123456789abcdef" for c in text)):
        raise _Invalid(f"{value.strip()!r} is not a SHA-256 fingerprint (64 hex digits)")
    return text


def _quota_check(parse):
    def check(value):
        if not isinstance(value, str):
            raise _Invalid("one value is needed, not a list")
        try:
            return parse(value)
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
    return check


CHECKS = {"quota_storage": _quota_check(parse_storage), "quota_messages": _quota_check(parse_messages),
          "listen_list": _listen_list, "hostport": _hostport, "listen_hostport": _listen_hostport,
          "nameserver_list": _nameserver_list, "cidr_list": _cidr_list,
          "send_as_list": _send_as_list, "fingerprint": _fingerprint}
