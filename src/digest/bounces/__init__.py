"""Bounces and complaints: parse reports, read them from files, IMAP and provider webhooks,
match them to deliveries and apply the suppression policy."""
