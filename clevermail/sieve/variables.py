"""RFC 5229 variables: ${name} and ${N} expansion, and the modifiers of "set".

Names are case-insensitive; an unknown variable expands to "", a match variable
past the last wildcard too; "${" not followed by a valid name and "}" stays as
written, as do namespaced names (no namespaces are supported).  Values are bounded
(MAX_VALUE characters, MAX_VARIABLES names) so a script cannot grow one without end.
"""

import re

MAX_VALUE = 4096
MAX_VARIABLES = 256
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+)\}")

# set's modifiers by precedence, highest first (RFC 5229 4.1)
_MODIFIERS = (("lower", lambda v: v.lower()), ("upper", lambda v: v.upper()),
              ("lowerfirst", lambda v: v[:1].lower() + v[1:]),
              ("upperfirst", lambda v: v[:1].upper() + v[1:]),
              ("quotewildcard", lambda v: re.sub(r"([*?\\])", r"\\\1", v)),
              ("length", lambda v: str(len(v))))


class Variables:
    def __init__(self):
        self.values = {}
        self.match = []           # ${0}, ${1}, ... of the last :matches that matched

    def expand(self, text):
        if "${" not in text:
            return text

        def one(m):
            name = m.group(1)
            if name.isdigit():
                n = int(name)
                return self.match[n] if n < len(self.match) else ""
            return self.values.get(name.lower(), "")

        return _REF.sub(one, text)[:MAX_VALUE * 4]

    def set(self, name, value, modifiers=()):
        for modifier, apply in _MODIFIERS:
            if modifier in modifiers:
                value = apply(value)
        key = name.lower()
        if key not in self.values and len(self.values) >= MAX_VARIABLES:
            raise OverflowError("too many variables")
        self.values[key] = value[:MAX_VALUE]

    def get(self, name):
        return self.values.get(name.lower(), "")
