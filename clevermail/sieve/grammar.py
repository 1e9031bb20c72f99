"""The one table of Sieve commands and tests: for each, the extension that brings it,
its tagged arguments (with the value each takes, the extension a tag needs, and the
group of tags that exclude each other), its positional arguments, its tests and
block.  check.py reads it; the interpreter (interp.py) has one function per entry.

Core (RFC 5228) and the extensions CleverMail implements: fileinto, envelope,
subaddress (RFC 5233), copy (RFC 3894), imap4flags (RFC 5232), body (RFC 5173),
variables (RFC 5229), vacation (RFC 5230), reject and ereject (RFC 5429), mailbox
(RFC 5490), relational (RFC 5231), and the comparators of RFC 4790 named in
RFC 5228 2.7.3.
"""

from dataclasses import dataclass, field

FLAG, STRING, STRLIST, NUMBER = "flag", "string", "string list", "number"

EXTENSIONS = ("fileinto", "envelope", "subaddress", "copy", "imap4flags", "body",
              "variables", "vacation", "reject", "ereject", "mailbox", "relational",
              "comparator-i;octet", "comparator-i;ascii-casemap",
              "comparator-i;ascii-numeric")

# comparators usable without a require (RFC 5228 2.7.3), and the others
COMPARATORS = {"i;octet": None, "i;ascii-casemap": None,
               "i;ascii-numeric": "comparator-i;ascii-numeric"}


@dataclass(frozen=True)
class TagSpec:
    value: str = FLAG            # FLAG (no value) or the kind of the value that follows
    ext: str = None              # the extension the tag needs, if any
    group: str = None            # tags of one group exclude each other


@dataclass(frozen=True)
class Spec:
    ext: str = None                              # None: core
    tags: dict = field(default_factory=dict)     # name -> TagSpec
    positional: tuple = ((),)                    # the allowed shapes (tuples of kinds)
    tests: object = 0                            # 0, 1 or "many"
    block: bool = False                          # a block is required (if/elsif/else)
    required_group: str = None                   # one tag of this group must be given


_MATCH = {"is": TagSpec(group="match"), "contains": TagSpec(group="match"),
          "matches": TagSpec(group="match"),
          # RFC 5231: :value "gt" / :count "ge" ...
          "value": TagSpec(STRING, ext="relational", group="match"),
          "count": TagSpec(STRING, ext="relational", group="match")}
RELATIONS = ("gt", "ge", "lt", "le", "eq", "ne")
_COMPARATOR = {"comparator": TagSpec(STRING, group="comparator")}
_ADDRESS_PART = {"all": TagSpec(group="address-part"), "localpart": TagSpec(group="address-part"),
                 "domain": TagSpec(group="address-part"),
                 "user": TagSpec(ext="subaddress", group="address-part"),
                 "detail": TagSpec(ext="subaddress", group="address-part")}
_MATCHING = {**_MATCH, **_COMPARATOR}
_COPY = {"copy": TagSpec(ext="copy")}
_FLAGS = {"flags": TagSpec(STRLIST, ext="imap4flags")}
_TWO_LISTS = ((STRLIST, STRLIST),)

COMMANDS = {
    "require": Spec(positional=((STRLIST,),)),
    "if": Spec(tests=1, block=True),
    "elsif": Spec(tests=1, block=True),
    "else": Spec(block=True),
    "stop": Spec(),
    "keep": Spec(tags=dict(_FLAGS)),
    "discard": Spec(),
    "fileinto": Spec(ext="fileinto", tags={**_COPY, **_FLAGS, "create": TagSpec(ext="mailbox")},
                     positional=((STRING,),)),
    "redirect": Spec(tags=dict(_COPY), positional=((STRING,),)),
    "setflag": Spec(ext="imap4flags", positional=((STRLIST,), (STRING, STRLIST))),
    "addflag": Spec(ext="imap4flags", positional=((STRLIST,), (STRING, STRLIST))),
    "removeflag": Spec(ext="imap4flags", positional=((STRLIST,), (STRING, STRLIST))),
    "set": Spec(ext="variables",
                tags={"lower": TagSpec(group="mod40"), "upper": TagSpec(group="mod40"),
                      "lowerfirst": TagSpec(group="mod30"), "upperfirst": TagSpec(group="mod30"),
                      "quotewildcard": TagSpec(group="mod20"), "length": TagSpec(group="mod10")},
                positional=((STRING, STRING),)),
    "vacation": Spec(ext="vacation",
                     tags={"days": TagSpec(NUMBER), "subject": TagSpec(STRING),
                           "from": TagSpec(STRING), "addresses": TagSpec(STRLIST),
                           "mime": TagSpec(), "handle": TagSpec(STRING)},
                     positional=((STRING,),)),
    "reject": Spec(ext="reject", positional=((STRING,),)),
    "ereject": Spec(ext="ereject", positional=((STRING,),)),
}

TESTS = {
    "address": Spec(tags={**_MATCHING, **_ADDRESS_PART}, positional=_TWO_LISTS),
    "envelope": Spec(ext="envelope", tags={**_MATCHING, **_ADDRESS_PART}, positional=_TWO_LISTS),
    "header": Spec(tags=dict(_MATCHING), positional=_TWO_LISTS),
    "exists": Spec(positional=((STRLIST,),)),
    "size": Spec(tags={"over": TagSpec(group="size"), "under": TagSpec(group="size")},
                 positional=((NUMBER,),), required_group="size"),
    "allof": Spec(tests="many"),
    "anyof": Spec(tests="many"),
    "not": Spec(tests=1),
    "true": Spec(),
    "false": Spec(),
    "hasflag": Spec(ext="imap4flags", tags=dict(_MATCHING), positional=((STRLIST,), _TWO_LISTS[0])),
    "body": Spec(ext="body", tags={**_MATCHING, "raw": TagSpec(group="transform"),
                                    "content": TagSpec(STRLIST, group="transform"),
                                    "text": TagSpec(group="transform")},
                 positional=((STRLIST,),)),
    "string": Spec(ext="variables", tags=dict(_MATCHING), positional=_TWO_LISTS),
    "mailboxexists": Spec(ext="mailbox", positional=((STRLIST,),)),
}
