"""Edge: Traefik as each cluster's entry, routing labels built from app.yml's domains,
ACME certificates and their watch, Cloudflare DNS records. (Issue "Edge" lands here.)"""
