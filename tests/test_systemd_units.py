"""dist/systemd: the unit files pass `systemd-analyze verify`, name their sockets as the
server expects, and systemd's own socket activator (systemd-socket-activate) starts a
server that serves on the sockets it bound.  Both tools come with Debian's systemd
package; without them these tests skip (fail in CI: tests/components.py)."""

import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys


from clevermail.activation import KINDS
from components import component_missing
from server_process import ROOT
from waiting import wait_for

UNITS = os.path.join(ROOT, "dist", "systemd")
ANALYZE = shutil.which("systemd-analyze")
ACTIVATE = shutil.which("systemd-socket-activate")


def read(name):
    with open(os.path.join(UNITS, name)) as f:
        return f.read()


def settings(text):
    """key -> [values] of a unit file (comments left out)."""
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def socket_units():
    return sorted(name for name in os.listdir(UNITS) if name.endswith(".socket"))


def test_service_unit_settings():
    unit = settings(read("clevermail.service"))
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == ["/usr/local/bin/clevermail --config /etc/clevermail/clevermail.ini start"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # the server drops privileges itself: the unit starts it as root
    assert "User" not in unit and "Group" not in unit and "AmbientCapabilities" not in unit
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    assert unit["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert unit["SystemCallFilter"] == ["@system-service"]
    assert set(unit["CapabilityBoundingSet"][0].split()) >= {"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"}
    assert "/var/lib/clevermail" in unit["ReadWritePaths"][0].split()


def test_one_socket_unit_per_listener_kind_named_as_the_server_matches():
    """FileDescriptorName= names every socket of a unit, so each kind has its own unit."""
    names = {}
    for name in socket_units():
        unit = settings(read(name))
        assert unit["Service"] == ["clevermail.service"], name
        assert len(unit["ListenStream"]) == 1, name
        (fd_name,) = unit["FileDescriptorName"]
        assert name == f"clevermail-{fd_name}.socket"
        names[fd_name] = int(unit["ListenStream"][0])
    assert sorted(names) == sorted(KINDS)
    assert names == {"smtp": 25, "submission": 587, "submissions": 465, "pop3": 110, "pop3s": 995,
                     "imap": 143, "imaps": 993, "managesieve": 4190}


def test_units_pass_systemd_analyze_verify(tmp_path):
    if ANALYZE is None:
        component_missing("systemd-analyze is not installed (Debian package systemd)")
    # verify wants ExecStart's program to exist: point it at this checkout's interpreter
    installed = shutil.which("clevermail")
    command = installed if installed else f"{sys.executable} -m clevermail"
    service = read("clevermail.service").replace("/usr/local/bin/clevermail", command)
    assert service != read("clevermail.service")
    (tmp_path / "clevermail.service").write_text(service)
    for name in socket_units():
        shutil.copy(os.path.join(UNITS, name), tmp_path / name)
    files = ["clevermail.service"] + socket_units()
    result = subprocess.run([ANALYZE, "verify", *files], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
    # unknown keys and bad values are only warnings to verify: none may name our units
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if re.search(r"clevermail[-\w]*\.(service|socket)", line)]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_systemd_socket_activate_starts_a_server_on_its_sockets(tmp_path, write_config, relay_users):
    if ACTIVATE is None:
        component_missing("systemd-socket-activate is not installed (Debian package systemd)")
    shutil.copy(relay_users, tmp_path / "users.ini")
    ports = {kind: free_port() for kind in ("smtp", "pop3", "imap")}
    cfg = write_config(tmp_path, **{kind: {"listen": [f"127.0.0.1:{port}"]} for kind, port in ports.items()})
    argv = [ACTIVATE]
    for port in ports.values():
        argv += ["-l", f"127.0.0.1:{port}"]
    argv += ["--fdname", ":".join(ports), "-E", f"PYTHONPATH={ROOT}",
             sys.executable, "-m", "clevermail", "--config", cfg, "start"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def listening():
            try:
                socket.create_connection(("127.0.0.1", ports["smtp"]), timeout=1).close()
                return True
            except OSError:
                return False
        # systemd-socket-activate binds first and starts the server on the first connection
        assert wait_for(listening, timeout=30)
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=60) as smtp:
            smtp.sendmail("x@example.org", ["alice@example.test"], b"Subject: hi\r\n\r\nactivated\r\n")
        with socket.create_connection(("127.0.0.1", ports["imap"]), timeout=30) as c:
            assert c.recv(100).startswith(b"* OK")
        assert os.listdir(tmp_path / "data" / "mail")
    finally:
        proc.terminate()        # systemd-socket-activate execs the server: same process
        _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert "(sockets from the service manager)" in err, err
    assert "Traceback" not in err
