"""Prompts in production: deploy bundles made from git, and how released versions do.

- :mod:`.bundle`: ``promptci bundle``, every prompt and pipeline at its labels in one file;
- :mod:`.ab`: ``promptci ab report``, outcome logs compared per version of a split label.

Reading a bundle in an application is :mod:`promptci.runtime`, which needs none of this.
"""
