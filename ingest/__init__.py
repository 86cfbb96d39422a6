"""Intake: raw mail from IMAP, an MTA pipe, files or Maildir, parsed and guarded."""
