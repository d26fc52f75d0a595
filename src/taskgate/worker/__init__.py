"""``taskgate worker run``: run any command as a task instance.

The worker starts the TI with its workload token (``workload``), runs the command as a
child process whose output it streams to the console and a log file (``child``),
heartbeats from a background thread (``heartbeat``), shows a progress line
(``progress``), and reports the outcome (``runner``). It talks to the Execution API only
through ``taskgate.client``, over HTTP or in-process, with a DPoP key generated in memory
for the run (its execution token is bound to it) unless told ``--no-dpop``.
"""
