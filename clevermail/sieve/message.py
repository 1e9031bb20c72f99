"""What a Sieve run reads of a message (RFC 5228 2.4.2.2, 5.x; RFC 5173): header
fields unfolded and with their encoded-words decoded (RFC 2047, email.header),
addresses (email.utils.getaddresses), the size, and the body as :raw, :content or
:text sees it.  Built from the message's bytes as it is stored; each part parsed
only when a test first asks for it.
"""

import email
import email.errors
import email.header
import email.policy
import email.utils
import re

MAX_BODY_CHARS = 4 << 20      # the body text a body test looks at
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def decode_words(value):
    """A header value with RFC 2047 encoded-words decoded (unknown charsets kept)."""
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return value


class MessageView:
    def __init__(self, data):
        self.data = data
        self.size = len(data)
        end = data.find(b"\r\n\r\n")
        sep = 4
        if end < 0:
            end, sep = data.find(b"\n\n"), 2
        if end < 0:
            end, sep = len(data), 0
        self.head = data[:end]           # the header section, without the blank line
        self._body_at = end + sep
        self._fields = None
        self._parsed = None
        self._decoded = {}        # name -> decoded values (a script asks for the same fields often)
        self._addresses = {}      # name -> addr-specs

    # -- header fields ---------------------------------------------------------------
    def fields(self):
        """[(lower-case name, raw unfolded value)] in order."""
        if self._fields is None:
            text = _FOLD.sub("", self.head.decode("utf-8", "replace"))
            fields = []
            for line in text.splitlines():
                name, colon, value = line.partition(":")
                if colon and name and " " not in name and "\t" not in name:
                    fields.append((name.lower(), value.strip()))
            self._fields = fields
        return self._fields

    def raw_values(self, name):
        name = name.lower()
        return [value for field, value in self.fields() if field == name]

    def header(self, name):
        """The decoded values of every field called `name` (case-insensitive)."""
        key = name.lower()
        values = self._decoded.get(key)
        if values is None:
            values = self._decoded[key] = [decode_words(v) for v in self.raw_values(key)]
        return values

    def exists(self, name):
        name = name.lower()
        return any(field == name for field, _ in self.fields())

    def addresses(self, name):
        """The addr-specs in the fields called `name`, in order ("" entries of group
        syntax left out)."""
        key = name.lower()
        found = self._addresses.get(key)
        if found is None:
            found = self._addresses[key] = [
                addr for _, addr in email.utils.getaddresses(self.raw_values(key)) if addr]
        return found

    # -- body (RFC 5173) ---------------------------------------------------------------
    def raw_body(self):
        return self.data[self._body_at:self._body_at + MAX_BODY_CHARS].decode("utf-8", "replace")

    def body_parts(self, types):
        """The decoded text of the leaf parts whose Content-Type matches one of `types`
        ("" any, "text" any text/*, "text/html" exactly)."""
        if self._parsed is None:
            self._parsed = email.message_from_bytes(self.data, policy=email.policy.compat32)
        out, total = [], 0
        for part in self._parsed.walk():
            if part.is_multipart():
                continue
            ctype = part.get_content_type().lower()
            maintype = ctype.split("/")[0]
            if not any(t == "" or t.lower() in (ctype, maintype) for t in types):
                continue
            payload = part.get_payload(decode=True) or b""
            if maintype == "text":
                charset = part.get_content_charset() or "us-ascii"
                try:
                    text = payload.decode(charset, "replace")
                except LookupError:
                    text = payload.decode("utf-8", "replace")
            else:
                text = payload.decode("latin-1")
            text = text[:MAX_BODY_CHARS - total]
            total += len(text)
            out.append(text)
            if total >= MAX_BODY_CHARS:
                break
        return out
