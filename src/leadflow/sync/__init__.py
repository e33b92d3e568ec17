"""Incremental sync with a CRM/MAP: pages, pull errors, high-water marks and dead-letter payloads (`pages`), and the
changed fields written back (`writeback`), the CRM mirror's build, refresh, load and status (`mirror`).
"""
