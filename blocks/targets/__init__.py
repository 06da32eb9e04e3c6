"""Deployment target Blocks."""

from blocks.targets.base import DeploymentTarget, DeployRequest, DeployResult, SiteState

__all__ = ["DeployRequest", "DeployResult", "DeploymentTarget", "SiteState"]
