"""Unit status: probes, heartbeats to the control room, the systemd watchdog, config reload, `status`.

Fed by the component-state rows every stage writes to agent.db; see docs/status.md.
"""
