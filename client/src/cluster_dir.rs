//! A cluster directory (written by `vhsm init`) as a client sees it: `client/client.toml` (where the coordinator
//! is, and this client's certificate) and `client/user.pin` (the token user's PIN, unless `VHSM_PIN` gives it).

use std::path::{Path, PathBuf};

use vhsm_core::PinUser;
use zeroize::Zeroizing;

use crate::{Client, ClientConfig, ClientError};

/// The environment variable that gives the token user's PIN (instead of `client/user.pin`).
pub const PIN_ENV: &str = "VHSM_PIN";

/// A cluster directory, from a client's side.
#[derive(Clone, Debug)]
pub struct ClusterDir {
    root: PathBuf,
}

impl ClusterDir {
    /// The cluster directory at `root`.
    pub fn new(root: &Path) -> Self {
        ClusterDir {
            root: root.to_path_buf(),
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `client/`: the client's configuration, certificate and key, and the user PIN.
    pub fn client_dir(&self) -> PathBuf {
        self.root.join("client")
    }

    /// `client/client.toml`.
    pub fn client_config_path(&self) -> PathBuf {
        self.client_dir().join("client.toml")
    }

    /// The client configuration; a missing one is explained.
    pub fn client_config(&self) -> Result<ClientConfig, ClientError> {
        let path = self.client_config_path();
        if !path.exists() {
            return Err(ClientError::Config(format!(
                "no client configuration at {}: is {} a cluster directory? (`vhsm init --dir D` makes one; \
                 `--cluster D` or VHSM_CLUSTER names it)",
                path.display(),
                self.root.display()
            )));
        }
        ClientConfig::load(&path)
    }

    /// The token user's PIN, trimmed: `VHSM_PIN`, else `client/user.pin`.
    pub fn user_pin(&self) -> Result<Zeroizing<String>, ClientError> {
        let pin = match std::env::var(PIN_ENV) {
            Ok(pin) => Zeroizing::new(pin),
            Err(_) => {
                let path = self.client_dir().join("user.pin");
                Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
                    ClientError::Config(format!(
                        "this command needs the user PIN: set {PIN_ENV}, or put it in {} ({e})",
                        path.display()
                    ))
                })?)
            }
        };
        Ok(Zeroizing::new(pin.trim().to_string()))
    }

    /// A connection to the coordinator, not logged in.
    pub async fn connect(&self) -> Result<Client, ClientError> {
        Client::connect(&self.client_config()?).await
    }

    /// A connection to the coordinator, logged in as the token's user.
    pub async fn connect_user(&self) -> Result<Client, ClientError> {
        let client = self.connect().await?;
        let pin = self.user_pin()?;
        client.login(PinUser::User, pin.as_bytes()).await?;
        Ok(client)
    }
}
