"""Analytics: turns stored observations into tables and figures (CSV export, timelines, reports)."""
