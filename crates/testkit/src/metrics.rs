//! Reading Prometheus text: scraped from an admin endpoint over HTTP, or a `render()` string of
//! the link's metrics. Owns the parsing of a sample line; never interprets what a metric means.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::GUARD;

/// `GET /metrics` from an admin endpoint: the whole HTTP response (headers, then the Prometheus
/// text), which [`value`] and [`samples`] read line by line.
pub async fn scrape(admin: SocketAddr) -> std::io::Result<String> {
    let get = async {
        let mut s = tokio::net::TcpStream::connect(admin).await?;
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await?;
        let mut body = String::new();
        s.read_to_string(&mut body).await?;
        Ok(body)
    };
    tokio::time::timeout(GUARD, get)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "GET /metrics"))?
}

/// Every sample whose series (name and labels, as written) starts with `prefix`, with its value.
pub fn samples<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines().filter_map(move |line| {
        let (series, value) = line.rsplit_once(' ')?;
        if !series.starts_with(prefix) || line.starts_with('#') {
            return None;
        }
        Some((series, value.parse().ok()?))
    })
}

/// The value of exactly the series `series` (e.g. `link_reversals_pending` or
/// `link_requests_sent_total{mti="0800"}`), if it is there.
pub fn value(text: &str, series: &str) -> Option<f64> {
    samples(text, series).find_map(|(s, v)| (s == series).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP link_reversals_pending Reversals waiting.\n\
                        link_reversals_pending 1\n\
                        link_requests_sent_total{mti=\"0800\"} 2\n\
                        link_requests_sent_total{mti=\"0200\"} 5\n";

    #[test]
    fn finds_a_series_by_its_exact_name() {
        assert_eq!(value(TEXT, "link_reversals_pending"), Some(1.0));
        assert_eq!(
            value(TEXT, "link_requests_sent_total{mti=\"0200\"}"),
            Some(5.0)
        );
        assert_eq!(value(TEXT, "link_requests_sent_total"), None);
        assert_eq!(samples(TEXT, "link_requests_sent_total{").count(), 2);
    }
}
