from tests.servers.fixtures import dovecot, imap_mailbox, smtp_sink

__all__ = ["dovecot", "imap_mailbox", "smtp_sink"]
