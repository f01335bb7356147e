# Vault Agent for an application of the Salesforce secrets engine: it logs in
# with AppRole and renders the application's credential (creds/app) and OAuth
# access token (token/app) into files the application reads.
#
# Start it in the repository root (paths below are relative to it); the Vault
# address comes from VAULT_ADDR:
#   vault agent -config=examples/agent/agent.hcl

pid_file = ".dev/agent/agent.pid"

auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = ".dev/agent/role-id"
      secret_id_file_path = ".dev/agent/secret-id"
      # Keep the file, so the agent can log in again when its token reaches
      # the AppRole's token_max_ttl. In production, deliver secret ids with a
      # trusted orchestrator (response-wrapped) and let the agent delete them.
      remove_secret_id_file_after_reading = false
    }
  }
}

template_config {
  # creds/<name> is not a lease, so for the agent it is a static secret: it
  # reads it again on this interval (default 5m) and renders the file again
  # when it changed, e.g. after a rotation. 5s lets the demo show a rotation
  # at once; in production a few minutes, well below the rotation period.
  static_secret_render_interval = "5s"
  # Exit (non-zero) instead of retrying forever when Vault refuses a read.
  exit_on_retry_failure = true
}

template {
  source      = "examples/agent/creds.ctmpl"
  destination = ".dev/agent/creds.json"
  perms       = "0600"
}

# token/<role> is a lease: the agent renews it while it lives, up to the
# role's max_ttl, then reads the token again and renders the file again.
template {
  source      = "examples/agent/token.ctmpl"
  destination = ".dev/agent/token.json"
  perms       = "0600"
}
