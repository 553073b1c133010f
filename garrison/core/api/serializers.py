"""Serializer bases shared by every app's API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class InputSerializer(serializers.Serializer):
    """An input serializer that rejects fields it does not know, instead of ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        """Validate, then reject unknown keys so typos never silently drop data."""
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                allowed = ", ".join(sorted(name for name, f in self.fields.items() if not f.read_only))
                raise serializers.ValidationError(
                    {name: [f"Unknown field. Allowed fields: {allowed}."] for name in unknown}
                )
        return super().to_internal_value(data)
