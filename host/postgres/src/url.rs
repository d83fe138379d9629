//! The database's address: a `postgres://` URL whose password is never printed.

use std::fmt;

use crate::PgError;

/// Where the cluster's database is, from `[storage] url` or `WARDEN_DATABASE_URL`.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    redacted: String,
}

impl DatabaseUrl {
    /// Parses `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE?…`, also
    /// `postgresql://`).
    pub fn parse(url: &str) -> Result<Self, PgError> {
        let redacted = redact(url);
        let bad = |reason: String| PgError::BadUrl {
            url: redacted.clone(),
            reason,
        };
        let parsed = ::url::Url::parse(url).map_err(|err| bad(err.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(bad(format!(
                "the scheme is {:?}, not postgres",
                parsed.scheme()
            )));
        }
        url.parse::<postgres::Config>()
            .map_err(|err| bad(err.to_string()))?;
        Ok(Self {
            url: url.to_string(),
            redacted,
        })
    }

    /// The client's configuration, with a connect timeout unless the URL sets one.
    pub fn config(&self) -> postgres::Config {
        // Checked in `parse`.
        let mut config: postgres::Config = self.url.parse().unwrap_or_default();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("warden");
        }
        config
    }

    /// The URL as given (with its password): for a child process's environment only.
    pub fn secret(&self) -> &str {
        &self.url
    }

    /// The URL with its password hidden.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// A connection outside the pool (the audit writer keeps one of its own). It may
    /// be made from a task ([`crate::off_runtime`]); use it, and drop it, outside of
    /// one, or through [`crate::off_runtime`].
    pub fn connect(&self) -> Result<postgres::Client, PgError> {
        let config = self.config();
        crate::off_runtime(|| config.connect(postgres::NoTls)).map_err(|error| PgError::Connect {
            url: self.redacted.clone(),
            error,
        })
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted)
    }
}

/// `url` with the password of its user info, and any `password=` parameter, as `***`.
fn redact(url: &str) -> String {
    let mut out = match ::url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        // Not a URL: keep what precedes an `@` out of sight.
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    };
    if let Some(at) = out.find("password=") {
        let end = out[at..].find('&').map_or(out.len(), |e| at + e);
        out.replace_range(at + "password=".len()..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        let url = DatabaseUrl::parse("postgres://warden:s3cret@db.internal:5432/warden").unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://warden:***@db.internal:5432/warden"
        );
        assert!(!format!("{url} {url:?}").contains("s3cret"));
        let url = DatabaseUrl::parse("postgres://w@h/d?password=s3cret&sslmode=disable").unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://w@h/d?password=***&sslmode=disable"
        );
    }

    #[test]
    fn other_schemes_are_refused_by_name() {
        let err = DatabaseUrl::parse("mysql://u:s3cret@h/d")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not postgres"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = DatabaseUrl::parse("not a url").err().unwrap().to_string();
        assert!(err.contains("postgres://USER:PASSWORD@HOST"), "{err}");
    }
}
