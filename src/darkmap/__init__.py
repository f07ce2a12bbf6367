"""darkmap: an offline, auditable investigation workbench for darknet drug markets."""

from darkmap.store.workspace import Workspace, WorkspaceError

__all__ = ["Workspace", "WorkspaceError", "__version__"]
__version__ = "0.1.0"
