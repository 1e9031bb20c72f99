"""`clevermail config check` beyond the schema (clevermail/config_check.py): the TLS
certificate and key (exist, readable, a matching pair; trustme certificates), names,
and the warnings (hostname localhost, no postmaster, users-file sections skipped)."""
import pytest
import trustme
from click.testing import CliRunner

from clevermail.accounts import AccountStore
from clevermail.cli import main


@pytest.fixture
def pems(tmp_path):
    """(certificate, key, other key) PEM paths: a server certificate and its key from one
    trustme CA, and the key of a second certificate."""
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.test")
    other = ca.issue_cert("other.example.test")
    paths = []
    for name, blob in (("cert.pem", cert.cert_chain_pems[0]), ("key.pem", cert.private_key_pem),
                       ("other-key.pem", other.private_key_pem)):
        path = tmp_path / name
        blob.write_to_path(str(path))
        paths.append(str(path))
    return paths


def check(path):
    return CliRunner().invoke(main, ["config", "check", path], catch_exceptions=False)


def add_users(tmp_path, *names, domains=("example.test", "localhost")):
    store = AccountStore(str(tmp_path / "users.ini"), list(domains))
    for name in names:
        store.add(name, "pw")


def test_a_good_pair_passes(tmp_path, write_config, pems):
    cert, key, _ = pems
    add_users(tmp_path, "postmaster@example.test", "postmaster@localhost")
    result = check(write_config(tmp_path, tls={"certificate": cert, "key": key}))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "config ok\n", "")


@pytest.mark.parametrize("which, make, expected", [
    ("certificate", lambda p: None, "no such file"),
    ("key", lambda p: None, "no such file"),
    ("certificate", lambda p: p.mkdir(), "is a directory, not a file"),
    ("certificate", lambda p: p.write_text("not a certificate\n"), "not a PEM certificate"),
    ("key", lambda p: p.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
     "not a usable PEM private key"),
])
def test_certificate_and_key_problems_name_the_file(tmp_path, write_config, pems, which, make, expected):
    cert, key, _ = pems
    bad = tmp_path / f"bad-{which}.pem"
    make(bad)
    files = {"certificate": cert, "key": key, which: str(bad)}
    cfg = write_config(tmp_path, tls=files)
    result = check(cfg)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [line for line in result.stderr.splitlines()
                                          if line.startswith(f"{cfg}: [tls] {which}: {bad}: ")]
    assert len(result.stderr.splitlines()) == 1 and expected in result.stderr


def test_a_key_of_another_certificate_is_a_mismatch(tmp_path, write_config, pems):
    cert, _, other_key = pems
    cfg = write_config(tmp_path, tls={"certificate": cert, "key": other_key})
    result = check(cfg)
    assert result.exit_code == 1
    assert result.stderr == (f"{cfg}: [tls] certificate {cert} and key {other_key} do not match "
                             "(the key is not the certificate's)\n")


def test_relative_tls_paths_are_taken_from_the_config_folder(tmp_path, write_config, pems):
    add_users(tmp_path, "postmaster@example.test", "postmaster@localhost")
    cfg = write_config(tmp_path, tls={"certificate": "cert.pem", "key": "key.pem"})
    assert check(cfg).stdout == "config ok\n"


def test_names_are_checked(tmp_path, write_config):
    cfg = write_config(tmp_path, server={"domains": ["exa mple", "example.test"],
                                         "hostname": "bad host name!"})
    result = check(cfg)
    assert result.exit_code == 1
    assert f"{cfg}: [server] domains: invalid domain 'exa mple'" in result.stderr
    assert f"{cfg}: [server] hostname: invalid host name 'bad host name!'" in result.stderr


def test_warnings_hostname_localhost_and_postmaster(tmp_path, write_config):
    add_users(tmp_path, "alice@example.test")
    result = check(write_config(tmp_path, server={"hostname": "localhost"}))
    assert result.exit_code == 0 and result.stdout == "config ok\n"
    assert result.stderr.splitlines() == [
        "warning: [server] hostname is 'localhost': other mail servers see this name in EHLO and "
        "Received headers; set the name your MX record points to",
        "warning: no postmaster@example.test account or alias and no [server] postmaster account: "
        "mail to postmaster@example.test goes to alice@example.test",
        "warning: no postmaster@localhost account or alias and no [server] postmaster account: "
        "mail to postmaster@localhost goes to alice@example.test",
    ]


def test_postmaster_setting(tmp_path, write_config):
    add_users(tmp_path, "alice@example.test")
    ok = check(write_config(tmp_path, server={"postmaster": "alice@example.test"}))
    assert (ok.exit_code, ok.stderr) == (0, "")
    ghost = check(write_config(tmp_path, server={"postmaster": "ghost@nowhere.test"}))
    assert ghost.exit_code == 0
    assert ghost.stderr.splitlines() == [
        f"warning: [server] postmaster 'ghost@nowhere.test' is not an account in {tmp_path / 'users.ini'}",
        "warning: no postmaster@example.test account or alias and no [server] postmaster account: "
        "mail to postmaster@example.test is refused",
        "warning: no postmaster@localhost account or alias and no [server] postmaster account: "
        "mail to postmaster@localhost is refused"]


def test_a_postmaster_alias_is_enough(tmp_path, write_config):
    from clevermail.aliases import AliasStore
    add_users(tmp_path, "alice@example.test")
    AliasStore(str(tmp_path / "aliases.ini"), ["example.test", "localhost"]).add(
        "postmaster@example.test", ["alice@example.test"])
    result = check(write_config(tmp_path, server={"domains": ["example.test"]}))
    assert (result.exit_code, result.stderr) == (0, "")


def test_no_accounts_yet_and_skipped_sections(tmp_path, write_config):
    cfg = write_config(tmp_path, server={"domains": ["example.test"]})
    result = check(cfg)
    assert result.stderr == ("warning: no postmaster@example.test account or alias and no [server] "
                             "postmaster account: mail to postmaster@example.test is refused\n")
    (tmp_path / "users.ini").write_text("[Bad User@example.test]\npassword = x\n"
                                        "[bob@other.test]\npassword = x\n[postmaster@example.test]\n")
    lines = check(cfg).stderr.splitlines()
    users = tmp_path / "users.ini"
    assert lines[0].startswith(f"warning: {users}: [Bad User@example.test] is skipped: invalid account name")
    assert lines[1] == (f"warning: {users}: [bob@other.test] is skipped: 'other.test' is not a local "
                        "domain (local domains: example.test)")
    assert lines[2] == f"warning: {users}: [postmaster@example.test] has no password: nobody can log in as it"
    assert len(lines) == 3
