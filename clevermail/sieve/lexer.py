"""The Sieve lexer (RFC 5228 2.2-2.4, 8.1): a script's text -> tokens with their line.

Tokens: identifiers, tags (":name"), numbers with the K/M/G quantifiers, quoted
strings (only \\" and \\\\ are escapes; any other backslash is dropped, 2.4.2),
multi-line strings ("text:" up to a line holding a single ".", with a leading ".."
unstuffed to "."), and the specials [ ] ( ) { } , ;.  Comments ("#" to the end of the
line, "/* ... */") are skipped.  Line ends may be CRLF or LF.  Pure: text in, a list
of Token or a SieveSyntaxError with the line out.
"""

from dataclasses import dataclass

from .errors import SieveSyntaxError

SPECIALS = "[](){},;"
MAX_NUMBER = 2 ** 63 - 1
_QUANTIFIERS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_ID_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_ID_CHARS = _ID_START | set("0123456789")


@dataclass(frozen=True)
class Token:
    kind: str          # "identifier" "tag" "number" "string" or the special character
    value: object      # name (lower case), int, str, or the character
    line: int


def tokenize(text):
    """All tokens of `text` (str), or SieveSyntaxError."""
    tokens = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise SieveSyntaxError("unterminated /* comment", line)
            line += text.count("\n", i, end)
            i = end + 2
        elif c in SPECIALS:
            tokens.append(Token(c, c, line))
            i += 1
        elif c == '"':
            value, i, lines = _quoted(text, i + 1, line)
            tokens.append(Token("string", value, line))
            line += lines
        elif c == ":":
            j = i + 1
            if j >= n or text[j] not in _ID_START:
                raise SieveSyntaxError("':' must start a tag name", line)
            while j < n and text[j] in _ID_CHARS:
                j += 1
            tokens.append(Token("tag", text[i + 1:j].lower(), line))
            i = j
        elif c.isdigit() and c.isascii():
            j = i
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
            value = int(text[i:j])
            if j < n and text[j].upper() in _QUANTIFIERS:
                value *= _QUANTIFIERS[text[j].upper()]
                j += 1
            if j < n and text[j] in _ID_CHARS:
                raise SieveSyntaxError(f"bad number {text[i:j + 1]!r}", line)
            if value > MAX_NUMBER:
                raise SieveSyntaxError("number too large", line)
            tokens.append(Token("number", value, line))
            i = j
        elif c in _ID_START:
            j = i
            while j < n and text[j] in _ID_CHARS:
                j += 1
            word = text[i:j].lower()
            if word == "text" and j < n and text[j] == ":":
                value, i, lines = _multiline(text, j + 1, line)
                tokens.append(Token("string", value, line))
                line += lines
            else:
                tokens.append(Token("identifier", word, line))
                i = j
        else:
            raise SieveSyntaxError(f"unexpected character {c!r}", line)
    return tokens


def _quoted(text, i, line):
    """A quoted string from just after its opening quote: (value, next index, lines)."""
    out = []
    start_line = line
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out).replace("\r\n", "\n"), i + 1, line - start_line
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])       # \" and \\ are the escapes; others lose the \
            line += text[i + 1] == "\n"
            i += 2
            continue
        line += c == "\n"
        out.append(c)
        i += 1
    raise SieveSyntaxError("unterminated string", start_line)


def _multiline(text, i, line):
    """A multi-line string from just after "text:": (value, next index, lines)."""
    n = len(text)
    # the rest of the "text:" line: white space and maybe a hash comment
    end = text.find("\n", i)
    if end < 0:
        raise SieveSyntaxError("unterminated multi-line string", line)
    rest = text[i:end].rstrip("\r")
    stripped = rest.lstrip(" \t")
    if stripped and not stripped.startswith("#"):
        raise SieveSyntaxError("text: must end its line (or be followed by a # comment)", line)
    start_line = line
    i = end + 1
    line += 1
    out = []
    while i < n:
        end = text.find("\n", i)
        if end < 0:
            break
        raw = text[i:end]
        content = raw[:-1] if raw.endswith("\r") else raw
        i = end + 1
        line += 1
        if content == ".":
            return "".join(out), i, line - start_line
        if content.startswith(".."):
            content = content[1:]
        out.append(content + "\n")
    raise SieveSyntaxError("unterminated multi-line string (no line with a single '.')",
                           start_line)
