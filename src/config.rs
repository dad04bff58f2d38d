//! Configuration: the TOML file (`RawConfig`, unknown keys rejected) with CLI flags and
//! `$STATE_DIRECTORY` layered on top, converted once into a validated [`Config`].
//!
//! Validation happens while deserialising, so every error names the file, line and key.
//! Precedence: CLI flag > config file > `$STATE_DIRECTORY` (state dir only) > default.
//! Relative paths are relative to the directory herald is started in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use url::Url;

/// Where the config file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/herald.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{flag}: {message}")]
    Flag { flag: &'static str, message: String },
}

/// Values given on the command line; each overrides the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub content: Option<PathBuf>,
    pub base_url: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub listen: Vec<SocketAddr>,
}

/// The validated configuration, passed explicitly to everything that needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from, if any (re-read on SIGHUP).
    pub file: Option<PathBuf>,
    pub site: SiteConfig,
    pub content_dir: PathBuf,
    pub state_dir: PathBuf,
    pub max_article_bytes: u64,
    /// Media files (images, audio, video, PDF) larger than this are not served.
    pub max_media_bytes: u64,
    pub feed: FeedConfig,
    pub labels: Labels,
    pub server: ServerConfig,
    pub watch: WatchConfig,
    pub log: LogConfig,
    pub websub: WebSubConfig,
    pub publish: PublishConfig,
}

/// `[publish]`: mirror every publish to S3-compatible object storage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PublishConfig {
    /// Where `serve` mirrors each publish (None: nowhere).
    pub to: Option<S3Target>,
    /// The store's endpoint (empty: `AWS_ENDPOINT_URL`, else AWS).
    pub endpoint: String,
    /// Empty: `AWS_REGION`.
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`), for most self-hosted stores.
    pub path_style: bool,
    /// Uploads in flight at once.
    pub concurrency: usize,
}

/// A bucket and a key prefix: `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
}

impl S3Target {
    /// Parses `s3://BUCKET` or `s3://BUCKET/PREFIX` (None: not an `s3://` address).
    pub fn parse(s: &str) -> Option<Result<S3Target, String>> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Some(Err(format!(
                "{s:?}: a bucket name is 3 to 63 lowercase letters, digits, '-' and '.'"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|seg| seg == "." || seg == "..") {
            return Some(Err(format!("{s:?}: the prefix has a '.' or '..' segment")));
        }
        Some(Ok(S3Target {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }))
    }
}

impl std::fmt::Display for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// `[websub]`: hubs advertised in every feed and pinged after each publish, and the
/// built-in hub.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSubConfig {
    /// External hubs (absolute http(s) URLs), advertised and pinged.
    pub hubs: Vec<Url>,
    /// Serve a hub of our own at `<base_url>websub`.
    pub builtin: bool,
    /// The built-in hub's lease when a subscriber asks for none, in seconds.
    pub lease_seconds: u64,
    /// The built-in hub refuses new subscriptions (429) above this.
    pub max_subscriptions: usize,
    /// Deliver to loopback and private addresses (tests, intranets).
    pub allow_private_callbacks: bool,
}

impl WebSubConfig {
    /// The least and the most lease a subscriber gets, in seconds.
    pub const LEASE_RANGE: (u64, u64) = (3_600, 864_000);
}

impl Config {
    /// Every hub a feed advertises: the external ones, then the built-in one.
    pub fn hub_urls(&self) -> Vec<String> {
        let mut hubs: Vec<String> = self.websub.hubs.iter().map(Url::to_string).collect();
        if self.websub.builtin {
            hubs.push(self.url("websub"));
        }
        hubs
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    pub title: String,
    pub description: String,
    pub author: String,
    pub language: String,
    /// Absolute http(s) URL ending in `/`.
    pub base_url: Url,
    /// `dns-name-or-email,YYYY[-MM[-DD]]`, the authority of every `tag:` id.
    pub tag_authority: String,
    pub timezone: Tz,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    pub entries: usize,
    pub summary_chars: usize,
    /// The one format `feeds.opml` lists each feed in (importing it subscribes to every
    /// outline, so one per feed).
    pub opml_format: OpmlFormat,
    /// Bytes of entry bodies (HTML) one feed may carry; entries past it carry their summary
    /// alone, so eight 4.5 MB articles in one category never make a 37 MB feed.
    pub max_feed_bytes: usize,
}

/// Which of the three formats the OPML list subscribes readers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpmlFormat {
    Atom,
    Rss,
    Json,
}

