"""Local stand-ins for Salesforce, Marketo and HubSpot that speak their real HTTP APIs on 127.0.0.1."""
