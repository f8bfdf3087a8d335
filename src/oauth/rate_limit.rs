//! Per-address request limits on `/authorize`, `/login`, `/register` and `/token` (issue 8 §2 "Also
//! limit per address"; OWASP API Security Top 10 2023 API4 *Unrestricted Resource Consumption*;
//! OWASP *Authentication Cheat Sheet*, "Login Throttling"; RFC 7591 §5 on registration abuse).
//!
//! One token bucket per (endpoint, client address): it holds up to `burst` requests and refills at
//! `per_minute`. The address is [`ClientAddr`] (`X-Forwarded-For` only from trusted proxies); an
//! IPv6 address counts per /64, the network one subscriber is usually given, so rotating through
//! one's own addresses buys nothing. Counters live in this process: several instances behind one
//! balancer each allow the configured rate.
//!
//! Over the limit the answer is 429 Too Many Requests (RFC 6585 §4) with `Retry-After`
//! (RFC 9110 §10.2.3): for the JSON endpoints in the OAuth error format with `slow_down` (the
//! registered token-endpoint code for a client that is going too fast, RFC 8628 §3.5); for the
//! browser endpoints as an HTML page.
//!
//! `/authorize` also may not leave more than `max_open_logins_per_address` login transactions open
//! per address ([`LoginSlots`]): a slot is taken before the handler runs, given back when the
//! handler started no login, and otherwise held until the transaction would expire.
//!
//! Memory is bounded: idle buckets are dropped by [`RateLimits::purge`] (the purge loop), and at most
//! [`MAX_TRACKED_ADDRESSES`] addresses are tracked per endpoint. When an attack from more addresses
//! than that fills the table, new addresses are refused until entries expire (failing closed).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::LimitsSettings;
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::client_address::ClientAddr;
use crate::state::AppState;