impl OpmlFormat {
    /// The feed file's extension (`feed.atom`, `feed.rss`, `feed.json`).
    pub fn ext(self) -> &'static str {
        match self {
            OpmlFormat::Atom => "atom",
            OpmlFormat::Rss => "rss",
            OpmlFormat::Json => "json",
        }
    }
}

/// Labels of the scraped news-page format; each is a list of alternatives, matched
/// case-insensitively and followed by `:` or `：`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Labels {
    pub breadcrumb: Vec<String>,
    pub visits: Vec<String>,
    pub date: Vec<String>,
    pub source: Vec<String>,
    pub category: Vec<String>,
    pub keywords: Vec<String>,
}

impl Default for Labels {
    fn default() -> Self {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
        Labels {
            breadcrumb: v(&["Your present location", "当前位置", "您现在的位置"]),
            visits: v(&["Number of visits", "浏览次数", "点击数"]),
            date: v(&["Date", "发布时间", "发布日期", "日期", "时间"]),
            source: v(&["Source", "来源"]),
            category: v(&["TypeInfo", "栏目", "分类"]),
            keywords: v(&["Keywords for the information", "关键词", "关键字"]),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub max_age: u32,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    /// Connections one client address may hold at once (0: no limit).
    pub max_connections_per_client: usize,
    /// Where `/metrics` is served.
    pub metrics: MetricsAt,
    /// A response that makes no progress this long (the client does not read) is dropped.
    pub send_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Bytes of category and tag feed and article page bodies kept rendered (see `feed_cache`).
    pub feed_cache_bytes: u64,
}

/// Where `/metrics` is served: `[server] metrics_listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAt {
    /// On the feeds' own listeners (`""`, the default).
    Main,
    /// Nowhere (`"off"`).
    Off,
    /// On a listener of its own, and not on the feeds' (`"127.0.0.1:9101"`).
    Listen(SocketAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// inotify (or the platform's equivalent), falling back to polling if it cannot start.
    Auto,
    Poll,
    Off,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    pub mode: WatchMode,
    pub debounce: Duration,
    pub poll_interval: Duration,
    pub rescan_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

// ---- the file as written ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    site: RawSite,
    content: RawContent,
    state: RawState,
    feed: RawFeed,
    scraped: Labels,
    server: RawServer,
    watch: RawWatch,
    log: RawLog,
    websub: RawWebSub,
    publish: RawPublish,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPublish {
    to: String,
    endpoint: String,
    region: String,
    path_style: bool,
    concurrency: usize,
}

impl Default for RawPublish {
    fn default() -> Self {
        RawPublish {
            to: String::new(),
            endpoint: String::new(),
            region: String::new(),
            path_style: false,
            concurrency: 8,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWebSub {
    #[serde(deserialize_with = "hub_urls")]
    hubs: Vec<Url>,
    builtin: bool,
    lease_seconds: u64,
    max_subscriptions: usize,
    allow_private_callbacks: bool,
}

impl Default for RawWebSub {
    fn default() -> Self {
        RawWebSub {
            hubs: Vec::new(),
            builtin: false,
            lease_seconds: 86_400,
            max_subscriptions: 10_000,
            allow_private_callbacks: false,
        }
    }
}

fn hub_urls<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Url>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    list.iter()
        .map(|s| {
            let url = Url::parse(s).map_err(|e| format!("websub.hubs: invalid URL {s:?}: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!(
                    "websub.hubs: {s:?} must be an absolute http(s) URL"
                ));
            }
            Ok(url)
        })
        .collect::<Result<_, String>>()
        .map_err(serde::de::Error::custom)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSite {
    #[serde(deserialize_with = "non_empty")]
    title: String,
    description: String,
    author: String,
    language: String,
    #[serde(deserialize_with = "base_url")]
    base_url: Url,
    #[serde(deserialize_with = "tag_authority")]
    tag_authority: String,
    #[serde(deserialize_with = "time_zone")]
    timezone: Tz,
}

impl Default for RawSite {
    fn default() -> Self {
        RawSite {
            title: "herald".into(),
            description: "Articles published by herald".into(),
            author: "herald".into(),
            language: "en".into(),
            base_url: Url::parse("http://127.0.0.1:8080/").expect("valid literal"),
            tag_authority: "localhost,2026".into(),
            timezone: Tz::UTC,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawContent {
    dir: Option<PathBuf>,
    #[serde(deserialize_with = "positive_u64")]
    max_article_bytes: u64,
    #[serde(deserialize_with = "positive_u64")]
    max_media_bytes: u64,
}

impl Default for RawContent {
    fn default() -> Self {
        RawContent {
            dir: None,
            max_article_bytes: 5 * 1024 * 1024,
            max_media_bytes: 200 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawState {
    dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFeed {
    #[serde(deserialize_with = "positive_usize")]
    entries: usize,
    #[serde(deserialize_with = "positive_usize")]
    summary_chars: usize,
    opml_format: OpmlFormat,
    #[serde(deserialize_with = "positive_usize")]
    max_feed_bytes: usize,
}

impl Default for RawFeed {
    fn default() -> Self {
        RawFeed {
            entries: 50,
            summary_chars: 280,
            opml_format: OpmlFormat::Atom,
            max_feed_bytes: 2 << 20,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    #[serde(deserialize_with = "socket_addrs")]
    listen: Vec<SocketAddr>,
    max_age: u32,
    #[serde(deserialize_with = "positive_u64")]
    header_read_timeout_ms: u64,
    #[serde(deserialize_with = "positive_u64")]
    idle_timeout_ms: u64,
    #[serde(deserialize_with = "positive_usize")]
    max_header_bytes: usize,
    #[serde(deserialize_with = "positive_usize")]
    max_connections: usize,
    max_connections_per_client: usize,
    #[serde(deserialize_with = "metrics_at")]
    metrics_listen: MetricsAt,
    #[serde(deserialize_with = "positive_u64")]
    send_timeout_ms: u64,
    shutdown_grace_ms: u64,
    feed_cache_mb: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            max_age: 300,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            max_connections_per_client: 64,
            metrics_listen: MetricsAt::Main,
            send_timeout_ms: 10_000,
            shutdown_grace_ms: 10_000,
            feed_cache_mb: 32,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWatch {
    mode: WatchMode,
    debounce_ms: u64,
    #[serde(deserialize_with = "positive_u64")]
    poll_interval_ms: u64,
    rescan_interval_secs: u64,
}

impl Default for RawWatch {
    fn default() -> Self {
        RawWatch {
            mode: WatchMode::Auto,
            debounce_ms: 250,
            poll_interval_ms: 2000,
            rescan_interval_secs: 600,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    level: String,
    format: LogFormat,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

// ---- validating deserialisers: an error here carries the file's line and key ----

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(s)
}

fn positive_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be greater than 0"));
    }
    Ok(n)
}

fn positive_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = positive_u64(d)?;
    usize::try_from(n).map_err(serde::de::Error::custom)
}

fn base_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    parse_base_url(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// An absolute http(s) URL; a trailing `/` is added so relative joins stay under it.
pub fn parse_base_url(s: &str) -> Result<Url, String> {
    let mut url = Url::parse(s).map_err(|e| format!("invalid base_url {s:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("base_url {s:?} must be an absolute http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("base_url {s:?} must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn tag_authority<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    validate_tag_authority(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

/// RFC 4151: `authorityName "," date` with a DNS name or e-mail and `YYYY[-MM[-DD]]`.
fn validate_tag_authority(s: &str) -> Result<(), String> {
    let bad = || {
        format!("tag_authority {s:?} must look like \"example.org,2026\" or \"me@example.org,2026-11-26\" (RFC 4151)")
    };
    let (name, date) = s.split_once(',').ok_or_else(bad)?;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '@' | '_'));
    let date_ok = match date.len() {
        4 => chrono::NaiveDate::parse_from_str(&format!("{date}-01-01"), "%Y-%m-%d").is_ok(),
        7 => chrono::NaiveDate::parse_from_str(&format!("{date}-01"), "%Y-%m-%d").is_ok(),
        10 => chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        _ => false,
    };
    if name_ok && date_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

fn time_zone<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "unknown time zone {s:?} (use an IANA name such as \"UTC\" or \"Asia/Shanghai\")"
        ))
    })
}

fn metrics_at<'de, D: Deserializer<'de>>(d: D) -> Result<MetricsAt, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "" => Ok(MetricsAt::Main),
        "off" => Ok(MetricsAt::Off),
        addr => addr.parse().map(MetricsAt::Listen).map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid metrics_listen {s:?} (use \"\", \"off\" or an address like \"127.0.0.1:9101\")"
            ))
        }),
    }
}

fn socket_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    list.iter()
        .map(|s| {
            s.parse::<SocketAddr>().map_err(|_| {
                serde::de::Error::custom(format!(
                    "invalid listen address {s:?} (use \"127.0.0.1:8080\" or \"[::1]:8080\")"
                ))
            })
        })
        .collect()
}

impl Config {
    /// Reads the config file (the `--config` one, else `./config/herald.toml` when present,
    /// else defaults) and applies the overrides.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let file = match &overrides.config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.is_file()),
        };
        let raw = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_raw(&text).map_err(|message| ConfigError::Invalid {
                    path: path.clone(),
                    message,
                })?
            }
            None => RawConfig::default(),
        };
        Self::from_raw(raw, file, overrides)
    }

    /// Parses config text (used by tests and by `load`).
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let raw = parse_raw(text).map_err(|message| ConfigError::Invalid {
            path: PathBuf::from("<config>"),
            message,
        })?;
        Self::from_raw(raw, None, overrides)
    }

    fn from_raw(
        raw: RawConfig,
        file: Option<PathBuf>,
        o: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut site = raw.site;
        if let Some(url) = &o.base_url {
            site.base_url = parse_base_url(url).map_err(|message| ConfigError::Flag {
                flag: "--base-url",
                message,
            })?;
        }
        let state_env = std::env::var_os("STATE_DIRECTORY")
            // systemd may pass several, separated by ':'; the first is ours.
            .and_then(|v| {
                v.to_str()
                    .and_then(|s| s.split(':').next())
                    .map(PathBuf::from)
            })
            .filter(|p| !p.as_os_str().is_empty());
        let listen = if o.listen.is_empty() {
            raw.server.listen
        } else {
            o.listen.clone()
        };
        let level = raw.log.level;
        tracing_subscriber::EnvFilter::try_new(&level).map_err(|e| ConfigError::Invalid {
            path: file.clone().unwrap_or_default(),
            message: format!("log.level {level:?}: {e}"),
        })?;
        let publish_to = match raw.publish.to.as_str() {
            "" => None,
            to => Some(
                S3Target::parse(to)
                    .unwrap_or_else(|| Err(format!("{to:?} is not an s3:// address")))
                    .map_err(|e| ConfigError::Invalid {
                        path: file.clone().unwrap_or_default(),
                        message: format!("publish.to: {e}"),
                    })?,
            ),
        };
        Ok(Config {
            file,
            site: SiteConfig {
                title: site.title,
                description: site.description,
                author: site.author,
                language: site.language,
                base_url: site.base_url,
                tag_authority: site.tag_authority,
                timezone: site.timezone,
            },
            // Absolute from here on (relative to the working directory, as given): the file
            // watcher reports absolute paths, and they must be found inside it.
            content_dir: absolute(
                o.content
                    .clone()
                    .or(raw.content.dir)
                    .unwrap_or_else(|| PathBuf::from("content")),
            ),
            state_dir: o
                .state_dir
                .clone()
                .or(raw.state.dir)
                .or(state_env)
                .unwrap_or_else(|| PathBuf::from("state")),
            max_article_bytes: raw.content.max_article_bytes,
            max_media_bytes: raw.content.max_media_bytes,
            feed: FeedConfig {
                entries: raw.feed.entries,
                summary_chars: raw.feed.summary_chars,
                opml_format: raw.feed.opml_format,
                max_feed_bytes: raw.feed.max_feed_bytes,
            },
            labels: raw.scraped,
            server: ServerConfig {
                listen,
                max_age: raw.server.max_age,
                header_read_timeout: Duration::from_millis(raw.server.header_read_timeout_ms),
                idle_timeout: Duration::from_millis(raw.server.idle_timeout_ms),
                max_header_bytes: raw.server.max_header_bytes.max(1024),
                max_connections: raw.server.max_connections,
                max_connections_per_client: raw.server.max_connections_per_client,
                metrics: raw.server.metrics_listen,
                send_timeout: Duration::from_millis(raw.server.send_timeout_ms),
                shutdown_grace: Duration::from_millis(raw.server.shutdown_grace_ms),
                // More than the address space is as good as unlimited.
                feed_cache_bytes: raw.server.feed_cache_mb.saturating_mul(1 << 20),
            },
            watch: WatchConfig {
                mode: raw.watch.mode,
                debounce: Duration::from_millis(raw.watch.debounce_ms),
                poll_interval: Duration::from_millis(raw.watch.poll_interval_ms),
                rescan_interval: Duration::from_secs(raw.watch.rescan_interval_secs),
            },
            log: LogConfig {
                level,
                format: raw.log.format,
            },
            websub: WebSubConfig {
                hubs: raw.websub.hubs,
                builtin: raw.websub.builtin,
                lease_seconds: raw
                    .websub
                    .lease_seconds
                    .clamp(WebSubConfig::LEASE_RANGE.0, WebSubConfig::LEASE_RANGE.1),
                max_subscriptions: raw.websub.max_subscriptions,
                allow_private_callbacks: raw.websub.allow_private_callbacks,
            },
            publish: PublishConfig {
                to: publish_to,
                endpoint: raw.publish.endpoint,
                region: raw.publish.region,
                path_style: raw.publish.path_style,
                concurrency: raw.publish.concurrency.clamp(1, 256),
            },
        })
    }

    /// The absolute URL of a site path such as `feed.atom` or `categories/x/feed.rss`.
    pub fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        // herald's own paths (slugs, `feed.atom`) need no resolving: the base ends with `/`
        // and has no query or fragment, so joining such a path appends it. Rendering the
        // index and OPML of a site with 10 000 terms makes 60 000 URLs.
        let plain = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
            && path.split('/').all(|seg| seg != "." && seg != "..");
        if plain {
            return format!("{}{path}", self.site.base_url.as_str());
        }
        match self.site.base_url.join(path) {
            Ok(u) => u.to_string(),
            Err(_) => format!("{}{}", self.site.base_url, path),
        }
    }

    /// The state database file.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("herald.sqlite")
    }

