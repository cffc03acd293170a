# Generated from agent-config/secret-catalogue.json by `npm run secrets:generate`: edit the catalogue, not this file.
# Sourced by scripts/bootstrap.sh, which defines put_example and random_hex: one example value
# per KV group, written only where the path has no version yet.
put_example database "{\"username\":\"saas_app\",\"password\":\"$(random_hex 24)\"}"
put_example api-keys "{\"webhook_signing_key\":\"$(random_hex 32)\"}"
put_example oidc "{\"client_id\":\"set-by-the-issuer\",\"client_secret\":\"$(random_hex 32)\"}"
put_example app "{\"session_keys\":[\"$(random_hex 32)\"]}"
