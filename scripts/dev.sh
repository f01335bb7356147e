#!/usr/bin/env bash
# `make dev`: a real Vault dev server with this plugin, set up the way an
# operator would do it, pointed at the bundled Salesforce emulator (or, with
# SF_LOGIN_URL set, at a real org). Stays in the foreground; Ctrl-C stops
# everything it started.
#
# Environment (all optional):
#   VAULT_PORT=8200           Vault dev server port (127.0.0.1)
#   EMULATOR_PORT=8787        emulator port (127.0.0.1)
#   EMULATOR_SEED=file.json   seed for the emulator instead of the demo org
#   VERSION=v0.1.0            plugin version to build and register (default: VERSION file)
#   VAULT_BIN=/path/to/vault  use this Vault instead of building bin/vault
# A real org instead of the emulator:
#   SF_LOGIN_URL, SF_CLIENT_ID, SF_CLIENT_SECRET, SF_USERNAME (admin user),
#   SF_GRANT_TYPE (password|jwt_bearer|client_credentials; default password),
#   SF_PASSWORD, SF_SECURITY_TOKEN, SF_PRIVATE_KEY_FILE (PEM, for jwt_bearer),
#   SF_ACCOUNT_USERNAME, SF_ACCOUNT_PASSWORD, SF_ACCOUNT_SECURITY_TOKEN
#   (the integration user stored as accounts/demo; skipped when unset),
#   SF_ALLOW_NON_SALESFORCE_URL=true for a login URL off Salesforce's domains
#   (e.g. an emulator you started yourself).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

plugin=vault-plugin-secrets-salesforce
version="${VERSION:-$(cat VERSION 2>/dev/null || echo v0.1.0)}"
vault_port="${VAULT_PORT:-8200}"
emulator_port="${EMULATOR_PORT:-8787}"
state="$root/.dev"
plugin_dir="$state/plugins"

say() { printf '==> %s\n' "$*"; }
die() { printf 'dev: %s\n' "$*" >&2; exit 1; }

