"""Contract suites run against every provider: RepositoryTargetContract and DeploymentTargetContract.

A provider's test module subclasses a suite and provides a ``target`` fixture; see the docstrings of
``repository_suite`` and ``deployment_suite``. ``samples`` holds the sample files both suites use.
"""
