//! The first connection at start: where it goes is said before it is tried,
//! and why it failed is said in one sentence within [`CONNECT_LIMIT`],
//! instead of a pool that retries in silence and then only says it timed out.

use std::path::Path;
use std::time::Duration;

use sqlx::ConnectOptions as _;

use super::{StoreError, StoreResult};

/// How long the first connection may take before the start fails.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// A database server as `DATABASE_URL` names it, without its password.
pub(super) struct Server<'a> {
    /// "PostgreSQL", "MySQL/MariaDB".
    pub backend: &'static str,
    pub host: &'a str,
    pub port: u16,
    /// A Unix socket, which replaces host and port.
    pub socket: Option<&'a Path>,
    pub user: &'a str,
    pub database: Option<&'a str>,
}

impl Server<'_> {
    fn address(&self) -> String {
        match self.socket {
            Some(socket) => format!("socket {}", socket.display()),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// Opens and closes one connection with `options`, or says why it
    /// cannot.
    pub async fn try_connect<C: sqlx::Connection>(&self, options: &C::Options) -> StoreResult<()> {
        let address = self.address();
        tracing::info!("connecting to {} at {address} …", self.backend);
        let refused = |why: String| {
            StoreError::Connect(format!(
                "cannot connect to {} at {address}: {why}",
                self.backend
            ))
        };
        match tokio::time::timeout(CONNECT_LIMIT, options.connect()).await {
            Err(_) => Err(refused(format!(
                "no answer within {} s; check the host and port in DATABASE_URL, and that no \
                 firewall drops the connection",
                CONNECT_LIMIT.as_secs()
            ))),
            Ok(Err(error)) => Err(refused(self.why(&error))),
            Ok(Ok(connection)) => {
                // A failed goodbye does not make the server unusable.
                let _ = sqlx::Connection::close(connection).await;
                Ok(())
            }
        }
    }

    /// The cause, and what to check, in words.
    fn why(&self, error: &sqlx::Error) -> String {
        match error {
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "the connection was refused; is the server running, and on this port?".into()
            }
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                format!("{io}; is the server running, and is the socket path right?")
            }
            sqlx::Error::Io(io) => format!("{io}; check the host in DATABASE_URL"),
            sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
            sqlx::Error::Database(db) => {
                let message = db.message();
                match refusal(db.as_ref()) {
                    Some(Refusal::Login) => format!(
                        "it refused user \"{}\" ({message}); check the user and password in \
                         DATABASE_URL",
                        self.user
                    ),
                    Some(Refusal::NoDatabase) => {
                        let name = self.database.unwrap_or_default();
                        format!(
                            "it has no database \"{name}\" ({message}); create it (CREATE \
                             DATABASE {name}), or name another in DATABASE_URL"
                        )
                    }
                    None => message.to_owned(),
                }
            }
            other => other.to_string(),
        }
    }
}

enum Refusal {
    /// No such user, a wrong password, or no right to the database.
    Login,
    NoDatabase,
}

fn refusal(error: &(dyn sqlx::error::DatabaseError + 'static)) -> Option<Refusal> {
    if let Some(mysql) = error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return match mysql.number() {
            1044 | 1045 | 1698 => Some(Refusal::Login),
            1049 => Some(Refusal::NoDatabase),
            _ => None,
        };
    }
    match error.code()?.as_ref() {
        "28000" | "28P01" => Some(Refusal::Login),
        "3D000" => Some(Refusal::NoDatabase),
        _ => None,
    }
}

/// Says where an SQLite database is, and refuses a file whose folder does
/// not exist: SQLite itself says only "unable to open database file".
pub(super) fn sqlite_file(file: &Path) -> StoreResult<()> {
    if file == Path::new(":memory:") {
        return Ok(());
    }
    tracing::info!("opening SQLite database {}", file.display());
    match file.parent() {
        Some(folder) if !folder.as_os_str().is_empty() && !folder.is_dir() => {
            Err(StoreError::Connect(format!(
                "cannot open SQLite database {}: the folder {} does not exist; create it, or \
                 name another file in DATABASE_URL",
                file.display(),
                folder.display()
            )))
        }
        _ => Ok(()),
    }
}

/// What SQLite said when it could not open `file`, with the file named.
pub(super) fn sqlite_refused(file: &Path, error: sqlx::Error) -> StoreError {
    let cause = match &error {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    StoreError::Connect(format!(
        "cannot open SQLite database {}: {cause}; check that calscan may read and write the \
         file and its folder",
        file.display()
    ))
}
