"""ChatSupport: anonymous peer-support chat over plain-text TCP, WebSocket JSON and the web."""

from .config import Config
from .server import ChatServer

__all__ = ["ChatServer", "Config"]
__version__ = "0.1.0"
