"""Map publication: OCPI 2.2.1 objects and CPO request handling, and a GeoJSON feed of public stations.

Modules: `ocpi` builds Location / EVSE / Connector objects, `ocpi_api` handles the Versions, Credentials
and Locations (Sender) requests and computes push requests, `geojson` builds the public map feed,
`countries` maps ISO 3166-1 alpha-2 to alpha-3.

Boundary: pure functions over the desired state and live status; the HTTP server and client live elsewhere.
"""
