"""Photos and videos uploaded for issues and their resolution evidence."""
