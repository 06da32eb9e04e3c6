"""Deployment target Blocks: one module per provider, the port in ``base.py``.

Nothing is imported here on purpose: the static server process (``python -m ops.static_server``) imports
``blocks.targets.static_host`` and must start in a fraction of a second, without importing Prefect.
"""
