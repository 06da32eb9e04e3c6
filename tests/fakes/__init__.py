"""Fake provider services for tests and benches (see `base` and `prism`)."""

from tests.fakes.base import FakeService, FaultPlan, Headers, LoggedRequest, Request, Response, Route, route

__all__ = ["FakeService", "FaultPlan", "Headers", "LoggedRequest", "Request", "Response", "Route", "route"]
