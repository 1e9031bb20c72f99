"""smtp/replies.py: the EHLO extension lines built once per combination of settings."""

from clevermail.smtp import replies as R


def test_ehlo_extensions_wire_format():
    wire = R.ehlo_extensions(2000, True, True, ("PLAIN", "LOGIN"))
    assert wire == (b"250-SIZE 2000\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
                    b"250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n250-STARTTLS\r\n250-REQUIRETLS\r\n"
                    b"250-AUTH PLAIN LOGIN\r\n250 HELP\r\n")
    # the same reply multiline() builds, behind the greeting line the session puts first
    lines = ["SIZE 2000", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "DSN",
             "STARTTLS", "REQUIRETLS", "AUTH PLAIN LOGIN", "HELP"]
    assert b"250-mx greets c\r\n" + wire == R.multiline(250, ["mx greets c", *lines])


def test_ehlo_extensions_every_argument_is_part_of_the_key():
    plain = R.ehlo_extensions(1000, False, False, ())
    assert plain == (b"250-SIZE 1000\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
                     b"250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n250 HELP\r\n")
    assert R.ehlo_extensions(1000, False, False, ()) is plain          # built once
    assert b"SIZE 1001\r\n" in R.ehlo_extensions(1001, False, False, ())
    assert b"STARTTLS" in R.ehlo_extensions(1000, True, False, ())
    assert b"REQUIRETLS" in R.ehlo_extensions(1000, False, True, ())
    assert b"250-AUTH PLAIN\r\n" in R.ehlo_extensions(1000, False, False, ("PLAIN",))
    assert R.ehlo_extensions(1000, False, False, ()) == plain           # none of them changed it
