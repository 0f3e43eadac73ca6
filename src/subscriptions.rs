//! `calscan webhooks subscribe|list|delete`: the organization's Calendly
//! webhook subscriptions, and the signing keys calscan keeps for them.
//!
//! `subscribe` generates the signing key, hands it to Calendly with the new
//! subscription and stores it in the database, where the server's webhook
//! route finds it. The key is never printed or logged: only Calendly and the
//! database know it.

use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use rand::RngExt;
use secrecy::SecretString;
use serde::Serialize;
use url::Url;

use crate::calendly::model::{WebhookSubscription, last_segment};
use crate::calendly::{CalendlyClient, CalendlyError};
use crate::config::{DeleteHookArgs, HookTarget, ListHooksArgs, SubscribeArgs, WebhooksCommand};
use crate::store::{Store, WebhookSubscriptionRow};

/// The route Calendly posts to, added to a bare address given to `--url`.
pub const WEBHOOK_PATH: &str = "/webhooks/calendly";

/// Runs one `calscan webhooks` command.
pub async fn run(command: WebhooksCommand) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Subscribe(args) => subscribe(args).await,
        WebhooksCommand::List(args) => list(args).await,
        WebhooksCommand::Delete(args) => delete(args).await,
    }
}

/// The database and a client for the configured organization.
struct Target {
    store: Arc<dyn Store>,
    client: CalendlyClient,
    organization: String,
}

impl Target {
    async fn open(target: HookTarget) -> anyhow::Result<Self> {
        let store =
            crate::store::connect_with(&target.database.database_url, &target.database.customers())
                .await
                .context("cannot open the database")?;
        let settings = target
            .calendly
            .client_settings()
            .ok_or(CalendlyError::NotConfigured)?;
        let client = CalendlyClient::new(settings)?;
        let organization = client
            .organization(target.calendly.calendly_org_uri.as_deref())
            .await
            .map_err(explain)?;
        Ok(Self {
            store,
            client,
            organization,
        })
    }
}

async fn subscribe(args: SubscribeArgs) -> anyhow::Result<()> {
    let callback = callback_url(args.url);
    let target = Target::open(args.target).await?;
    let key = signing_key();
    let created = target
        .client
        .create_webhook_subscription(&target.organization, callback.as_str(), &args.events, &key)
        .await
        .map_err(|e| match e {
            CalendlyError::Rejected { status: 409, .. } => anyhow::anyhow!(
                "Calendly already has a subscription for {callback}: `calscan webhooks list` \
                 shows it, `calscan webhooks delete ID` removes it, then subscribe again"
            ),
            other => explain(other),
        })?;
    let row = WebhookSubscriptionRow {
        uri: created.uri.clone(),
        callback_url: created.callback_url.clone(),
        signing_key: key,
        created_at: created.created_at.unwrap_or_else(chrono::Utc::now),
    };
    if let Err(e) = target.store.save_webhook_subscription(&row).await {
        // A subscription whose key nobody keeps would only fail deliveries.
        let undone = target
            .client
            .delete_webhook_subscription(created.uuid())
            .await;
        let what = match undone {
            Ok(()) => "the subscription was deleted again".to_owned(),
            Err(undo) => format!(
                "deleting the subscription failed too ({undo}): run `calscan webhooks delete {}`",
                created.uuid()
            ),
        };
        anyhow::bail!("cannot store the signing key: {e}; {what}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&Listed::new(&created, true))?);
    } else {
        println!(
            "Subscribed {} to {} of {}",
            created.callback_url,
            created.events.join(", "),
            target.organization
        );
        println!("  id: {}", created.uuid());
        println!(
            "  The signing key is stored in the database and verifies every delivery; \
             it is not shown."
        );
    }
    Ok(())
}

async fn list(args: ListHooksArgs) -> anyhow::Result<()> {
    let target = Target::open(args.target).await?;
    let at_calendly = target
        .client
        .webhook_subscriptions(&target.organization)
        .await
        .map_err(explain)?;
    let stored = target.store.webhook_subscriptions().await?;
    let holds_key = |uri: &str| stored.iter().any(|s| s.uri == uri);
    let listed: Vec<Listed> = at_calendly
        .iter()
        .map(|s| Listed::new(s, holds_key(&s.uri)))
        .collect();
    // Keys kept for subscriptions Calendly no longer has.
    let orphans: Vec<&WebhookSubscriptionRow> = stored
        .iter()
        .filter(|s| !at_calendly.iter().any(|c| c.uri == s.uri))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string(&listed)?);
        return Ok(());
    }
    if listed.is_empty() {
        println!("No webhook subscriptions for {}", target.organization);
    }
    for s in &listed {
        println!(
            "{}  {:<8}  {}  {}  {}",
            s.id,
            s.state,
            s.callback_url,
            s.events.join(","),
            if s.key_stored {
                "key stored"
            } else {
                "key not held by calscan"
            }
        );
    }
    for orphan in orphans {
        println!(
            "{}  gone at Calendly; its stored key is unused: `calscan webhooks delete {}` forgets it",
            last_segment(&orphan.uri),
            last_segment(&orphan.uri)
        );
    }
    Ok(())
}

