"""Worker processes: the child's loop (one backend each), the parent's handle, the plugin probe."""
