// Generated from agent-config/secret-catalogue.json by `npm run secrets:generate`: edit the catalogue, not this file.
import type { SecretCatalogue } from './secret-catalogue.js';

export const secretCatalogue = {
  "groups": {
    "database": {
      "doc": "the PostgreSQL user the service connects as",
      "source": "kv-or-database-engine",
      "keys": {
        "username": {
          "type": "string",
          "minLength": 1,
          "doc": "PostgreSQL user",
          "example": {
            "fixed": "saas_app"
          }
        },
        "password": {
          "type": "string",
          "minLength": 1,
          "doc": "PostgreSQL password",
          "example": {
            "randomHex": 24
          }
        }
      }
    },
    "api-keys": {
      "doc": "keys for calls to and from other services",
      "source": "kv",
      "keys": {
        "webhook_signing_key": {
          "type": "string",
          "minLength": 32,
          "doc": "HMAC key signing outbound webhooks",
          "example": {
            "randomHex": 32
          }
        }
      }
    },
    "oidc": {
      "doc": "the service's client at the OpenID Connect issuer it signs users in with (OIDC_ISSUER_URL)",
      "source": "kv",
      "keys": {
        "client_id": {
          "type": "string",
          "minLength": 1,
          "doc": "the client id the issuer gave",
          "example": {
            "fixed": "set-by-the-issuer"
          }
        },
        "client_secret": {
          "type": "string",
          "minLength": 16,
          "doc": "the client secret the issuer gave: a rotated one is used at the next sign-in",
          "example": {
            "randomHex": 32
          }
        }
      }
    },
    "app": {
      "doc": "the service's own keys",
      "source": "kv",
      "keys": {
        "session_keys": {
          "type": "string-list",
          "minLength": 32,
          "doc": "session cookie keys, newest first: the first key signs, every key verifies (rotation keeps old cookies valid)",
          "example": {
            "randomHex": 32
          }
        }
      }
    }
  }
} as const satisfies SecretCatalogue;

/** The secret groups the service reads, in the catalogue's order. */
export const secretGroups = ['database', 'api-keys', 'oidc', 'app'] as const;
export type SecretGroup = (typeof secretGroups)[number];

/** One snapshot's secrets: Vault's own key names, each typed as the catalogue declares it. */
export interface Secrets {
  /** the PostgreSQL user the service connects as */
  readonly database: {
    /** PostgreSQL user */
    readonly username: string;
    /** PostgreSQL password */
    readonly password: string;
  };
  /** keys for calls to and from other services */
  readonly 'api-keys': {
    /** HMAC key signing outbound webhooks */
    readonly webhook_signing_key: string;
  };
  /** the service's client at the OpenID Connect issuer it signs users in with (OIDC_ISSUER_URL) */
  readonly oidc: {
    /** the client id the issuer gave */
    readonly client_id: string;
    /** the client secret the issuer gave: a rotated one is used at the next sign-in */
    readonly client_secret: string;
  };
  /** the service's own keys */
  readonly app: {
    /** session cookie keys, newest first: the first key signs, every key verifies (rotation keeps old cookies valid) */
    readonly session_keys: readonly string[];
  };
}
