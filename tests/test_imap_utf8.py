"""UTF8=ACCEPT (RFC 6855) over socket.socketpair(): ENABLE, mailbox names in plain UTF-8
in both directions once enabled (modified UTF-7 before, and for other sessions), the
Net-Unicode rule for new names, UTF-8 in quoted strings (and BAD for octets that are not
UTF-8), SEARCH without CHARSET, the APPEND "UTF8 (literal8)" form and CATENATE part,
8-bit header fields refused without ENABLE, and response text kept US-ASCII for a
session that did not enable UTF-8."""

from imap_helpers import (  # noqa: F401 (client, handler, open_session, store: fixtures)
    ALICE, append, check, client, handler, message, open_session, store)

UTF8_MESSAGE = ("From: Jürgen <j@example.test>\r\nTo: alice@example.test\r\n"
                "Subject: Grüße aus Köln\r\n\r\nHallo.\r\n").encode()


def enabled(open_session, capability="UTF8=ACCEPT"):
    c = open_session()
    c.login()
    r = c.expect(f"ENABLE {capability}")
    assert r.untagged == [f"* ENABLED {capability}"]
    return c


def raw_command(client, data):
    """Send `tag ` + data (bytes, CRLF included) and read the reply."""
    tag = next(client.tags)
    client.send(tag.encode() + b" " + data)
    return client.read_reply(tag)


def test_capability_and_enable_once(open_session):
    c = open_session()
    c.login()
    caps = c.expect("CAPABILITY").untagged[0].split()
    assert "UTF8=ACCEPT" in caps and "IMAP4rev1" in caps
    assert c.expect("ENABLE UTF8=ACCEPT").untagged == ["* ENABLED UTF8=ACCEPT"]
    assert c.expect("ENABLE UTF8=ACCEPT").untagged == ["* ENABLED"]
    # RFC 5161 3.1: ENABLE changes no capability
    assert c.expect("CAPABILITY").untagged[0].split() == caps


def test_names_are_utf8_after_enable_and_mutf7_before(open_session):
    old = open_session()
    old.login()
    new = enabled(open_session)
    new.expect('CREATE "Entwürfe/Café & Bar"')
    # the session that did not enable UTF-8 sees modified UTF-7, "&" as "&-"
    assert 'LIST (\\HasNoChildren) "/" "Entw&APw-rfe/Caf&AOk- &- Bar"' in \
        "\n".join(old.expect('LIST "" "Entw*"').untagged)
    assert new.expect('LIST "" "Entw*"').untagged == [
        '* LIST (\\HasChildren) "/" "Entwürfe"',
        '* LIST (\\HasNoChildren) "/" "Entwürfe/Café & Bar"']
    # UTF-8 in a quoted string, not a literal
    tag = next(new.tags)
    new.send(f'{tag} LIST "" "Entwürfe/%"\r\n'.encode())
    assert new.raw_line() == '* LIST (\\HasNoChildren) "/" "Entwürfe/Café & Bar"\r\n'.encode()
    assert new.raw_line().startswith(f"{tag} OK".encode())
    assert new.expect('STATUS "Entwürfe/Café & Bar" (MESSAGES)').untagged == [
        '* STATUS "Entwürfe/Café & Bar" (MESSAGES 0)']
    new.expect('SELECT "Entwürfe/Café & Bar"', code="READ-WRITE")
    new.expect('RENAME "Entwürfe/Café & Bar" "Entwürfe/Bäckerei"')
    new.expect('SUBSCRIBE "Entwürfe/Bäckerei"')
    assert new.expect('LSUB "" "Entwürfe/*"').untagged == ['* LSUB () "/" "Entwürfe/Bäckerei"']
    assert old.expect('LSUB "" "Entw*"').untagged == ['* LSUB () "/" "Entw&APw-rfe/B&AOQ-ckerei"']
    # the UTF-8 session takes "&..." as it is: no such folder
    new.expect('SELECT "Entw&APw-rfe/B&AOQ-ckerei"', "NO", "NONEXISTENT")
    old.expect('SELECT "Entw&APw-rfe/B&AOQ-ckerei"', code="READ-WRITE")
    # a UTF-8 name from a session that did not enable UTF-8 is no modified UTF-7
    old.expect('CREATE "Entwürfe/x"', "NO", "CANNOT")


def test_new_names_must_be_net_unicode(open_session):
    c = enabled(open_session)
    # "e" + COMBINING ACUTE ACCENT is not NFC ("é" is)
    c.expect('CREATE "Cafe\u0301"', "NO", "CANNOT")
    c.expect('CREATE "Caf\u00e9"')
    c.expect('RENAME "Caf\u00e9" "Cafe\u0301"', "NO", "CANNOT")
    c.expect('CREATE "a\u2028b"', "NO", "CANNOT")
    c.expect('CREATE "a\u0085b"', "NO", "CANNOT")
    assert c.expect('LIST "" "Caf*"').untagged == ['* LIST (\\HasNoChildren) "/" "Café"']


