//! One vault client of the authorizer, connected now or on first use: a process may start before
//! its vault. Shared by [`crate::cards::VaultCards`] and [`crate::secrets::VaultSecrets`].
//!
//! Owns the connection attempt and the one-line description of a client error. Must never put a
//! PAN or a secret into that description (the vault client's errors carry neither).

use tokio::sync::OnceCell;
use vault::{ClientError, ClientOptions, Credentials, Role, VaultClient, VaultEndpoint};

/// A vault client, or how to connect one.
#[derive(Debug)]
pub(crate) struct LazyVault {
    client: OnceCell<VaultClient>,
    /// How to connect when `client` is still empty.
    connect: Option<(VaultEndpoint, Credentials, ClientOptions)>,
}

impl LazyVault {
    /// Over a connected client.
    pub(crate) fn connected(client: VaultClient) -> LazyVault {
        LazyVault {
            client: OnceCell::new_with(Some(client)),
            connect: None,
        }
    }

    /// Connects on first use, and again on each use until a connection succeeds; the client
    /// reconnects by itself after that.
    pub(crate) fn connecting(
        endpoint: VaultEndpoint,
        credentials: Credentials,
        options: ClientOptions,
    ) -> LazyVault {
        LazyVault {
            client: OnceCell::new(),
            connect: Some((endpoint, credentials, options)),
        }
    }

    /// The client; the text says why there is none.
    pub(crate) async fn client(&self) -> Result<&VaultClient, String> {
        self.client
            .get_or_try_init(|| async {
                let (endpoint, credentials, options) = self
                    .connect
                    .clone()
                    .ok_or_else(|| "no vault to connect to".to_owned())?;
                VaultClient::connect_with(endpoint, credentials, options)
                    .await
                    .map_err(|e| describe(&e))
            })
            .await
    }

    /// Connects if not yet connected and checks the vault gave this client `role`, so that a
    /// misconfiguration shows at start rather than at the first payment or reversal.
    pub(crate) async fn expect_role(&self, role: Role, to: &str) -> Result<(), String> {
        let got = self.client().await?.role();
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
pub(crate) fn describe(e: &ClientError) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
