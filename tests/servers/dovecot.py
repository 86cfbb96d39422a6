"""A private Dovecot for tests: own config, users, Maildirs and ports under a temp folder.

Why a real server: IDLE pushes, MOVE/UIDPLUS, UIDVALIDITY and what a server
restart does to open connections are exactly the behaviours a fake server
gets wrong. The instance never reads /etc/dovecot and never touches the
system service: it runs in the foreground (``dovecot -F -c our.conf``) as a
child of the test process, listening on 127.0.0.1 only.

Dovecot is installed with apt-get when missing and we are root (CI and the
developer machines are); elsewhere ``DovecotUnavailable`` is raised so the
fixture can skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers.ports import LOOPBACK, free_port, wait_closed, wait_listening

DOVECOT = Path("/usr/sbin/dovecot")
APT_PACKAGE = "dovecot-imapd"


class DovecotUnavailable(RuntimeError):
    """Dovecot is not installed and cannot be installed here."""


def ensure_installed() -> Path:
    """Return the dovecot binary, installing the Debian package first if needed."""
    if DOVECOT.exists():
        return DOVECOT
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DovecotUnavailable(f"{DOVECOT} missing and cannot apt-get install {APT_PACKAGE}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", APT_PACKAGE],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DovecotUnavailable(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
    if not DOVECOT.exists():
        raise DovecotUnavailable(f"{APT_PACKAGE} installed but {DOVECOT} is missing")
    return DOVECOT


def dovecot_version(binary: Path = DOVECOT) -> tuple[int, int]:
    """(major, minor): 2.4 renamed settings, so the config depends on it."""
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True
    ).stdout
    major, minor = out.split()[0].split(".")[:2]
    return int(major), int(minor)


def _run_users() -> tuple[str, str, int, int]:
    """(internal user, login user, mail uid, mail gid) that exist on this machine.

    As root, Dovecot's processes drop to the unprivileged users its package
    created; mail is never handled as root. As an ordinary user, everything
    runs as that user.
    """
    if os.geteuid() == 0:
        internal = pwd.getpwnam("dovecot")
        login = "dovenull" if _user_exists("dovenull") else "dovecot"
        return internal.pw_name, login, internal.pw_uid, internal.pw_gid
    me = pwd.getpwuid(os.geteuid())
    return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _make_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (TLS and STARTTLS tests)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        capture_output=True,
        check=True,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def _group_gone(pgid: int, timeout: float) -> bool:
    """Wait until no process is left in the group (children may outlive the master)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        # Reap the master if it is our zombie, or the group never empties.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)
        time.sleep(0.02)
    return False


