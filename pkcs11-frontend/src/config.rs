//! The module's configuration: the file named by `VHSM_PKCS11_CONFIG`, and logging.

use std::path::PathBuf;

use vhsm_client::ClientConfig;

/// The environment variable naming the client configuration file.
pub const CONFIG_VAR: &str = "VHSM_PKCS11_CONFIG";
/// The environment variable that turns on logging to standard error (a `tracing` filter, or `1`).
pub const LOG_VAR: &str = "VHSM_PKCS11_LOG";

/// Reads the configuration named by `VHSM_PKCS11_CONFIG`. The error is a short sentence for the slot description
/// and the log.
pub fn load() -> Result<ClientConfig, String> {
    let Some(path) = std::env::var_os(CONFIG_VAR) else {
        return Err(format!("{CONFIG_VAR} is not set"));
    };
    let path = PathBuf::from(path);
    ClientConfig::load(&path).map_err(|e| e.to_string())
}

/// Starts logging to standard error if `VHSM_PKCS11_LOG` is set (once per process; an application's own
/// `tracing` subscriber is left alone, as this module has its own copy of `tracing`).
pub fn init_logging() {
    let Ok(filter) = std::env::var(LOG_VAR) else {
        return;
    };
    let filter = match filter.as_str() {
        "" | "1" | "true" | "yes" => "debug".to_string(),
        _ => filter,
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
    // Fails harmlessly if a subscriber is already installed (a second C_Initialize).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}
