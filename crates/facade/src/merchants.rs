//! The merchant directory: who may call the API and under which rules, read from a TOML file
//! (`[[merchants]]` tables) and validated into a typed [`Merchants`] before anything serves, so
//! that a bad file is one clear error at start.
//!
//! Owns the file's shape, its defaults and its rules (a PHC argon2id hash, at most two RSA keys,
//! the integrity the merchant requires, known service names, limits, calendar). Must never put a
//! password hash, a salt or a key into an error or a `Debug` line: errors name the merchant and
//! the field, never the value.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use assist::integrity::{MerchantKey, OrderIntegrity};
use assist::requests::Service;
use assist::values::{Amount, Currency, Language, Login, MerchantId, ParamValue, Url};
use serde::Deserialize;
use time::{Duration, Time, UtcOffset};

/// Why the merchant file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MerchantsError {
    /// The file could not be read.
    #[error("cannot read merchants file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape (unknown keys are refused).
    #[error("merchants file {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Where and why.
        source: toml::de::Error,
    },
    /// A merchant's entry breaks a rule; names the merchant and the field.
    #[error("merchant {merchant}: {field}: {why}")]
    Invalid {
        /// Its id as written.
        merchant: String,
        /// The field.
        field: &'static str,
        /// The rule.
        why: String,
    },
}

/// The file as written (no `Debug`: it holds hashes and salts).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    merchants: Vec<RawMerchant>,
}

/// One `[[merchants]]` table; every field after the credentials has a default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMerchant {
    id: String,
    name: String,
    login: String,
    password_hash: String,
    checkvalue_salt: String,
    #[serde(default)]
    integrity: RawIntegrity,
    #[serde(default)]
    public_keys: Vec<String>,
    #[serde(default)]
    one_click: bool,
    #[serde(default)]
    mit: bool,
    customer_list: Option<String>,
    #[serde(default = "one")]
    listing_threshold: u32,
    #[serde(default = "rub")]
    currency: String,
    daily_limit: Option<String>,
    weekly_limit: Option<String>,
    #[serde(default = "midnight")]
    cut_off: String,
    #[serde(default = "seven")]
    auto_cancel_days: u16,
    #[serde(default = "a_day")]
    order_lifetime_minutes: u32,
    #[serde(default = "moscow")]
    time_zone: String,
    notification_url: Option<String>,
    url_return_ok: Option<String>,
    url_return_no: Option<String>,
    #[serde(default = "payments")]
    notify: Vec<String>,
    #[serde(default)]
    notify_only_successful: bool,
    #[serde(default)]
    test_mode: bool,
    #[serde(default)]
    disabled_services: Vec<String>,
    #[serde(default = "ru")]
    language: String,
    #[serde(default)]
    frame_ancestors: Vec<String>,
}

fn one() -> u32 {
    1
}
fn rub() -> String {
    "RUB".into()
}
fn ru() -> String {
    "RU".into()
}
fn midnight() -> String {
    "00:00".into()
}
fn seven() -> u16 {
    7
}
fn a_day() -> u32 {
    24 * 60
}
fn moscow() -> String {
    "+03:00".into()
}
fn payments() -> Vec<String> {
    vec!["payments".into()]
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawIntegrity {
    #[default]
    Checkvalue,
    Signature,
}

/// A customer's turnover limits in the merchant's currency, minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnoverLimits {
    /// Most per day (the merchant's calendar day).
    pub daily: Option<u64>,
    /// Most per week, Monday to Sunday.
    pub weekly: Option<u64>,
}

