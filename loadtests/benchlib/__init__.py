"""The pieces of ``loadtests/bench.py``: processes, wrk, load watching, servers, rows, report.

``servers.SERVERS`` is the peer registry (how to start each server for a given app);
``rows.SUITES`` says which rows and which servers make each table.
"""
