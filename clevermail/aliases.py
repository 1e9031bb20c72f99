"""Aliases: addresses of the local domains that are not accounts, stored in
aliases.ini beside users.ini.

    [aliases]
    sales@example.org = alice@example.org, bob@example.org
    info@example.org = alice@example.org, partner@elsewhere.example
    @example.org = alice@example.org

A target is a local address (an account, or another alias: expanded by routing.py)
or an external address (forwarded through the relay with SRS); several targets make
a list.  `@domain` is the catch-all of a local domain, used only when no account or
alias matches.  Addresses are kept in one spelling: lower-case, A-label domains, as
accounts.py compares them.  `clevermail alias add|del|list` edits the file under its
lock (ini_file.py); the running server sees a change at its next lookup.
"""

from .accounts import AccountError, domain_to_ascii
from .ini_file import SharedIniFile

SECTION = "aliases"
MAX_TARGETS = 1000          # targets one alias may list


class AliasError(ValueError):
    """An invalid alias or target, or an operation that cannot be done."""


def canonical_address(address):
    """'Sales@Bücher.Example' -> 'sales@xn--bcher-kva.example'; AliasError if it is
    not local@domain with a valid domain."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain or any(c.isspace() or c in ",\"<>" for c in local):
        raise AliasError(f"{address.strip()!r} is not an address (local@domain)")
    try:
        return f"{local.lower()}@{domain_to_ascii(domain)}"
    except AccountError as exc:
        raise AliasError(str(exc)) from None


class AliasStore:
    def __init__(self, path, domains):
        self.file = SharedIniFile(path, header=(
            "CleverMail aliases: address = target, target, ...  (@domain = the catch-all)",
            "Manage with `clevermail alias add|del|list`."))
        self.domains = [domain_to_ascii(d) for d in domains]

    @property
    def path(self):
        return self.file.path

    # -- names ------------------------------------------------------------------------
    def canonical_alias(self, address):
        """An alias address (or '@domain') in canonical form; it must be in a local domain."""
        address = address.strip()
        if address.startswith("@"):
            try:
                domain = domain_to_ascii(address[1:])
            except AccountError as exc:
                raise AliasError(str(exc)) from None
            alias = f"@{domain}"
        else:
            alias = canonical_address(address)
            domain = alias.rpartition("@")[2]
        if domain not in self.domains:
            raise AliasError(f"{domain!r} is not a local domain (local domains: {', '.join(self.domains)})")
        return alias

    def reload(self, domains=None):
        """Read aliases.ini again at the next lookup (a configuration reload), with new
        local domains if given (which aliases are valid depends on them)."""
        if domains is not None:
            self.domains = [domain_to_ascii(d) for d in domains]
        self.file.reread()

    # -- reading ------------------------------------------------------------------------
    def _parse(self, cfg):
        table = {}
        if cfg is None or SECTION not in cfg:
            return table
        for key, value in cfg[SECTION].items():
            values = [value] if isinstance(value, str) else list(value)
            try:
                alias = self.canonical_alias(key)
                targets = tuple(dict.fromkeys(canonical_address(t) for t in values if t.strip()))
            except AliasError:
                continue            # a hand-edited bad line must not take the others down
            if targets:
                table[alias] = targets[:MAX_TARGETS]
        return table

    def table(self):
        """{alias: (target, ...)} as the file is now."""
        return self.file.current(self._parse)

    def targets(self, alias):
        """The targets of a canonical alias address or '@domain', or ()."""
        return self.table().get(alias, ())

    def list(self):
        return sorted(self.table().items())

    # -- writing ------------------------------------------------------------------------
    def add(self, address, targets):
        """Add targets to an alias (created if new); returns the alias and its targets."""
        alias = self.canonical_alias(address)
        new = [canonical_address(t) for t in targets]
        if not new:
            raise AliasError("an alias needs at least one target")
        with self.file.edit() as cfg:
            section = cfg.setdefault(SECTION, {})
            key = self._find(section, alias)
            old = section.get(key, []) if key else []
            old = [old] if isinstance(old, str) else list(old)
            merged = list(dict.fromkeys([*old, *new]))
            if len(merged) > MAX_TARGETS:
                raise AliasError(f"an alias has at most {MAX_TARGETS} targets")
            if key and key != alias:
                del section[key]
            section[alias] = merged
        return alias, tuple(merged)

    def remove(self, address, targets=()):
        """Remove the whole alias, or only the given targets of it."""
        alias = self.canonical_alias(address)
        drop = {canonical_address(t) for t in targets}
        with self.file.edit() as cfg:
            section = cfg.get(SECTION, {})
            key = self._find(section, alias)
            if key is None:
                raise AliasError(f"no such alias: {alias}")
            if not drop:
                del section[key]
                return alias, ()
            old = section[key]
            old = [old] if isinstance(old, str) else list(old)
            missing = drop - {canonical_address(t) for t in old}
            if missing:
                raise AliasError(f"{alias} has no target {', '.join(sorted(missing))}")
            left = [t for t in old if canonical_address(t) not in drop]
            if left:
                section[key] = left
            else:
                del section[key]
            return alias, tuple(left)

    def _find(self, section, alias):
        for key in section:
            try:
                if self.canonical_alias(key) == alias:
                    return key
            except AliasError:
                continue
        return None