/// A merchant as the API knows it.
pub struct Merchant {
    /// Merchant_ID.
    pub id: MerchantId,
    /// The same id as the vault and the engine name it.
    pub vault_id: card::MerchantId,
    /// Shown in logs and the cabinet.
    pub name: String,
    /// The API user's login.
    pub login: Login,
    /// argon2id PHC string of the API user's password; only [`crate::auth`] reads it.
    password_hash: String,
    /// What an order must carry (checkvalue with the salt, or a signature by one of the keys).
    pub integrity: OrderIntegrity,
    /// One Click (token.cfm, rem_token.cfm, tokenpay.cfm and saved cards on the pages).
    pub one_click: bool,
    /// Card-on-file MIT: `RecurringIndicator=1` without bounds.
    pub mit: bool,
    /// The shared customer list this merchant belongs to (the vault's union of the same name).
    pub customer_list: Option<String>,
    /// Successful payments before a saved card is listed (the vault applies it; kept here so the
    /// two files can be compared).
    pub listing_threshold: u32,
    /// The default currency of its orders.
    pub currency: Currency,
    /// Per-customer turnover limits.
    pub limits: TurnoverLimits,
    /// Daily settlement cut-off, in its time zone.
    pub cut_off: Time,
    /// A Delayed order not charged within this is reversed.
    pub auto_cancel_after: Duration,
    /// An unpaid order expires after this.
    pub order_lifetime: Duration,
    /// Its time zone as a fixed offset (Moscow has had no daylight saving since 2014).
    pub time_zone: UtcOffset,
    /// Where result notifications go.
    pub notification_url: Option<Url>,
    /// Where the shopper returns after a successful payment when the order names no URL (the
    /// cabinet's settings may replace it).
    pub url_return_ok: Option<Url>,
    /// Where the shopper returns after a failed payment when the order names no URL.
    pub url_return_no: Option<Url>,
    /// Which results are notified (read by the engine when an operation ends; without a URL,
    /// none is).
    pub notify: orders::Notifications,
    /// Test mode: never reaches the live network.
    pub test_mode: bool,
    /// The payment pages' language when an order does not name one.
    pub language: Language,
    /// Origins allowed to frame the payment pages (CSP `frame-ancestors`); empty: none may.
    pub frame_ancestors: Vec<String>,
    disabled: Vec<Service>,
}

impl fmt::Debug for Merchant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Merchant")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("login", &self.login.as_str())
            .finish_non_exhaustive()
    }
}

impl Merchant {
    /// The stored argon2id hash (PHC string).
    pub(crate) fn password_hash(&self) -> &str {
        &self.password_hash
    }

    /// Whether this merchant may call a service: One Click services need `one_click`, and any
    /// service may be switched off by name.
    pub fn allows(&self, service: Service) -> bool {
        let one_click = matches!(
            service,
            Service::TokenList | Service::TokenRemove | Service::TokenPay
        );
        (self.one_click || !one_click) && !self.disabled.contains(&service)
    }

    /// The order engine's view of this merchant: its calendar (zone, cut-off), periods, MIT
    /// switch, turnover limits in its own currency and shared customer list.
    pub fn settings(&self) -> orders::MerchantSettings {
        let currency = link::Currency::new(self.currency.numeric()).unwrap_or(link::Currency::RUB);
        let limits = (self.limits.daily.is_some() || self.limits.weekly.is_some()).then_some(
            orders::TurnoverLimits {
                currency,
                daily: self.limits.daily,
                weekly: self.limits.weekly,
            },
        );
        orders::MerchantSettings {
            utc_offset: self.time_zone,
            cutoff: self.cut_off,
            auto_cancel_after: self.auto_cancel_after,
            order_lifetime: self.order_lifetime,
            mit_allowed: self.mit,
            limits,
            customer_list: self.customer_list.clone(),
            notifications: self.notification_url.is_some().then_some(self.notify),
            ..orders::MerchantSettings::new(self.vault_id.clone())
        }
    }
}

/// The short name of a service in the file: its path's file name without `.cfm`
/// (`order`, `payrequest`, `tokenpay`, `rp`, `charge`, `cancel`, `wscancel`, `orderstate`,
/// `orderresult`, `token`, `rem_token`).
pub fn service_name(service: Service) -> &'static str {
    let file = service.path().rsplit('/').next().unwrap_or_default();
    file.strip_suffix(".cfm").unwrap_or(file)
}

/// Every merchant, by Merchant_ID.
#[derive(Debug, Default)]
pub struct Merchants {
    by_id: HashMap<MerchantId, Merchant>,
}