    /// The config's directory, for messages.
    pub fn file_display(&self) -> String {
        self.file
            .as_deref()
            .map(Path::display)
            .map(|d| d.to_string())
            .unwrap_or_else(|| "(defaults)".into())
    }
}

/// `path` made absolute against the working directory (as it is; symlinks are not resolved).
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

fn parse_raw(text: &str) -> Result<RawConfig, String> {
    toml::from_str::<RawConfig>(text).map_err(|e| e.to_string().trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::from_toml(text, &Overrides::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_toml("", &Overrides::default()).unwrap();
        assert_eq!(c.feed.entries, 50);
        assert_eq!(c.site.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(c.server.max_age, 300);
        assert_eq!(c.server.feed_cache_bytes, 32 << 20);
        assert_eq!(c.url("/feed.atom"), "http://127.0.0.1:8080/feed.atom");
    }

    #[test]
    fn shipped_config_parses_and_matches_defaults() {
        let text = include_str!("../config/herald.toml");
        let shipped = Config::from_toml(text, &Overrides::default()).unwrap();
        assert_eq!(
            shipped.feed,
            Config::from_toml("", &Overrides::default()).unwrap().feed
        );
    }

    #[test]
    fn unknown_keys_name_line_and_key() {
        let e = err("[site]\ntitle = \"x\"\ntitel = \"y\"\n");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("titel"), "{e}");
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let e = err("[site]\ntimezone = \"Mars/Base\"\n");
        assert!(e.contains("line 2") && e.contains("Mars/Base"), "{e}");
        let e = err("[feed]\nentries = 0\n");
        assert!(e.contains("line 2") && e.contains("greater than 0"), "{e}");
        let e = err("[site]\nbase_url = \"ftp://x\"\n");
        assert!(e.contains("line 2") && e.contains("base_url"), "{e}");
        let e = err("[site]\ntag_authority = \"nodate\"\n");
        assert!(e.contains("tag_authority"), "{e}");
        let e = err("[server]\nlisten = [\"nonsense\"]\n");
        assert!(e.contains("nonsense"), "{e}");
        let e = err("[watch]\nmode = \"sometimes\"\n");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn flags_override_the_file() {
        let o = Overrides {
            base_url: Some("https://news.example.com/sub".into()),
            content: Some("/srv/articles".into()),
            ..Default::default()
        };
        let c = Config::from_toml("[content]\ndir = \"elsewhere\"\n", &o).unwrap();
        assert_eq!(c.site.base_url.as_str(), "https://news.example.com/sub/");
        assert_eq!(c.content_dir, PathBuf::from("/srv/articles"));
        assert_eq!(c.url("feed.rss"), "https://news.example.com/sub/feed.rss");
    }

    #[test]
    fn urls_of_plain_paths_are_what_joining_gives() {
        for base in ["https://news.example.com/", "http://127.0.0.1:8080/a/b/"] {
            let o = Overrides {
                base_url: Some(base.into()),
                ..Default::default()
            };
            let c = Config::from_toml("", &o).unwrap();
            for path in [
                "",
                "feed.atom",
                "/tags/x-y/feed.json",
                "articles/a_b~c.d.html",
                "a//b",
                "./x",
                "a/../b",
                "..",
                "x:y",
                "a b/é?q#f",
                "%2e%2e/x",
            ] {
                let joined = c.site.base_url.join(path.trim_start_matches('/')).unwrap();
                assert_eq!(c.url(path), joined.as_str(), "{base} + {path}");
            }
        }
    }
}
