"""Coordinators' figures: response, meeting, closure and satisfaction rates, exports, the dashboard."""
