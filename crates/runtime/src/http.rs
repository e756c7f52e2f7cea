//! What the model planner and HTTP tools share: the one HTTP client, bounded body reads,
//! `Retry-After`, and how an HTTP status is classified (retry or give up).

use std::time::Duration;

/// The worker's HTTP client (connection pool shared by every model endpoint and HTTP tool).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than allowed.
    TooLarge(usize),
    /// The connection broke or timed out while reading.
    Read(reqwest::Error),
}

/// Reads the response body, refusing more than `max` bytes (stops reading at the limit).
pub async fn read_limited(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if let Some(len) = response.content_length().filter(|l| *l as usize > max) {
        return Err(BodyError::TooLarge(len as usize));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge(body.len() + chunk.len()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The least wait a response asks for: `retry-after-ms`, or `Retry-After` in seconds.
pub fn retry_after_ms(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = value("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(ms.max(0.0) as u64);
    }
    value("retry-after").and_then(|v| v.parse::<f64>().ok()).map(|s| (s.max(0.0) * 1000.0) as u64)
}

/// Whether a non-2xx status is worth retrying: 408, 429 and 5xx are; other 4xx are not.
pub fn retryable_status(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// At most `max` characters of a body, for error messages.
pub fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after_ms(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after_ms(&h), Some(2_000));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after_ms(&h), Some(150));
    }

    #[test]
    fn statuses_are_classified() {
        assert!(retryable_status(reqwest::StatusCode::TOO_MANY_REQUESTS));
        assert!(retryable_status(reqwest::StatusCode::BAD_GATEWAY));
        assert!(retryable_status(reqwest::StatusCode::REQUEST_TIMEOUT));
        assert!(!retryable_status(reqwest::StatusCode::NOT_FOUND));
        assert_eq!(excerpt("αβγδ".as_bytes(), 2), "αβ…");
    }
}