def test_octets_that_are_not_utf8_are_bad(open_session, client):
    for c in (client, enabled(open_session)):
        r = raw_command(c, b'CREATE "caf\xe9"\r\n')
        check(r, "BAD")
        assert "UTF-8" in r.tagged
        check(raw_command(c, b"CREATE caf\xc3\xa9\r\n"), "BAD")     # 8-bit in an atom
        c.expect("NOOP")


def test_search_takes_no_charset_after_enable(open_session, client, store):
    store.deliver_local("", [ALICE], UTF8_MESSAGE)
    client.select()
    assert client.expect("SEARCH CHARSET UTF-8 ALL").untagged == ["* SEARCH 1"]
    c = enabled(open_session)
    c.select()
    check(c.command("SEARCH CHARSET UTF-8 ALL"), "BAD")
    check(c.command("SEARCH CHARSET US-ASCII ALL"), "BAD")
    check(c.command("SEARCH RETURN (COUNT) CHARSET UTF-8 ALL"), "BAD")
    assert c.expect('SEARCH SUBJECT "Grüße"').untagged == ["* SEARCH 1"]
    # SORT and THREAD keep their mandatory charset (RFC 6855 3 names SEARCH only)
    assert c.expect("SORT (SUBJECT) UTF-8 ALL").untagged == ["* SORT 1"]


def test_append_utf8_literal8_and_fetch_raw_header(open_session):
    c = enabled(open_session)
    r = raw_command(c, b"APPEND INBOX (\\Seen) UTF8 (~{%d+}\r\n" % len(UTF8_MESSAGE) + UTF8_MESSAGE + b")\r\n")
    check(r, "OK")
    c.select()
    tag = next(c.tags)
    c.send(f"{tag} FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE)\r\n")
    data = b""
    while not data.endswith(f"{tag} OK FETCH completed\r\n".encode()):
        data += c.sock.recv(65536)
    # header bytes and ENVELOPE strings as stored: UTF-8, never re-encoded
    assert "Subject: Grüße aus Köln\r\n".encode() in data
    assert "Grüße aus Köln".encode() in data.split(b"ENVELOPE", 1)[1]
    assert "Jürgen".encode() in data
    assert b"\\Seen" in data


def test_catenate_takes_a_utf8_part(open_session):
    c = enabled(open_session)
    head, body = UTF8_MESSAGE.split(b"\r\n\r\n", 1)
    r = raw_command(c, b"APPEND INBOX CATENATE (UTF8 (~{%d+}\r\n" % (len(head) + 4) + head + b"\r\n\r\n"
                    + b") TEXT {%d+}\r\n" % len(body) + body + b")\r\n")
    check(r, "OK")
    c.select()
    assert c.expect("FETCH 1 (RFC822.SIZE)").untagged == [f"* 1 FETCH (RFC822.SIZE {len(UTF8_MESSAGE)})"]


def test_eight_bit_header_fields_need_enable(client, open_session):
    check(append(client, "INBOX", UTF8_MESSAGE), "NO", "CANNOT")
    # 8-bit in the body alone is fine
    check(append(client, "INBOX", b"Subject: plain\r\n\r\nK\xc3\xb6ln\r\n"), "OK")
    # also refused in the UTF8 form and in MULTIAPPEND, nothing stored
    check(raw_command(client, b"APPEND INBOX UTF8 (~{%d+}\r\n" % len(UTF8_MESSAGE) + UTF8_MESSAGE + b")\r\n"),
          "NO", "CANNOT")
    check(raw_command(client, b"APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n"
                      % (len(message(1)), message(1), len(UTF8_MESSAGE), UTF8_MESSAGE)), "NO", "CANNOT")
    assert client.expect("STATUS INBOX (MESSAGES)").untagged == ['* STATUS "INBOX" (MESSAGES 1)']
    c = enabled(open_session)
    check(append(c, "INBOX", UTF8_MESSAGE), "OK")
    check(raw_command(c, b"APPEND INBOX UTF8 (\"x\")\r\n"), "BAD")


def test_response_text_is_ascii_unless_enabled(client, open_session):
    # the store names the (decoded) folder in its refusal: an empty hierarchy level
    r = raw_command(client, b'CREATE "&APw-//x"\r\n')
    check(r, "NO", "CANNOT")
    assert r.tagged.isascii() and "\\xfc" in r.tagged
    c = enabled(open_session)
    r = raw_command(c, 'CREATE "ü//x"\r\n'.encode())
    check(r, "NO", "CANNOT")
    assert "ü" in r.tagged
