"""The dashboard's pages, one module each: its layout and the callbacks that fill and answer it
(dashboard.router picks the page for a URL and registers every page's callbacks)."""