/// Most addresses one limiter tracks at once.
pub const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Seconds to announce in `Retry-After`: whole, at least 1.
fn retry_after_secs(d: Duration) -> u64 {
    let rounded_up = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    rounded_up.max(1)
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token bucket per address.
#[derive(Debug)]
pub struct AddressLimiter {
    per_second: f64,
    burst: f64,
    max_tracked: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl AddressLimiter {
    /// `burst` requests at once, refilled at `per_minute`; `None` when `per_minute` is 0 (off).
    pub fn new(per_minute: u32, burst: u32) -> Option<Self> {
        Self::with_capacity(per_minute, burst, MAX_TRACKED_ADDRESSES)
    }

    fn with_capacity(per_minute: u32, burst: u32, max_tracked: usize) -> Option<Self> {
        (per_minute > 0 && burst > 0).then(|| Self {
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst),
            max_tracked,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request from `ip`'s bucket, or says how long until one is available.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = address_key(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.max_tracked {
            self.drop_full(&mut buckets, now);
            if buckets.len() >= self.max_tracked {
                tracing::warn!(
                    tracked = buckets.len(),
                    "rate-limit table full: refusing a new address"
                );
                return Err(Duration::from_secs(60));
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    /// Forgets addresses whose bucket has refilled completely (they behave as new ones).
    pub fn purge(&self, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        self.drop_full(&mut buckets, now);
    }

    fn drop_full(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * self.per_second < self.burst
        });
    }

    fn tracked(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

/// Open login transactions per address.
#[derive(Debug)]
pub struct LoginSlots {
    max: usize,
    ttl: Duration,
    open: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

impl LoginSlots {
    /// `max` open per address, each held `ttl`; `None` when `max` is 0 (off).
    pub fn new(max: u32, ttl: Duration) -> Option<Self> {
        (max > 0).then(|| Self {
            max: usize::try_from(max).unwrap_or(usize::MAX),
            ttl,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `ip`, or says when the oldest one frees up.
    pub fn try_take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if !open.contains_key(&key) && open.len() >= MAX_TRACKED_ADDRESSES {
            open.retain(|_, until| {
                until.retain(|u| *u > now);
                !until.is_empty()
            });
            if open.len() >= MAX_TRACKED_ADDRESSES {
                return Err(self.ttl);
            }
        }
        let slots = open.entry(key).or_default();
        slots.retain(|until| *until > now);
        if slots.len() >= self.max {
            let oldest = slots.iter().min().copied().unwrap_or(now + self.ttl);
            return Err(oldest.saturating_duration_since(now));
        }
        slots.push(now + self.ttl);
        Ok(())
    }

    /// Gives back the slot most recently taken for `ip` (the handler started no login).
    pub fn give_back(&self, ip: IpAddr) {
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slots) = open.get_mut(&key) {
            slots.pop();
            if slots.is_empty() {
                open.remove(&key);
            }
        }
    }

    /// Forgets expired slots.
    pub fn purge(&self, now: Instant) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, until| {
            until.retain(|u| *u > now);
            !until.is_empty()
        });
    }
}

/// The limited endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Authorize,
    Login,
    Register,
    Token,
}

impl Limited {
    /// The endpoint a request path names, if it is limited.
    pub fn of_path(path: &str) -> Option<Self> {
        match path {
            "/authorize" => Some(Self::Authorize),
            // The upstream sign-in's start and callback count as sign-in requests.
            "/login" => Some(Self::Login),
            p if p.starts_with("/login/upstream/") || p.starts_with("/login/callback/") => {
                Some(Self::Login)
            }
            "/register" => Some(Self::Register),
            "/token" => Some(Self::Token),
            _ => None,
        }
    }

    /// Browser endpoints answer with pages, API endpoints with OAuth JSON.
    fn is_browser(self) -> bool {
        matches!(self, Self::Authorize | Self::Login)
    }
}

/// Every per-address limit of one server.
#[derive(Debug)]
pub struct RateLimits {
    authorize: Option<AddressLimiter>,
    login: Option<AddressLimiter>,
    register: Option<AddressLimiter>,
    token: Option<AddressLimiter>,
    login_slots: Option<LoginSlots>,
}

impl RateLimits {
    /// From `[limits]`; login slots live as long as a login transaction (`login.transaction_ttl`).
    pub fn new(l: &LimitsSettings, login_ttl: Duration) -> Self {
        let rate = |per_minute, burst| {
            l.rate_limits
                .then(|| AddressLimiter::new(per_minute, burst))
                .flatten()
        };
        Self {
            authorize: rate(l.authorize_per_minute, l.authorize_burst),
            login: rate(l.login_per_minute, l.login_burst),
            register: rate(l.register_per_minute, l.register_burst),
            token: rate(l.token_per_minute, l.token_burst),
            login_slots: LoginSlots::new(l.max_open_logins_per_address, login_ttl),
        }
    }

    fn limiter(&self, endpoint: Limited) -> Option<&AddressLimiter> {
        match endpoint {
            Limited::Authorize => self.authorize.as_ref(),
            Limited::Login => self.login.as_ref(),
            Limited::Register => self.register.as_ref(),
            Limited::Token => self.token.as_ref(),
        }
    }

    /// Drops idle buckets and expired login slots (called by the purge loop).
    pub fn purge(&self) {
        let now = Instant::now();
        for l in [&self.authorize, &self.login, &self.register, &self.token]
            .into_iter()
            .flatten()
        {
            l.purge(now);
        }
        if let Some(slots) = &self.login_slots {
            slots.purge(now);
        }
    }

    /// Addresses tracked by all limiters (for tests and logs).
    pub fn tracked(&self) -> usize {
        [&self.authorize, &self.login, &self.register, &self.token]
            .into_iter()
            .flatten()
            .map(AddressLimiter::tracked)
            .sum()
    }
}

/// Middleware over the whole router: applies the limits of the endpoint the path names.
pub async fn limit_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(endpoint) = Limited::of_path(req.uri().path()) else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let ClientAddr(ip) = match ClientAddr::from_request_parts(&mut parts, &state).await {
        Ok(addr) => addr,
        Err(never) => match never {},
    };
    let req = Request::from_parts(parts, body);
    let now = Instant::now();
    let limits = &state.rate_limits;
    if let Some(limiter) = limits.limiter(endpoint)
        && let Err(wait) = limiter.check(ip, now)
    {
        tracing::info!(client = %ip, endpoint = ?endpoint, "request rate limit reached");
        return too_many(
            &state,
            endpoint,
            wait,
            "Too many requests from your network address.",
        );
    }
    let Some(slots) = limits
        .login_slots
        .as_ref()
        .filter(|_| endpoint == Limited::Authorize)
    else {
        return next.run(req).await;
    };
    if let Err(wait) = slots.try_take(ip, now) {
        tracing::info!(client = %ip, "open login transactions limit reached");
        return too_many(
            &state,
            endpoint,
            wait,
            "Too many sign-ins are open from your network address. Finish or abandon one, or \
             try again later.",
        );
    }
    let resp = next.run(req).await;
    if !started_login(&resp) {
        slots.give_back(ip);
    }
    resp
}

/// True when `/authorize` answered by sending the browser to a new login transaction.
fn started_login(resp: &Response) -> bool {
    resp.status() == StatusCode::FOUND
        && resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.starts_with("/login?"))
}

/// The 429 answer in the endpoint's own format.
fn too_many(state: &AppState, endpoint: Limited, wait: Duration, message: &str) -> Response {
    let secs = retry_after_secs(wait);
    let mut resp = if endpoint.is_browser() {
        state.pages.error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &format!("{message} Please wait {secs} seconds."),
        )
    } else {
        OAuthError::new(
            ErrorCode::SlowDown,
            format!("too many requests from this address; retry after {secs} seconds"),
        )
        .into_response()
    };
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let l = AddressLimiter::new(60, 3).unwrap();
        let t = Instant::now();
        let a = ip("198.51.100.1");
        for _ in 0..3 {
            assert!(l.check(a, t).is_ok());
        }
        let wait = l.check(a, t).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another address has its own bucket.
        assert!(l.check(ip("198.51.100.2"), t).is_ok());
        // One per second comes back, never more than the burst.
        assert!(l.check(a, t + Duration::from_millis(1000)).is_ok());
        assert!(l.check(a, t + Duration::from_millis(1000)).is_err());
        let later = t + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(l.check(a, later).is_ok());
        }
        assert!(l.check(a, later).is_err());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let l = AddressLimiter::new(60, 2).unwrap();
        let t = Instant::now();
        assert!(l.check(ip("2001:db8:1:2::1"), t).is_ok());
        assert!(l.check(ip("2001:db8:1:2:ffff::9"), t).is_ok());
        assert!(l.check(ip("2001:db8:1:2::3"), t).is_err(), "same /64");
        assert!(l.check(ip("2001:db8:1:3::1"), t).is_ok(), "another /64");
        assert_eq!(
            address_key(ip("::ffff:198.51.100.7")),
            ip("198.51.100.7"),
            "mapped IPv4 is IPv4"
        );
    }

    #[test]
    fn zero_switches_a_limit_off() {
        assert!(AddressLimiter::new(0, 10).is_none());
        assert!(LoginSlots::new(0, Duration::from_secs(1)).is_none());
    }

    #[test]
    fn idle_buckets_are_purged_and_a_full_table_fails_closed() {
        let l = AddressLimiter::with_capacity(60, 2, 2).unwrap();
        let t = Instant::now();
        assert!(l.check(ip("198.51.100.1"), t).is_ok());
        assert!(l.check(ip("198.51.100.2"), t).is_ok());
        // Full, nothing refilled yet: a third address is refused.
        assert!(l.check(ip("198.51.100.3"), t).is_err());
        // Known addresses still work.
        assert!(l.check(ip("198.51.100.1"), t).is_ok());
        // After a second, 198.51.100.2's bucket is full again and makes room.
        let t1 = t + Duration::from_millis(1100);
        assert!(l.check(ip("198.51.100.3"), t1).is_ok());
        assert_eq!(l.tracked(), 2);
        l.purge(t + Duration::from_secs(10));
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn login_slots_are_held_until_they_expire_or_are_given_back() {
        let s = LoginSlots::new(2, Duration::from_secs(600)).unwrap();
        let t = Instant::now();
        let a = ip("198.51.100.1");
        assert!(s.try_take(a, t).is_ok());
        assert!(s.try_take(a, t + Duration::from_secs(1)).is_ok());
        let wait = s.try_take(a, t + Duration::from_secs(2)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(598), "until the oldest expires");
        assert!(s.try_take(ip("198.51.100.2"), t).is_ok());
        s.give_back(a);
        assert!(s.try_take(a, t + Duration::from_secs(2)).is_ok());
        assert!(
            s.try_take(a, t + Duration::from_secs(600)).is_ok(),
            "oldest expired"
        );
        s.purge(t + Duration::from_secs(10_000));
        assert!(s.open.lock().unwrap().is_empty());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn only_the_four_endpoints_are_limited() {
        assert_eq!(Limited::of_path("/token"), Some(Limited::Token));
        assert_eq!(Limited::of_path("/register"), Some(Limited::Register));
        assert_eq!(Limited::of_path("/login"), Some(Limited::Login));
        assert_eq!(
            Limited::of_path("/login/callback/oidc"),
            Some(Limited::Login)
        );
        assert_eq!(
            Limited::of_path("/login/upstream/oidc"),
            Some(Limited::Login)
        );
        assert_eq!(Limited::of_path("/authorize"), Some(Limited::Authorize));
        assert_eq!(Limited::of_path("/consent"), None);
        assert_eq!(Limited::of_path("/jwks.json"), None);
        assert!(Limited::Login.is_browser() && !Limited::Token.is_browser());
    }
}
