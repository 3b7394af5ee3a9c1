"""``promptci view``: a read-only local web viewer over the registry and the results database.

- :mod:`.pages`: what each page shows, read through :mod:`promptci.store.browse`;
- :mod:`.app`: the Starlette routes, the security headers and the server.

The pages share their templates and charts with the static report (:mod:`promptci.report`).
"""
