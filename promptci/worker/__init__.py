"""The warm worker: a process per user and project that keeps models loaded between commands.

- :mod:`.place`: where its socket lies (a directory private to the user) and which worker a
  command may use (a digest of user, project, interpreter, code and import-time environment).
- :mod:`.wire`: the messages on the socket, and the standard streams passed as descriptors.
- :mod:`.client`: a command handed over, the worker started where none runs.
- :mod:`.server`: the worker: one command at a time, idle exit, ``promptci worker stop``.
"""