# JSON string escaping for values passed to `vault write PATH -` on stdin, so
# that passwords never appear on a command line (visible in ps).
json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# json_object key value [key value ...]; pairs with an empty value are left out.
json_object() {
  local out="" sep=""
  while [[ $# -gt 1 ]]; do
    if [[ -n "$2" ]]; then
      out+="$sep$(json_string "$1"):$(json_string "$2")"
      sep=","
    fi
    shift 2
  done
  printf '{%s}' "$out"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ctrl-C (or SIGTERM) is how make dev is meant to end: the script stops
# what it started, says so and exits 0, so that make reports no error
# ("Interrupt", "Error 130"). A child that exits by itself is an error.
pids=()
stop_reason=""
cleanup() {
  trap - INT TERM EXIT
  if [[ ${#pids[@]} -gt 0 ]]; then
    say "stopping Vault and the emulator"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  if [[ -n "$stop_reason" ]]; then
    say "stopped ($stop_reason): the dev server's data was in memory and is gone; logs are in .dev/"
    exit 0
  fi
}
trap cleanup EXIT
trap 'stop_reason=Ctrl-C; echo; exit 0' INT
trap 'stop_reason=SIGTERM; exit 0' TERM

if port_open "$vault_port"; then
  die "127.0.0.1:$vault_port is already in use (set VAULT_PORT)"
fi
if [[ -z "${SF_LOGIN_URL:-}" ]] && port_open "$emulator_port"; then
  die "127.0.0.1:$emulator_port is already in use (set EMULATOR_PORT)"
fi

say "building the plugin ($version) and the emulator"
make --no-print-directory build emulator VERSION="$version"
vault_bin="$(scripts/build-vault.sh)"

rm -rf "$state"
mkdir -p "$plugin_dir"
# Versioned file names let several versions sit in the plugin directory, as
# they do during an upgrade.
command_name="$plugin-$version"
cp "bin/$plugin" "$plugin_dir/$command_name"
sha="$(sha256sum "$plugin_dir/$command_name" | cut -d' ' -f1)"

# The emulator answers as login.salesforce.com on 127.0.0.1 and as the org's
# My Domain on localhost; its control API (the stand-in for the user's email
# inbox and Setup) is on the login host.
emulator_url="http://127.0.0.1:$emulator_port"
my_domain_url="http://localhost:$emulator_port"

if [[ -z "${SF_LOGIN_URL:-}" ]]; then
  say "starting the Salesforce emulator on http://127.0.0.1:$emulator_port (log: .dev/emulator.log)"
  emulator_args=(-addr "127.0.0.1:$emulator_port")
  if [[ -n "${EMULATOR_SEED:-}" ]]; then
    emulator_args+=(-seed "$EMULATOR_SEED")
  fi
  bin/salesforce-emulator "${emulator_args[@]}" >"$state/emulator.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    port_open "$emulator_port" && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$state/emulator.log" >&2; die "the emulator exited"; }
    sleep 0.1
  done
  port_open "$emulator_port" || die "the emulator did not start listening"
fi

say "starting Vault dev server on http://127.0.0.1:$vault_port (log: .dev/vault.log)"
printf 'plugin_directory = "%s"\n' "$plugin_dir" >"$state/vault.hcl"
"$vault_bin" server -dev -dev-root-token-id=root \
  -dev-listen-address="127.0.0.1:$vault_port" \
  -config="$state/vault.hcl" >"$state/vault.log" 2>&1 &
pids+=($!)

export VAULT_ADDR="http://127.0.0.1:$vault_port" VAULT_TOKEN=root
unset VAULT_NAMESPACE VAULT_FORMAT
# The commands below are echoed as an operator would type them.
mkdir -p "$state/bin"
ln -sf "$vault_bin" "$state/bin/vault"
export PATH="$state/bin:$PATH"
for _ in $(seq 300); do
  vault status >/dev/null 2>&1 && break
  kill -0 "${pids[-1]}" 2>/dev/null || { tail -n 30 "$state/vault.log" >&2; die "vault exited"; }
  sleep 0.2
done
vault status >/dev/null || die "vault did not become ready (see .dev/vault.log)"

say "registering and enabling the plugin like an operator would"
set -x
vault plugin register -sha256="$sha" -version="$version" -command="$command_name" secret "$plugin"
vault secrets enable -path=salesforce -plugin-version="$version" "$plugin"
{ set +x; } 2>/dev/null

if [[ -z "${SF_LOGIN_URL:-}" ]]; then
  say "configuring salesforce/ for the emulator's demo org (Acme Demo)"
  # The My Domain URL, as Salesforce recommends for logins: every grant and
  # SOAP login() work there, and client_credentials works only there.
  json_object \
    login_url "$my_domain_url" \
    allow_non_salesforce_url true \
    client_id 3MVG9demoClientId \
    client_secret demo-client-secret \
    grant_type password \
    username admin@acme.demo \
    password Admin-Pass-1234 \
    security_token ADMINTOKEN0000000000000000 |
    vault write salesforce/config -
  json_object \
    username integration@acme.demo \
    password Integ-Pass-1234 \
    security_token INTEGTOKEN00000000000000000 \
    description "demo integration user of the emulator's Acme Demo org" |
    vault write salesforce/accounts/demo -
else
  say "configuring salesforce/ for $SF_LOGIN_URL"
  private_key=""
  if [[ -n "${SF_PRIVATE_KEY_FILE:-}" ]]; then
    private_key="$(cat "$SF_PRIVATE_KEY_FILE")"
  fi
  json_object \
    login_url "$SF_LOGIN_URL" \
    allow_non_salesforce_url "${SF_ALLOW_NON_SALESFORCE_URL:-}" \
    client_id "${SF_CLIENT_ID:-}" \
    client_secret "${SF_CLIENT_SECRET:-}" \
    private_key "$private_key" \
    grant_type "${SF_GRANT_TYPE:-password}" \
    username "${SF_USERNAME:-}" \
    password "${SF_PASSWORD:-}" \
    security_token "${SF_SECURITY_TOKEN:-}" |
    vault write salesforce/config -
  if [[ -n "${SF_ACCOUNT_USERNAME:-}" ]]; then
    json_object \
      username "$SF_ACCOUNT_USERNAME" \
      password "${SF_ACCOUNT_PASSWORD:-}" \
      security_token "${SF_ACCOUNT_SECURITY_TOKEN:-}" |
      vault write salesforce/accounts/demo -
  fi
fi

cat <<EOF

Vault $("$vault_bin" version | head -n1 | cut -d' ' -f2) is running with $plugin $version mounted at salesforce/.
In another shell, try:

  export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=root
  alias vault=$vault_bin        # unless a vault CLI is already on your PATH
  vault secrets list -detailed
  vault read salesforce/config
  vault list salesforce/accounts
  vault read salesforce/accounts/demo
  vault read salesforce/creds/demo
  vault path-help salesforce/config
  vault path-help salesforce/accounts/demo
EOF

if [[ -z "${SF_LOGIN_URL:-}" ]]; then
  cat <<EOF

  # Rotate the password; Salesforce emails the user a new security token. The emulator's
  # mailbox (its stand-in for the inbox; loopback only) shows it; the security-token
  # shortcut answers {"security_token": ...}, which 'vault write PATH -' reads from stdin:
  vault write -f salesforce/rotate/demo
  curl -s $emulator_url/_emulator/mailbox/integration@acme.demo
  curl -s $emulator_url/_emulator/mailbox/integration@acme.demo/security-token |
    vault write salesforce/accounts/demo/security-token -

  # JWT bearer with a key generated in Vault (once: a second write answers "a JWT key already
  # exists"); upload its certificate to the connected app (the emulator's stand-in for
  # Setup > App Manager > Use digital signatures), which works whenever a key exists:
  vault write salesforce/config/jwt-key common_name=vault-dev
  vault read -field=certificate salesforce/config/jwt-key |
    curl -s -X PUT --data-binary @- $emulator_url/_emulator/connected-apps/3MVG9demoClientId/certificate
  vault write salesforce/roles/jwt grant_type=jwt_bearer username=integration@acme.demo
  vault read salesforce/token/jwt

  # Client credentials (login_url is the org's My Domain URL, $my_domain_url):
  vault write salesforce/roles/cc grant_type=client_credentials
  vault read salesforce/token/cc

  # Which login methods the managed users use, which of them Salesforce retires and when,
  # and the OAuth role that replaces them (docs/migration.md); External Client Apps and
  # their consumer key rotation: docs/external-client-apps.md
  vault read salesforce/login-report

  # A refresh token, as the web-server flow grants after the user's consent in a browser:
  curl -s -d client_id=3MVG9demoClientId -d username=integration@acme.demo \\
    $emulator_url/_emulator/refresh-tokens |
    vault write salesforce/roles/rt grant_type=refresh_token scopes=api -
  vault read salesforce/token/rt

  # An application behind Vault Agent (docs/applications.md): the agent logs in with
  # AppRole and renders creds/app and token/app into .dev/agent/; the example app
  # (go-salesforce) logs in with them and keeps working across a rotation:
  cd $root
  mkdir -p .dev/agent
  vault policy write salesforce-app examples/agent/app-policy.hcl
  vault auth enable approle
  vault write auth/approle/role/salesforce-app token_policies=salesforce-app token_ttl=1h token_max_ttl=24h
  vault read -field=role_id auth/approle/role/salesforce-app/role-id > .dev/agent/role-id
  vault write -f -field=secret_id auth/approle/role/salesforce-app/secret-id > .dev/agent/secret-id
  vault write salesforce/accounts/app username=app@acme.demo password=App-Pass-1234 security_token_mode=not_required
  vault write salesforce/roles/app grant_type=client_credentials ttl=10s max_ttl=10m
  vault agent -config=examples/agent/agent.hcl > .dev/agent/agent.log 2>&1 &
  go build -o .dev/bin/agent-app ./examples/agent-app
  SF_CLIENT_ID=3MVG9demoClientId SF_CLIENT_SECRET=demo-client-secret .dev/bin/agent-app -creds .dev/agent/creds.json  # runs until Ctrl-C
  vault write -f salesforce/rotate/app   # in a second shell: the app logs in again with the new password
EOF
fi

cat <<EOF

Logs: .dev/vault.log, .dev/emulator.log. Press Ctrl-C to stop.
EOF

# Foreground until Ctrl-C, or until Vault or the emulator stops by itself.
set +e
wait -n "${pids[@]}"
status=$?
say "a child process exited (status $status); stopping the rest"
exit "$status"