class DovecotServer:
    """One private Dovecot instance; ports stay the same across restart()."""

    host = LOOPBACK

    def __init__(self, root: Path | None = None, *, tls: bool = True) -> None:
        self.binary = ensure_installed()
        self.version = dovecot_version(self.binary)
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="sd-dovecot-")) if root is None else root
        self.root.chmod(0o755)  # the unprivileged mail user must traverse it
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.password = secrets.token_urlsafe(12)
        self.mail_root = self.root / "mail"
        self.config = self.root / "dovecot.conf"
        self.log_path = self.root / "dovecot.log"
        self.cert: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._setup(tls)

    # -- configuration ---------------------------------------------------------
    def _setup(self, tls: bool) -> None:
        internal, login, uid, gid = _run_users()
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        self.mail_root.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.mail_root, uid, gid)
        key: Path | None = None
        if tls:
            self.cert, key = _make_certificate(self.root)
        common = [
            f"base_dir = {self.root}/run",
            f"state_dir = {self.root}/state",
            f"log_path = {self.log_path}",
            f"listen = {LOOPBACK}",
            "auth_mechanisms = plain login xoauth2",  # XOAUTH2 token = the password
            # Tests count our own retry pacing; the server must not add its own.
            "auth_failure_delay = 0",
            f"default_internal_user = {internal}",
            f"default_login_user = {login}",
            f"first_valid_uid = {min(uid, 1000) or 1}",
            f"first_valid_gid = {min(gid, 1000) or 1}",
            "mail_max_userip_connections = 200",
            # Throwaway mail: no fsync per APPEND (loading a 10,000-mail backlog
            # for benchmarks is otherwise dominated by disk flushes).
            "mail_fsync = never",
            "mailbox_idle_check_interval = 1 secs",
            # No auth penalty either (anvil's growing delay per failing IP):
            # without its socket Dovecot skips it.
            "service anvil {",
            "  unix_listener anvil-auth-penalty {",
            "    mode = 0",
            "  }",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            f"    address = {LOOPBACK}",
            f"    port = {self.port}",
            "  }",
            "  inet_listener imaps {",
            f"    address = {LOOPBACK}",
            f"    port = {self.tls_port}",
            "  }",
            "}",
        ]
        versioned = self._lines_24 if self.version >= (2, 4) else self._lines_23
        lines = versioned(uid, gid, key) + common
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _lines_23(self, uid: int, gid: int, key: Path | None) -> list[str]:
        """Dovecot 2.3 (Debian 12, what CI runs)."""
        ssl = ["ssl = no"]
        if key is not None:
            ssl = ["ssl = yes", f"ssl_cert = <{self.cert}", f"ssl_key = <{key}"]
        return [
            "protocols = imap",
            *ssl,
            "disable_plaintext_auth = no",
            f"mail_location = maildir:{self.mail_root}/%u",
            # Every user name exists and shares one password: a test makes a
            # fresh mailbox by picking a new name, with no reload involved
            # (passwd-file is re-read at most once a second).
            "passdb {",
            "  driver = static",
            f"  args = password={self.password}",
            "}",
            "userdb {",
            "  driver = static",
            f"  args = uid={uid} gid={gid} home={self.mail_root}/%u",
            "}",
        ]

    def _lines_24(self, uid: int, gid: int, key: Path | None) -> list[str]:
        """Dovecot 2.4 (Debian 13) renamed most of these; best effort, not run in CI yet."""
        ssl = ["ssl = no"]
        if key is not None:
            ssl = [
                "ssl = yes",
                f"ssl_server_cert_file = {self.cert}",
                f"ssl_server_key_file = {key}",
            ]
        return [
            "dovecot_config_version = 2.4.0",
            "dovecot_storage_version = 2.4.0",
            "protocols = imap",
            *ssl,
            "auth_allow_cleartext = yes",
            "mail_driver = maildir",
            f"mail_home = {self.mail_root}/%{{user}}",
            "mail_path = ~",
            f"mail_uid = {uid}",
            f"mail_gid = {gid}",
            "passdb static {",
            f"  password = {self.password}",
            "}",
            "userdb static {",
            "}",
        ]

    # -- process ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start in the foreground as our child and wait until it accepts connections."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(self.binary), "-F", "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends every child
            )
        try:
            wait_listening(self.port, timeout=15)
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(f"dovecot did not start:\n{self.log_tail()}") from exc

    def stop(self) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left.

        Dovecot's master alone does not end running IMAP sessions (they
        linger, holding the listening socket too); killing the group drops
        every connection at once, like a server crash or restart does.
        """
        process, self._process = self._process, None
        if process is None:
            return
        # IMAP sessions answer SIGTERM with "* BYE" at once; Dovecot's log
        # and stats processes dawdle for seconds, so they get SIGKILL soon.
        for sig, grace in ((signal.SIGTERM, 0.5), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            if _group_gone(process.pid, timeout=grace):
                break
        process.wait(timeout=5)
        wait_closed(self.port, timeout=10)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    def close(self) -> None:
        """Stop and remove the temp folder (when we created it)."""
        self.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        if self.cert is None:
            raise RuntimeError("server started without TLS")
        return ssl.create_default_context(cafile=str(self.cert))
