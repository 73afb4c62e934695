//! What a gateway allows: auth, limits, timeouts and CORS.

use std::time::Duration;

/// The settings of a [`Gateway`](crate::Gateway), safe by default: no CORS, a 1 MiB body
/// limit, calls of at most 30 s, and no token (add one with [`token`](Self::token) when the
/// gateway listens beyond localhost).
///
/// ```
/// use std::time::Duration;
/// use fabric_gateway::GatewayConfig;
///
/// let config = GatewayConfig::default()
///     .token("s3cret")
///     .max_timeout(Duration::from_secs(10))
///     .cors_origin("https://app.example");
/// assert_eq!(config.default_timeout_value(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub(crate) token: Option<String>,
    pub(crate) default_timeout: Duration,
    pub(crate) max_timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) cors_origins: Vec<String>,
    pub(crate) max_concurrent_calls: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            token: None,
            default_timeout: Duration::from_secs(5),
            max_timeout: Duration::from_secs(30),
            max_body: 1024 * 1024,
            cors_origins: Vec::new(),
            max_concurrent_calls: 256,
        }
    }
}

impl GatewayConfig {
    /// Requires `Authorization: Bearer TOKEN` on every route but the page itself (`/`);
    /// requests without it get 401. Server-Sent Events, which a browser's `EventSource` cannot send a
    /// header with, may carry it as `?access_token=TOKEN` instead (compared as written, not
    /// percent-decoded: choose a URL-safe token). The page shows no data without it.
    #[must_use = "token returns the config with the token set"]
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// The timeout of a call that names none (`X-Fabric-Timeout` or `?timeout=`). Default
    /// 5 s; capped by [`max_timeout`](Self::max_timeout).
    #[must_use = "default_timeout returns the config with the timeout set"]
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// The longest a call may wait, whatever the request asks. Default 30 s.
    #[must_use = "max_timeout returns the config with the cap set"]
    pub fn max_timeout(mut self, timeout: Duration) -> Self {
        self.max_timeout = timeout;
        self
    }

    /// The largest request body accepted; larger ones get 413. Default 1 MiB.
    #[must_use = "max_body returns the config with the limit set"]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Allows cross-origin requests from `origin` (`https://app.example`, or `*` for any).
    /// Without one, no CORS headers are sent and browsers keep other origins out.
    #[must_use = "cors_origin returns the config with the origin added"]
    pub fn cors_origin(mut self, origin: &str) -> Self {
        self.cors_origins.push(origin.to_owned());
        self
    }

    /// How many calls may be in flight at once (each waits on a thread of tokio's blocking
    /// pool); further requests wait their turn without a thread. Default 256.
    #[must_use = "max_concurrent_calls returns the config with the limit set"]
    pub fn max_concurrent_calls(mut self, calls: usize) -> Self {
        self.max_concurrent_calls = calls.max(1);
        self
    }

    /// The timeout of a call that names none, after the cap.
    pub fn default_timeout_value(&self) -> Duration {
        self.default_timeout.min(self.max_timeout)
    }

    /// The timeout of a call that asks for `asked`: at most [`max_timeout`](Self::max_timeout).
    pub fn timeout_for(&self, asked: Option<Duration>) -> Duration {
        asked.map_or(self.default_timeout_value(), |asked| {
            asked.min(self.max_timeout)
        })
    }
}
