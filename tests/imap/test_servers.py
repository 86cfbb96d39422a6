"""The test servers themselves: if a helper lies, every test built on it lies too."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable

import pytest

from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import TestMailbox, make_mail
from tests.servers.proxy import TcpProxy
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.imap


def _send(sink: SmtpSink, subject: str) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
        client.sendmail("desk@example.org", ["maija@example.org"], make_mail(subject))


def test_smtp_sink_collects_goes_down_and_comes_back_on_the_same_port(
    smtp_sink: SmtpSink,
) -> None:
    _send(smtp_sink, "first")
    assert smtp_sink.wait_for(1)[0].message["Subject"] == "first"
    port = smtp_sink.port
    smtp_sink.stop()
    with pytest.raises(OSError):
        _send(smtp_sink, "while down")
    smtp_sink.start()
    assert smtp_sink.port == port
    smtp_sink.fail_next = 1
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(smtp_sink, "refused once")
    assert refused.value.smtp_code == 451
    _send(smtp_sink, "second")
    assert [m.message["Subject"] for m in smtp_sink.wait_for(2)] == ["first", "second"]
    assert smtp_sink.messages[1].rcpt_tos == ("maija@example.org",)


def test_proxy_forwards_and_cuts(
    dovecot: DovecotServer, make_proxy: Callable[[str, int], TcpProxy]
) -> None:
    proxy = make_proxy(dovecot.host, dovecot.port)
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as conn:
        assert _greeting(conn).startswith(b"* OK")
        assert proxy.cut() == 1
        assert _closed(conn)
    proxy.refuse()
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as conn:
        assert _closed(conn)
    proxy.accept()
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as conn:
        assert _greeting(conn).startswith(b"* OK")


def _greeting(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_mailbox_helper_round_trip(imap_mailbox: TestMailbox) -> None:
    raw = make_mail("round trip")
    uid = imap_mailbox.append(raw, folder="Käsitelty")
    assert uid == 1
    assert imap_mailbox.messages("Käsitelty") == [raw]
    assert imap_mailbox.count("INBOX") == 0
    assert imap_mailbox.uidvalidity("Käsitelty") > 0


def test_deliver_to_maildir_is_seen_by_imap(imap_mailbox: TestMailbox) -> None:
    raws = [make_mail(f"fast {i}") for i in range(20)]
    assert imap_mailbox.deliver_to_maildir(raws) == 20
    assert imap_mailbox.uids() == list(range(1, 21))
    assert sorted(imap_mailbox.messages()) == sorted(raws)
