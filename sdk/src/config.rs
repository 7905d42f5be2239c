//! The plugin's settings: the `[config]` table of its manifest.
//!
//! Values are strings. The host resolves `env:VAR` and `file:PATH`
//! references when it loads the plugin, so a secret can live outside the
//! manifest; the plugin sees the resolved value. The host never logs values.
//!
//! ```toml
//! # NAME.toml
//! [config]
//! chat_url = "http://127.0.0.1:9000/chat"
//! api_token = "env:CHAT_TOKEN"
//! ```
//!
//! ```no_run
//! # fn f() -> hookhost_sdk::Result<()> {
//! let url = hookhost_sdk::config::require("chat_url")?;
//! let channel = hookhost_sdk::config::get("channel").unwrap_or_else(|| "#general".into());
//! # let _ = (url, channel); Ok(()) }
//! ```
//!
//! Off WebAssembly (native unit tests) there is no manifest: values come
//! from environment variables named `HOOKHOST_CONFIG_` plus the key in upper
//! case (`chat_url` → `HOOKHOST_CONFIG_CHAT_URL`).

/// The value of `key`, or `None` when the manifest does not set it.
pub fn get(key: &str) -> Option<String> {
    imp::get(key)
}

/// Every key and value, sorted by key.
pub fn get_all() -> Vec<(String, String)> {
    imp::get_all()
}

/// The value of `key`, or a `reject` that tells the operator which key to
/// add to the plugin's manifest.
pub fn require(key: &str) -> crate::Result<String> {
    get(key).ok_or_else(|| {
        crate::reject(format!(
            "the plugin needs `{key}` in the `[config]` table of its manifest"
        ))
    })
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::__bindings::hookhost::plugin::config;

    pub fn get(key: &str) -> Option<String> {
        config::get(key)
    }

    pub fn get_all() -> Vec<(String, String)> {
        config::get_all()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    const PREFIX: &str = "HOOKHOST_CONFIG_";

    pub fn get(key: &str) -> Option<String> {
        std::env::var(format!("{PREFIX}{}", key.to_uppercase())).ok()
    }

    pub fn get_all() -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = std::env::vars()
            .filter_map(|(name, value)| Some((name.strip_prefix(PREFIX)?.to_lowercase(), value)))
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn require_names_the_missing_key() {
        let err = super::require("surely_unset_key_for_this_test").unwrap_err();
        assert!(err.is_reject());
        assert!(
            err.message().contains("`surely_unset_key_for_this_test`")
                && err.message().contains("[config]"),
            "{err:?}"
        );
    }
}
