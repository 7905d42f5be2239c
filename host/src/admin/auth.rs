//! Who may use the admin API. Without `--admin-token` it is served only on
//! loopback and asks for nothing ([`check_bind`] refuses anything else at
//! start); with a token every request must carry it as a bearer token,
//! compared in constant time by [`Token::admits`].

use std::net::SocketAddr;

use http::{HeaderMap, header};

use super::Refusal;
use crate::secret::Token;

/// Admits a request carrying `token` (when one is required) in its
/// `Authorization` header.
pub(super) fn authorize(token: Option<&Token>, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(token) = token else {
        return Ok(());
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    if token.admits(authorization) {
        Ok(())
    } else {
        Err(Refusal::Unauthorized)
    }
}

/// Refuses to serve the API unauthenticated anywhere but on loopback.
pub fn check_bind(addr: SocketAddr, token: Option<&Token>) -> anyhow::Result<()> {
    if token.is_none() && !addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to serve the admin API on {addr} without a token: anyone who can reach it \
             could read and replay events. Bind it to 127.0.0.1 or set --admin-token env:VAR"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_without_a_token() {
        let token = Token::new("t");
        assert!(check_bind("127.0.0.1:9000".parse().unwrap(), None).is_ok());
        assert!(check_bind("[::1]:9000".parse().unwrap(), None).is_ok());
        let err = check_bind("0.0.0.0:9000".parse().unwrap(), None).unwrap_err();
        assert!(err.to_string().contains("--admin-token"), "{err}");
        assert!(check_bind("0.0.0.0:9000".parse().unwrap(), Some(&token)).is_ok());
    }
}
