"""emtwin.geo."""