impl Merchants {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Merchants, MerchantsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MerchantsError::Read {
            path: shown.clone(),
            source,
        })?;
        Merchants::parse(&text, &shown)
    }

    /// Validates file text; `path` only names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Merchants, MerchantsError> {
        let raw: RawFile = toml::from_str(text).map_err(|source| MerchantsError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let mut by_id = HashMap::new();
        for m in raw.merchants {
            let shown = m.id.clone();
            let merchant = m.validate()?;
            if by_id.values().any(|m: &Merchant| m.login == merchant.login) {
                return Err(invalid(&shown, "login", "used by another merchant"));
            }
            if by_id.insert(merchant.id, merchant).is_some() {
                return Err(invalid(&shown, "id", "listed twice"));
            }
        }
        Ok(Merchants { by_id })
    }

    /// The merchant with this id.
    pub fn get(&self, id: MerchantId) -> Option<&Merchant> {
        self.by_id.get(&id)
    }

    /// The merchant whose API login this is (the cabinet's login form names no Merchant_ID).
    pub fn by_login(&self, login: &Login) -> Option<&Merchant> {
        self.by_id.values().find(|m| &m.login == login)
    }

    /// The merchant the engine and the vault name `id`.
    pub fn by_vault_id(&self, id: &card::MerchantId) -> Option<&Merchant> {
        self.get(MerchantId(id.as_str().parse().ok()?))
    }

    /// How many merchants there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

fn invalid(merchant: &str, field: &'static str, why: impl Into<String>) -> MerchantsError {
    MerchantsError::Invalid {
        merchant: merchant.to_owned(),
        field,
        why: why.into(),
    }
}

impl RawMerchant {
    fn validate(self) -> Result<Merchant, MerchantsError> {
        let who = self.id.clone();
        let bad = |field, why: &str| invalid(&who, field, why);
        let id: MerchantId = value(&who, "id", &self.id)?;
        let vault_id = card::MerchantId::parse(&self.id).map_err(|e| bad("id", &e.to_string()))?;
        let login: Login = value(&who, "login", &self.login)?;
        check_phc(&self.password_hash).map_err(|why| bad("password_hash", why))?;
        if self.checkvalue_salt.is_empty() {
            return Err(bad("checkvalue_salt", "must not be empty"));
        }
        if self.public_keys.len() > 2 {
            return Err(bad("public_keys", "at most two (the current and the next)"));
        }
        let keys = self
            .public_keys
            .iter()
            .map(|pem| MerchantKey::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("public_keys", &e.to_string()))?;
        let integrity = match self.integrity {
            RawIntegrity::Checkvalue => OrderIntegrity::Checkvalue {
                salt: self.checkvalue_salt,
            },
            RawIntegrity::Signature if keys.is_empty() => {
                return Err(bad("public_keys", "integrity = \"signature\" needs a key"));
            }
            RawIntegrity::Signature => OrderIntegrity::Signature { keys },
        };
        if let Some(list) = &self.customer_list {
            vault::Scope::union(list).map_err(|e| bad("customer_list", &e.to_string()))?;
        }
        let currency: Currency = value(&who, "currency", &self.currency)?;
        let limit = |field, text: &Option<String>| -> Result<Option<u64>, MerchantsError> {
            text.as_deref()
                .map(|t| value(&who, field, t).map(|a: Amount| a.minor()))
                .transpose()
        };
        let limits = TurnoverLimits {
            daily: limit("daily_limit", &self.daily_limit)?,
            weekly: limit("weekly_limit", &self.weekly_limit)?,
        };
        let cut_off = parse_hh_mm(&self.cut_off).ok_or_else(|| bad("cut_off", "must be HH:MM"))?;
        if !(1..=30).contains(&self.auto_cancel_days) {
            return Err(bad("auto_cancel_days", "must be 1 to 30"));
        }
        if self.order_lifetime_minutes == 0 {
            return Err(bad("order_lifetime_minutes", "must be above 0"));
        }
        let time_zone = parse_offset(&self.time_zone)
            .ok_or_else(|| bad("time_zone", "must be a UTC offset such as +03:00"))?;
        let notification_url = self
            .notification_url
            .as_deref()
            .map(|u| value(&who, "notification_url", u))
            .transpose()?;
        let url =
            |field, u: &Option<String>| u.as_deref().map(|u| value(&who, field, u)).transpose();
        let url_return_ok = url("url_return_ok", &self.url_return_ok)?;
        let url_return_no = url("url_return_no", &self.url_return_no)?;
        let mut notify = orders::Notifications {
            payments: false,
            charges: false,
            cancels: false,
            timeouts: false,
            only_successful: self.notify_only_successful,
        };
        for result in &self.notify {
            let switch = match result.as_str() {
                "payments" => &mut notify.payments,
                "charges" => &mut notify.charges,
                "cancels" => &mut notify.cancels,
                "timeouts" => &mut notify.timeouts,
                _ => {
                    return Err(bad(
                        "notify",
                        "each must be payments, charges, cancels or timeouts",
                    ));
                }
            };
            *switch = true;
        }
        let disabled = self
            .disabled_services
            .iter()
            .map(|name| {
                Service::ALL
                    .into_iter()
                    .find(|s| service_name(*s) == name)
                    .ok_or_else(|| bad("disabled_services", "unknown service name"))
            })
            .collect::<Result<_, _>>()?;
        let language: Language = value(&who, "language", &self.language)?;
        if let Some(bad_origin) = self.frame_ancestors.iter().find(|o| !is_frame_source(o)) {
            return Err(bad(
                "frame_ancestors",
                if bad_origin.is_empty() {
                    "an origin must not be empty"
                } else {
                    "each must be 'self' or an http(s) origin without path, space or ';'"
                },
            ));
        }
        Ok(Merchant {
            id,
            vault_id,
            name: self.name,
            login,
            password_hash: self.password_hash,
            integrity,
            one_click: self.one_click,
            mit: self.mit,
            customer_list: self.customer_list,
            listing_threshold: self.listing_threshold,
            currency,
            limits,
            cut_off,
            auto_cancel_after: Duration::days(i64::from(self.auto_cancel_days)),
            order_lifetime: Duration::minutes(i64::from(self.order_lifetime_minutes)),
            time_zone,
            notification_url,
            url_return_ok,
            url_return_no,
            notify,
            test_mode: self.test_mode,
            language,
            frame_ancestors: self.frame_ancestors,
            disabled,
        })
    }
}

