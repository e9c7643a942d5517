"""emtwin.viz."""
