"""Jinja2 templates and CSS of the audit report (shipped as the package ``audit.templates``)."""
