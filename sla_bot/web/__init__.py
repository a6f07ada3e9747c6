"""HTTP layer: the app factory and blueprints. No HubSpot or Slack call happens on a request."""
