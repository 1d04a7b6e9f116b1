//! The authorizer's connections to the vault, one per role: a client that connects on first use
//! and again on each call until a connection succeeds (a process may start before its vault;
//! once connected, the vault client reconnects by itself).
//!
//! Owns when to connect and which role to expect; must never hold or log what goes through it.

use tokio::sync::OnceCell;
use vault::{ClientError, ClientOptions, Credentials, Role, VaultClient, VaultEndpoint};

/// A vault client, connected now or on first use.
#[derive(Debug)]
pub struct LazyVault {
    client: OnceCell<VaultClient>,
    /// How to connect while `client` is still empty.
    connect: Option<(VaultEndpoint, Credentials, ClientOptions)>,
}

impl LazyVault {
    /// Over a client already connected.
    pub fn connected(client: VaultClient) -> LazyVault {
        LazyVault {
            client: OnceCell::new_with(Some(client)),
            connect: None,
        }
    }

    /// Connects on first use.
    pub fn connecting(
        endpoint: VaultEndpoint,
        credentials: Credentials,
        options: ClientOptions,
    ) -> LazyVault {
        LazyVault {
            client: OnceCell::new(),
            connect: Some((endpoint, credentials, options)),
        }
    }

    /// The client, connecting if need be.
    pub async fn client(&self) -> Result<&VaultClient, ClientError> {
        self.client
            .get_or_try_init(|| async {
                let (endpoint, credentials, options) =
                    self.connect.clone().ok_or(ClientError::Closed)?;
                VaultClient::connect_with(endpoint, credentials, options).await
            })
            .await
    }

    /// Connects if not yet connected and checks that the vault gave this client `expected`, so
    /// that a misconfiguration shows at start rather than at the first call.
    pub async fn ready(&self, expected: Role) -> Result<(), String> {
        let role = self.client().await.map_err(|e| e.to_string())?.role();
        if role == expected {
            Ok(())
        } else {
            Err(format!(
                "the vault knows this client as {}, not {}",
                role.name(),
                expected.name()
            ))
        }
    }
}
