"""Home Assistant MQTT discovery: the retained config messages that make the device appear.

Three entities under one device block: a sensor with the number, a sensor with its confidence
and a `problem` binary sensor that is on while the camera is down. Each reads the topics the
MQTT publisher writes (the state JSON, the camera JSON) and goes unavailable with the
availability topic's last will. Format: https://www.home-assistant.io/integrations/mqtt/
(discovery topic `<prefix>/<component>/<node_id>/<object_id>/config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

ONLINE = "online"
OFFLINE = "offline"
PACKAGE = "pi-digit-reader"

# Home Assistant renders value templates with Jinja2 and sets the state to "unknown" when one
# renders "None": that is what a null number or confidence (nothing in view) shows as.
NUMBER_TEMPLATE = "{{ value_json.number }}"
CONFIDENCE_TEMPLATE = (
    "{{ (value_json.confidence * 100) | round(1) if value_json.confidence is not none "
    "else 'None' }}"
)
CAMERA_PROBLEM_TEMPLATE = "{{ 'OFF' if value_json.ready else 'ON' }}"


def software_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


@dataclass(frozen=True)
class DeviceTopics:
    """Where the MQTT publisher writes for one device."""

    node_id: str
    state: str  # the stable reading, JSON (schemas.StableReading)
    camera: str  # the camera's health, JSON (schemas.CameraHealth)
    availability: str  # "online" / "offline" (the last will)

    @classmethod
    def under(cls, prefix: str, node_id: str) -> DeviceTopics:
        base = f"{prefix}/{node_id}"
        return cls(node_id, f"{base}/state", f"{base}/camera", f"{base}/availability")


def discovery_configs(
    topics: DeviceTopics, discovery_prefix: str, model_name: str
) -> dict[str, dict[str, Any]]:
    """Discovery topic → config payload, for every entity of the device."""
    node = topics.node_id
    version = software_version()
    device = {
        "identifiers": [f"pi_digits_{node}"],
        "name": f"Digits {node}",
        "manufacturer": PACKAGE,
        "model": f"handwritten-digit reader ({model_name})",
        "sw_version": version,
    }
    common = {
        "availability_topic": topics.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device,
        "origin": {"name": PACKAGE, "sw_version": version},
        "qos": 1,
    }
    entities: dict[tuple[str, str], dict[str, Any]] = {
        ("sensor", "number"): {
            "name": "Number",
            "icon": "mdi:numeric",
            "state_topic": topics.state,
            "value_template": NUMBER_TEMPLATE,
            # since, last_seen, digits, ... become the entity's attributes
            "json_attributes_topic": topics.state,
        },
        ("sensor", "confidence"): {
            "name": "Confidence",
            "icon": "mdi:percent",
            "state_topic": topics.state,
            "value_template": CONFIDENCE_TEMPLATE,
            "unit_of_measurement": "%",
            "state_class": "measurement",
        },
        ("binary_sensor", "camera"): {
            "name": "Camera",
            "device_class": "problem",
            "entity_category": "diagnostic",
            "state_topic": topics.camera,
            "value_template": CAMERA_PROBLEM_TEMPLATE,
            "payload_on": "ON",
            "payload_off": "OFF",
            "json_attributes_topic": topics.camera,  # the reason, while it is down
        },
    }
    return {
        f"{discovery_prefix}/{component}/{node}/{object_id}/config": {
            **entity,
            "unique_id": f"pi_digits_{node}_{object_id}",
            **common,
        }
        for (component, object_id), entity in entities.items()
    }
