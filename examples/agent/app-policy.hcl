# Policy "salesforce-app": what the application (through its Vault Agent)
# needs, and nothing else: read its own credential and its own OAuth token.
# No other account or role, no listing, no config, no rotation. Vault's
# default policy, which AppRole tokens also get, lets the agent renew its own
# token and the token lease.

path "salesforce/creds/app" {
  capabilities = ["read"]
}

path "salesforce/token/app" {
  capabilities = ["read"]
}
