"""Live events over WebSockets: broadcast.py (what committed work sends, to which group), consumers.py
(the WebSocket consumer), routing.py (its URL, mounted by billing_project.asgi). docs/websocket.md."""
