"""Map publication: OCPI 2.2.1 objects and CPO request handling, and a GeoJSON feed of public stations.

Modules: `ocpi` builds Location / EVSE / Connector objects, `ocpi_api` handles the Versions, Credentials
and Locations (Sender) requests and computes push requests, `geojson` builds the public map feed,
`countries` maps ISO 3166-1 alpha-2 to alpha-3. The imperative shell around them: `service` (the
`Publisher`: gather live status, build, persist in controller state, push), `client` (outgoing OCPI
requests with urllib, run in a thread) and `routes` (the GeoJSON feed and the OCPI endpoints on the
controller's HTTP API).

Boundary: the pure modules take the desired state and live status and return JSON; only `service`,
`client` and `routes` do I/O.
"""
