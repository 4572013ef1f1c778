"""HTML reports and paper tables."""
