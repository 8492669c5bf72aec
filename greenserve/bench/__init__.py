"""``greenserve bench``: a Locust load-testing harness for greenserve or any HTTP server.

Nothing here is imported by the server. Locust (and matplotlib, for the plots) come from the
``bench`` extra and run in a child process: Locust monkey-patches with gevent and owns its
process, so the harness itself stays an ordinary Python program that starts servers, runs
``locust --headless`` against them, reads its CSV files and writes the report.
"""
