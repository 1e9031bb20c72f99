"""The Authentication-Results header field, RFC 8601: what the checks found, under our
authserv-id (the server's hostname), and the removal of fields that claim that id.

A field with our authserv-id that arrives from outside is a forgery (a mail client
would show it as our verdict), so every one is removed from the header before ours
is prepended (RFC 8601 5).  Fields of other authserv-ids stay: they are someone
else's word, shown as such.
"""

import re

from ..smtp.message import Header

_FIELD = re.compile(rb"^authentication-results[ \t]*:", re.I)
_PVALUE_SAFE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]+$")


def pvalue(text):
    """A property value: as it is when it is a token or an address, else quoted."""
    if text and _PVALUE_SAFE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def field(authserv_id, results):
    """The header field (CRLF bytes), one result per folded line.  `results` are
    (method, result, comment or "", [(ptype.property, value), ...])."""
    if not results:
        parts = ["none"]                # RFC 8601 2.2: no-result
    else:
        parts = []
        for method, result, comment, props in results:
            text = f"{method}={result}"
            if comment:
                text += " (" + comment.replace("(", "[").replace(")", "]").replace("\\", "/") + ")"
            for name, value in props:
                if value:
                    text += f" {name}={pvalue(value)}"
            parts.append(text)
    return (f"Authentication-Results: {authserv_id};\r\n\t" + ";\r\n\t".join(parts) + "\r\n").encode(
        "utf-8", "replace")


def strip_ours(message, authserv_id, header=None):
    """`message` (CRLF bytes) without the Authentication-Results fields that claim
    `authserv_id` (case-insensitive), folded lines and all; the body untouched."""
    return strip_ours_header(Header.of(message, header), authserv_id).data


def strip_ours_header(header, authserv_id):
    """strip_ours on a smtp.message.Header: the Header of the result (`header` itself
    when there is nothing to remove)."""
    wanted = authserv_id.lower().encode("utf-8", "replace")
    # the slice compared first: the pattern for every field of every message cost more
    drop = {i for i, lines in enumerate(header.fields)
            if lines[0][:22].lower() == b"authentication-results" and _FIELD.match(lines[0])
            and _authserv_id(b"".join(lines).split(b":", 1)[1]) == wanted}
    return header.without(drop) if drop else header


def _authserv_id(value):
    """The authserv-id of a field value (comments dropped), lower-cased bytes."""
    value = re.sub(rb"\([^)]*\)", b" ", value)
    return value.split(b";", 1)[0].strip().split()[0].lower() if value.strip() else b""
