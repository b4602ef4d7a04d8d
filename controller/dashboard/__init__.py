"""The owner's web dashboard, served by the controller: a map of the stations coloured by health, the fleet
table with filters, one page per station, and live updates by server-sent events.

Modules: `snapshot` assembles the fleet snapshot the pages draw (pure), `routes` serves the pages, their
static files, the snapshot and its event stream. `static/` holds plain HTML, JS and CSS (no build step)
and Leaflet 1.9.4 (BSD-2-Clause, its LICENSE beside it), so the page needs nothing from the internet.

Boundary: read-only views of the controller's state; no decisions, no writes.
"""
