"""HubSpot adapter: signatures, payload parsing, CRM client and a local fake server."""