/// A CSP source a merchant may name in `frame-ancestors`: `'self'` or a scheme and host (with an
/// optional port), so that nothing it writes can end the directive or add another.
fn is_frame_source(s: &str) -> bool {
    if s == "'self'" {
        return true;
    }
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'*'))
}

/// A value checked by the same rule as the API's parameter of that type.
fn value<T: ParamValue>(who: &str, field: &'static str, text: &str) -> Result<T, MerchantsError> {
    T::parse(text).map_err(|e| invalid(who, field, e.why))
}

/// An argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
fn check_phc(phc: &str) -> Result<(), &'static str> {
    let parsed = argon2::PasswordHash::new(phc).map_err(|_| "not a PHC string")?;
    if parsed.algorithm != argon2::Algorithm::Argon2id.ident() || parsed.hash.is_none() {
        return Err("must be an argon2id hash (authorizer hash-password makes one)");
    }
    Ok(())
}

fn two_digits(s: &str, max: u8) -> Option<u8> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
        .filter(|n| *n <= max)
}

fn parse_hh_mm(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    Time::from_hms(two_digits(h, 23)?, two_digits(m, 59)?, 0).ok()
}

fn parse_offset(s: &str) -> Option<UtcOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m) = (two_digits(h, 14)?, two_digits(m, 59)?);
    UtcOffset::from_hms(sign * h as i8, sign * m as i8, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: &str = include_str!("../../../config/merchants.dev.toml");

    #[test]
    fn the_dev_file_holds_the_two_dev_merchants() {
        let m = Merchants::parse(DEV, "dev").unwrap();
        assert_eq!(m.len(), 2);
        let first = m.get(MerchantId(452739)).unwrap();
        assert_eq!(first.login.as_str(), "demo_login");
        assert!(first.one_click && first.mit && !first.test_mode);
        assert_eq!(first.listing_threshold, 1);
        assert_eq!(first.time_zone, UtcOffset::from_hms(3, 0, 0).unwrap());
        let second = m.get(MerchantId(452740)).unwrap();
        assert_eq!(second.login.as_str(), "demo_login2");
        assert_eq!(first.customer_list, second.customer_list);
        assert!(
            matches!(&second.integrity, OrderIntegrity::Checkvalue { salt } if salt == "demosalt2")
        );
        assert!(
            !format!("{first:?}").contains("argon2"),
            "Debug hides the hash"
        );
    }

    fn one(extra: &str) -> Result<Merchants, MerchantsError> {
        let hash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$0m1jCTGqeKwl7TbbszBs1A";
        Merchants::parse(
            &format!(
                "[[merchants]]\nid = \"1\"\nname = \"n\"\nlogin = \"login_one\"\n\
                 password_hash = \"{hash}\"\ncheckvalue_salt = \"s\"\n{extra}"
            ),
            "t",
        )
    }

    #[test]
    fn defaults_and_switches() {
        let m = one("disabled_services = [\"orderresult\"]\ndaily_limit = \"100.50\"\n").unwrap();
        let m = m.get(MerchantId(1)).unwrap();
        assert!(!m.allows(Service::TokenList), "One Click is off by default");
        assert!(!m.allows(Service::OrderResult));
        assert!(m.allows(Service::OrderState));
        assert_eq!(m.limits.daily, Some(10050));
        assert_eq!(m.cut_off, Time::MIDNIGHT);
        assert_eq!(m.order_lifetime, Duration::days(1));
        assert_eq!(service_name(Service::TokenRemove), "rem_token");
        assert_eq!(service_name(Service::Recurrent), "rp");
    }

    #[test]
    fn each_rule_is_one_error_naming_merchant_and_field() {
        for (extra, field) in [
            ("integrity = \"signature\"\n", "public_keys"),
            ("public_keys = [\"x\"]\n", "public_keys"),
            ("cut_off = \"25:00\"\n", "cut_off"),
            ("time_zone = \"Moscow\"\n", "time_zone"),
            ("currency = \"XXX\"\n", "currency"),
            ("daily_limit = \"1.234\"\n", "daily_limit"),
            ("disabled_services = [\"nope\"]\n", "disabled_services"),
            ("notification_url = \"ftp://x\"\n", "notification_url"),
            ("url_return_ok = \"javascript:x\"\n", "url_return_ok"),
            ("notify = [\"refunds\"]\n", "notify"),
            ("customer_list = \"a b\"\n", "customer_list"),
            ("language = \"DE\"\n", "language"),
            (
                "frame_ancestors = [\"https://shop.test; script-src *\"]\n",
                "frame_ancestors",
            ),
        ] {
            let err = one(extra).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("merchant 1: {field}:")),
                "{extra}: {err}"
            );
        }
        assert!(
            one("colour = 1\n")
                .unwrap_err()
                .to_string()
                .contains("colour")
        );
        let err = Merchants::parse(
            "[[merchants]]\nid = \"1\"\nname = \"n\"\nlogin = \"login_one\"\n\
             password_hash = \"plain-secret\"\ncheckvalue_salt = \"s\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("password_hash") && !err.contains("plain-secret"),
            "{err}"
        );
    }

    #[test]
    fn notifications_follow_the_url_and_the_chosen_results() {
        let none = one("").unwrap();
        let none = none.get(MerchantId(1)).unwrap();
        assert_eq!(
            none.settings().notifications,
            None,
            "no URL, no notification"
        );
        let m = one("notification_url = \"https://shop.example/notify\"\n\
             notify = [\"payments\", \"cancels\"]\nnotify_only_successful = true\n")
        .unwrap();
        let n = m
            .get(MerchantId(1))
            .unwrap()
            .settings()
            .notifications
            .unwrap();
        assert!(n.payments && n.cancels && !n.charges && !n.timeouts && n.only_successful);
    }

    #[test]
    fn offsets_and_times() {
        assert_eq!(parse_offset("-05:30"), UtcOffset::from_hms(-5, -30, 0).ok());
        assert_eq!(parse_offset("+3:00"), None);
        assert_eq!(parse_hh_mm("23:59"), Time::from_hms(23, 59, 0).ok());
        assert_eq!(parse_hh_mm("7:00"), None);
    }
}
