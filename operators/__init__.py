"""One bpy Operator per user action (issue 3: Add Head, Track Footage, Import Results)."""
