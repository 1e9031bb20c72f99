"""`clevermail sandbox`: a capture-everything mail server for developing and testing
applications, in the foreground until SIGINT or SIGTERM (clevermail/sandbox/)."""

import click

from . import main

DEFAULT_PORTS = {"smtp": 3025, "submission": 3587, "imap": 3143, "pop3": 3110}
DEFAULT_API_PORT = 3080
LABELS = {"smtp": "SMTP", "submission": "submission", "imap": "IMAP", "pop3": "POP3"}
NOTES = {"smtp": "no login needed", "submission": "AUTH: any username and password",
         "imap": "login: the mailbox's address, any password", "pop3": "as IMAP"}


@main.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Keep the mail and settings in this directory (default: a temporary one, removed at exit).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on.")
@click.option("--smtp-port", type=int, default=DEFAULT_PORTS["smtp"], show_default=True, help="0 = a free port.")
@click.option("--submission-port", type=int, default=DEFAULT_PORTS["submission"], show_default=True)
@click.option("--imap-port", type=int, default=DEFAULT_PORTS["imap"], show_default=True)
@click.option("--pop3-port", type=int, default=DEFAULT_PORTS["pop3"], show_default=True)
@click.option("--api-port", type=int, default=DEFAULT_API_PORT, show_default=True, help="The JSON API.")
@click.option("--fail-rcpt", multiple=True, metavar="PATTERN=CODE",
              help="Refuse RCPT TO of matching addresses with CODE (fnmatch, e.g. '*@bounce.test=550'); repeatable.")
@click.option("--delay", type=float, default=0.0, metavar="SECONDS", help="Wait this long before every SMTP reply.")
@click.option("--drop-after-data", is_flag=True,
              help="Close the connection after each message, before its reply (the message is not delivered).")
@click.option("--log-file", default="", help="Also log to this file (for `clevermail trace`).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default="INFO",
              show_default=True)
@click.pass_context
def sandbox(ctx, data_dir, host, smtp_port, submission_port, imap_port, pop3_port, api_port,
            fail_rcpt, delay, drop_after_data, log_file, log_format, log_level):
    """Run a sandbox mail server on loopback: every recipient of every domain is
    accepted into a mailbox named after it, nothing is ever relayed, any username and
    password logs in to the mailbox of that address.  Prints the settings and a
    Python snippet; stops on Ctrl-C."""
    from ..lifecycle import Signals
    from ..logs import setup_logging
    from ..sandbox.api import NotLoopback, is_loopback
    from ..sandbox.faults import FaultError, Faults
    from ..sandbox.service import Sandbox
    from ..service import StartupError

    def fail(message):
        click.echo(f"clevermail sandbox: {message}", err=True)
        ctx.exit(1)

    if not is_loopback(host):
        fail(f"--host {host}: the sandbox accepts any login, so it listens on loopback only")
    try:
        faults = Faults.from_options(fail_rcpt, delay, drop_after_data)
    except FaultError as exc:
        fail(str(exc))
    setup_logging(log_level, log_file, log_format=log_format)
    ports = {"smtp": smtp_port, "submission": submission_port, "imap": imap_port, "pop3": pop3_port}
    signals = Signals().install()
    box = Sandbox(data_dir, host=host, ports=ports, api_port=api_port, faults=faults,
                  log_file=log_file, log_format=log_format, log_level=log_level)
    try:
        try:
            box.start()
        except (StartupError, NotLoopback, OSError) as exc:
            fail(f"cannot start: {exc}")
        click.echo(banner(box), nl=False)
        while signals.stop_reason is None:
            signals.wait(3600)
        click.echo(f"clevermail sandbox: stopping ({signals.stop_reason})", err=True)
    finally:
        box.stop()
        signals.restore()


def banner(box):
    """The connection settings and a ready smtplib/imaplib snippet."""
    host = box.host
    lines = ["CleverMail sandbox: every recipient is accepted into its own mailbox, "
             "nothing is relayed, any login works.", ""]
    for kind in ("smtp", "submission", "imap", "pop3"):
        lines.append(f"  {LABELS[kind]:<11} {host}:{box.port(kind):<6} STARTTLS; {NOTES[kind]}")
    if box.api_url:
        lines.append(f"  {'API':<11} {box.api_url}/api/mailboxes")
    lines.append(f"  {'certificate':<11} {box.cafile} (self-signed: load it as the CA)")
    kept = "removed at exit" if box.temporary else "kept"
    lines.append(f"  {'data':<11} {box.data_dir} ({kept}; settings in {box.config_path})")
    for fault in box.faults.describe():
        lines.append(f"  {'fault':<11} {fault}")
    smtp, imap = box.port("smtp"), box.port("imap")
    lines += ["", "Python:", "",
              "    import imaplib, smtplib",
              f"    with smtplib.SMTP({host!r}, {smtp}) as smtp:",
              "        smtp.sendmail(\"app@example.test\", [\"user@example.test\"],",
              "                      b\"Subject: hello\\r\\n\\r\\nIt works.\\r\\n\")",
              f"    imap = imaplib.IMAP4({host!r}, {imap})",
              "    imap.login(\"user@example.test\", \"any password\")",
              "    imap.select(\"INBOX\")",
              "    print(imap.fetch(b\"1\", \"(RFC822)\")[1][0][1].decode())",
              "    imap.logout()", ""]
    if box.api_url:
        lines += [f"    curl '{box.api_url}/api/wait?address=user@example.test&subject=hello&timeout=30'", ""]
    return "\n".join(lines) + "\n"
