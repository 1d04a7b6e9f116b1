//! The authorizer's connections to the vault, one per role: a client that connects on first use
//! and again on each call until a connection succeeds (a process may start before its vault;
//! once connected, the vault client reconnects by itself). One [`LazyVault`] per role is shared
//! by everything that speaks in that role: [`crate::cards::VaultCards`] and
//! [`crate::secrets::VaultSecrets`] (authorizer), [`crate::saved_cards::FacadeVault`] and
//! `VaultSecrets` (facade).
//!
//! Owns when to connect, which role to expect and the one-line description of a client error.
//! Must never hold or log what goes through it, nor put a PAN or a secret into a description
//! (the vault client's errors carry neither).

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

    /// Connects on first use, and again on each use until a connection succeeds.
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

    /// Whether the vault answers this client now (connecting if need be), without sending a
    /// request while a connection is open: the readiness probe's check ([`VaultClient::reachable`]).
    pub async fn reachable(&self) -> Result<(), ClientError> {
        self.client().await?.reachable().await
    }

    /// Connects if not yet connected and checks that the vault gave this client `role`, so that
    /// a misconfiguration shows at start rather than at the first call; `to` says what the
    /// client could not do otherwise.
    pub async fn expect_role(&self, role: Role, to: &str) -> Result<(), String> {
        let got = self.client().await.map_err(|e| describe(&e))?.role();
        if got == role {
            Ok(())
        } else {
            Err(format!(
                "the vault knows this client as {}, not {}: it may not {to}",
                got.name(),
                role.name()
            ))
        }
    }
}

/// The client error and its causes in one line (the seams' errors carry text only).
pub fn describe(e: &ClientError) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
