"""Modules that staff switch on and off (docs/modules.md).

Each app declares what it is made of in its own `modules.py` (a list `MODULES` of `ModuleDefinition`);
this app discovers them at startup, validates the graph, keeps each module's state and configuration in
the database and closes a disabled module's doors. It imports only the kernel (`core`), so every app may
import it.
"""