async fn delete(args: DeleteHookArgs) -> anyhow::Result<()> {
    let id = last_segment(args.id.trim()).to_owned();
    let target = Target::open(args.target).await?;
    let stored = target
        .store
        .webhook_subscriptions()
        .await?
        .into_iter()
        .find(|s| last_segment(&s.uri) == id);
    let at_calendly = match target.client.delete_webhook_subscription(&id).await {
        Ok(()) => true,
        Err(CalendlyError::NotFound { .. }) => false,
        Err(other) => return Err(explain(other)),
    };
    let forgot = match &stored {
        Some(row) => target.store.delete_webhook_subscription(&row.uri).await?,
        None => false,
    };
    match (at_calendly, forgot) {
        (true, true) => println!("Deleted subscription {id} and forgot its signing key"),
        (true, false) => println!("Deleted subscription {id}"),
        (false, true) => println!(
            "Calendly has no subscription {id} (any longer); forgot its stored signing key"
        ),
        (false, false) => anyhow::bail!(
            "Calendly has no subscription {id}, and calscan keeps no key for it: \
             `calscan webhooks list` shows the ids"
        ),
    }
    Ok(())
}

/// One subscription as `list --json` and `subscribe --json` print it.
#[derive(Debug, Serialize)]
struct Listed {
    id: String,
    uri: String,
    callback_url: String,
    state: String,
    events: Vec<String>,
    scope: String,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether calscan holds the signing key (it made the subscription).
    key_stored: bool,
}

impl Listed {
    fn new(s: &WebhookSubscription, key_stored: bool) -> Self {
        Self {
            id: s.uuid().to_owned(),
            uri: s.uri.clone(),
            callback_url: s.callback_url.clone(),
            state: s.state.clone(),
            events: s.events.clone(),
            scope: s.scope.clone(),
            created_at: s.created_at,
            key_stored,
        }
    }
}

/// `--url` as given, or with the webhook route added to a bare address.
fn callback_url(mut url: Url) -> Url {
    if url.path() == "/" || url.path().is_empty() {
        url.set_path(WEBHOOK_PATH);
    }
    url
}

/// 32 random bytes, URL-safe base64: a key Calendly accepts as a string.
fn signing_key() -> SecretString {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(bytes)
        .into()
}

/// A Calendly error, with what webhooks in particular need when access was
/// denied.
fn explain(e: CalendlyError) -> anyhow::Error {
    match e {
        CalendlyError::PermissionDenied { title, message } => anyhow::anyhow!(
            "Calendly denied access ({title}: {message}). Webhooks need a paid Calendly plan \
             (Standard or higher), and organization subscriptions a token of an owner or \
             admin: check CALENDLY_TOKEN"
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_gets_the_webhook_route() {
        for (given, used) in [
            (
                "https://calscan.example.com",
                "https://calscan.example.com/webhooks/calendly",
            ),
            (
                "https://calscan.example.com/",
                "https://calscan.example.com/webhooks/calendly",
            ),
            (
                "https://example.com/calscan/webhooks/calendly",
                "https://example.com/calscan/webhooks/calendly",
            ),
        ] {
            assert_eq!(callback_url(given.parse().unwrap()).as_str(), used);
        }
    }

    #[test]
    fn signing_keys_are_long_and_differ() {
        use secrecy::ExposeSecret;
        let (a, b) = (signing_key(), signing_key());
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
