"""mobile-cctv control room: receives unit status and events, shows them to people, shares footage.

Stateless web processes over SQLite (one machine) or PostgreSQL (a partnership-wide deployment).
"""

__version__ = "0.1.0"
