//! Delivers the outbox: on every node, a worker claims due messages (see
//! `store::outbox::claim`), opens their sealed payloads, sends them (SMTP
//! for email, the signed SMS webhook for SMS; logged in dev mode when
//! neither is configured) and records the outcome: `sent` with the payload
//! erased, a retry with exponential backoff and jitter, or `dead` after
//! the last attempt. A message written on this node wakes the worker at
//! once; others are found by polling.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use identity_shared::config::Config;
use identity_shared::crypto::MasterKey;
use identity_shared::db::{Db, DbError};
use identity_shared::messaging::{SmtpSettings, SmtpTls};
use identity_shared::time::now_ms;
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::store::outbox::{self, Claimed};

/// Messages claimed at once per database.
const BATCH: u64 = 16;
/// How long a claimed message is left to its claimer before it is due
/// again: longer than the slowest delivery (SMTP and webhook timeouts).
pub const LEASE_MS: i64 = 60_000;
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// The deadline of one delivery, however many steps it takes.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
const SMS_TIMEOUT: Duration = Duration::from_secs(10);

pub const EMAIL: &str = "email";
pub const SMS: &str = "sms";

/// What an email message's sealed payload holds.
#[derive(Serialize, Deserialize)]
pub struct EmailPayload {
    pub to: String,
    pub from_name: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// What an SMS message's sealed payload holds (and what the webhook gets).
#[derive(Serialize, Deserialize)]
pub struct SmsPayload {
    pub to: String,
    pub body: String,
}

/// The sealing context of a message's payload: bound to its row.
pub fn payload_context(project_id: &str, id: &str) -> String {
    format!("outbox:{project_id}:{id}")
}

pub struct Outbox {
    wake: Notify,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    http: reqwest::Client,
    config: Arc<Config>,
    master_key: Arc<MasterKey>,
    /// Outcomes per (channel, kind, outcome), since this process started.
    counters: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    /// Set by [`Outbox::drain`]: claim nothing more.
    stopping: std::sync::atomic::AtomicBool,
    /// Held while a claim's deliveries run; [`Outbox::drain`] waits for it.
    busy: tokio::sync::Mutex<()>,
}

impl Outbox {
    pub fn new(config: Arc<Config>, master_key: Arc<MasterKey>) -> Result<Arc<Self>, String> {
        let smtp = config.smtp.as_ref().map(smtp_transport).transpose()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(SMS_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Arc::new(Self {
            wake: Notify::new(),
            smtp,
            http,
            config,
            master_key,
            counters: Mutex::new(BTreeMap::new()),
            stopping: Default::default(),
            busy: tokio::sync::Mutex::new(()),
        }))
    }

    /// Whether email can leave this node (SMTP, or dev mode's log).
    pub fn email_ready(&self) -> bool {
        self.smtp.is_some() || self.config.dev_mode
    }

    /// Whether SMS can leave this node (the webhook, or dev mode's log).
    pub fn sms_ready(&self) -> bool {
        self.config.sms.is_some() || self.config.dev_mode
    }

    /// A message was committed on this node: deliver now, not at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Outcomes counted since start: ((channel, kind, outcome), count),
    /// outcome one of `sent`, `retried`, `dead`.
    pub fn counters(&self) -> Vec<((String, String, &'static str), u64)> {
        let c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn count(&self, m: &Claimed, outcome: &'static str) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry((m.channel.clone(), m.kind.clone(), outcome))
            .or_default() += 1;
    }

    /// Stops claiming and waits for the deliveries in flight to be
    /// recorded (a stopping node leaves no message leased to nobody).
    pub async fn drain(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
        let _idle = self.busy.lock().await;
    }

    /// Delivers due messages of every shard until the process ends.
    pub fn spawn(self: &Arc<Self>, shards: Vec<Db>) {
        let this = self.clone();
        tokio::spawn(async move {
            let poll = Duration::from_millis(this.config.outbox.poll_ms);
            loop {
                tokio::select! {
                    _ = this.wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
                if shards.iter().all(Db::is_closed)
                    || this.stopping.load(std::sync::atomic::Ordering::SeqCst)
                {
                    return;
                }
                let _busy = this.busy.lock().await;
                for db in &shards {
                    if this.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    loop {
                        match this.run_once(db).await {
                            Ok(n) if n as u64 == BATCH => continue,
                            Ok(_) => break,
                            Err(e) => {
                                if !db.is_closed() {
                                    tracing::warn!(error = %e, "outbox: claiming failed");
                                }
                                break;
                            }
                        }
                    }
                }
            }
        });
    }

    /// One claim and its deliveries; returns how many were claimed. Each
    /// delivery has a deadline well inside the lease, and its outcome is
    /// written as soon as it is known: a slow one never leaves finished
    /// ones unrecorded until the lease runs out (and they go out twice).
    pub async fn run_once(&self, db: &Db) -> Result<usize, DbError> {
        let mut tx = db.control().await?;
        let claimed = outbox::claim(&mut tx, now_ms(), LEASE_MS, BATCH).await?;
        tx.commit().await?;
        let n = claimed.len();
        futures_util::future::join_all(claimed.iter().map(|m| async move {
            let outcome = match tokio::time::timeout(DELIVERY_TIMEOUT, self.deliver(m)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Failure::transient("delivery timed out")),
            };
            if let Err(e) = self.record(db, m, outcome).await {
                tracing::warn!(message = %m.id, error = %e, "outbox: could not record an outcome");
            }
        }))
        .await;
        Ok(n)
    }

    async fn record(
        &self,
        db: &Db,
        m: &Claimed,
        outcome: Result<(), Failure>,
    ) -> Result<(), DbError> {
        let mut tx = db.control().await?;
        let now = now_ms();
        match outcome {
            Ok(()) => {
                outbox::delivered(&mut tx, &m.id, now).await?;
                tx.commit().await?;
                self.count(m, "sent");
            }
            Err(failure) => {
                let attempts = u32::try_from(m.attempts).unwrap_or(u32::MAX);
                let retry_at = (!failure.permanent && attempts < self.config.outbox.max_attempts)
                    .then(|| {
                        let jitter = rand::random::<f64>();
                        now + self.config.outbox.retry_delay_ms(attempts, jitter) as i64
                    });
                tracing::warn!(
                    message = %m.id, channel = %m.channel, kind = %m.kind, attempts,
                    dead = retry_at.is_none(), error = %failure.message, "outbox: delivery failed"
                );
                outbox::failed(&mut tx, &m.id, &failure.message, retry_at).await?;
                tx.commit().await?;
                self.count(
                    m,
                    if retry_at.is_some() {
                        "retried"
                    } else {
                        "dead"
                    },
                );
            }
        }
        Ok(())
    }

    async fn deliver(&self, m: &Claimed) -> Result<(), Failure> {
        if now_ms() > m.created_at + max_age_ms(&m.kind) {
            return Err(Failure::permanent("expired before it could be delivered"));
        }
        let sealed = m
            .payload
            .as_deref()
            .ok_or_else(|| Failure::permanent("the payload is gone"))?;
        let plain = self
            .master_key
            .open(sealed, &payload_context(&m.project_id, &m.id))
            .map_err(|_| Failure::permanent("the payload cannot be opened with this master key"))?;
        match m.channel.as_str() {
            EMAIL => {
                let p: EmailPayload = serde_json::from_slice(&plain)
                    .map_err(|e| Failure::permanent(format!("damaged email payload: {e}")))?;
                self.send_email(m, p).await
            }
            SMS => {
                let p: SmsPayload = serde_json::from_slice(&plain)
                    .map_err(|e| Failure::permanent(format!("damaged SMS payload: {e}")))?;
                self.send_sms(m, &p).await
            }
            other => Err(Failure::permanent(format!("unknown channel {other}"))),
        }
    }

    async fn send_email(&self, m: &Claimed, p: EmailPayload) -> Result<(), Failure> {
        let Some(smtp) = &self.smtp else {
            if self.config.dev_mode {
                tracing::info!(
                    message = %m.id, kind = %m.kind, to = %p.to, subject = %p.subject,
                    text = %p.text, "email (dev mode, no IDENTITY_SMTP_URL: logged, not sent)"
                );
                return Ok(());
            }
            return Err(Failure::transient(
                "email is not configured (IDENTITY_SMTP_URL)",
            ));
        };
        let from = Mailbox::new(
            p.from_name,
            self.config
                .email_from
                .parse()
                .map_err(|e| Failure::permanent(format!("IDENTITY_EMAIL_FROM: {e}")))?,
        );
        let to: Mailbox =
            p.to.parse()
                .map_err(|e| Failure::permanent(format!("recipient: {e}")))?;
        let builder = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(p.subject)
            .message_id(Some(format!(
                "<{}@{}>",
                m.id,
                self.config
                    .email_from
                    .rsplit_once('@')
                    .map_or("localhost", |(_, d)| d)
            )));
        let message = match p.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(p.text, html)),
            None => builder.header(ContentType::TEXT_PLAIN).body(p.text),
        }
        .map_err(|e| Failure::permanent(format!("building the message: {e}")))?;
        smtp.send(message).await.map(drop).map_err(|e| Failure {
            permanent: e.is_permanent(),
            message: format!("SMTP: {e}"),
        })
    }

    async fn send_sms(&self, m: &Claimed, p: &SmsPayload) -> Result<(), Failure> {
        let Some(sms) = &self.config.sms else {
            if self.config.dev_mode {
                tracing::info!(
                    message = %m.id, kind = %m.kind, to = %p.to, body = %p.body,
                    "SMS (dev mode, no IDENTITY_SMS_WEBHOOK_URL: logged, not sent)"
                );
                return Ok(());
            }
            return Err(Failure::transient(
                "SMS is not configured (IDENTITY_SMS_WEBHOOK_URL)",
            ));
        };
        let body = serde_json::to_vec(p).map_err(|e| Failure::permanent(e.to_string()))?;
        let timestamp = now_ms() / 1000;
        let response = self
            .http
            .post(&sms.url)
            .header("content-type", "application/json")
            .header("webhook-id", &m.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                sms.secret.sign(&m.id, timestamp, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::transient(format!("SMS webhook: {}", without_url(&e))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // A refusal the receiver will repeat is final; a timeout, a rate
        // limit or a server error is worth another attempt.
        Err(Failure {
            permanent: status.is_client_error()
                && status != reqwest::StatusCode::REQUEST_TIMEOUT
                && status != reqwest::StatusCode::TOO_MANY_REQUESTS,
            message: format!("SMS webhook answered {status}"),
        })
    }
}

/// Why a delivery failed, and whether trying again could help.
struct Failure {
    message: String,
    permanent: bool,
}

impl Failure {
    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// How long a message of `kind` is worth delivering: no later than the
/// secret it carries lives.
fn max_age_ms(kind: &str) -> i64 {
    const MINUTE: i64 = 60_000;
    match kind {
        "email_code" | "phone_code" => 10 * MINUTE,
        "magic_link" => 15 * MINUTE,
        "password_reset" => 60 * MINUTE,
        "verification" | "email_change" => 24 * 60 * MINUTE,
        _ => 7 * 24 * 60 * MINUTE,
    }
}

/// A reqwest error without its URL (which may carry a token).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    kind.to_string()
}

/// Whether the configured SMTP server accepts a connection (and the
/// credentials): `identity doctor`'s check.
pub async fn smtp_reachable(s: &SmtpSettings) -> Result<(), String> {
    let transport = smtp_transport(s)?;
    match transport.test_connection().await {
        Ok(true) => Ok(()),
        Ok(false) => Err("the server did not answer NOOP".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn smtp_transport(s: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = match s.tls {
        SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host),
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host),
        SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &s.host,
        )),
    }
    .map_err(|e| format!("IDENTITY_SMTP_URL: {e}"))?;
    let mut builder = builder.port(s.port).timeout(Some(SMTP_TIMEOUT));
    if let (Some(user), Some(password)) = (&s.user, &s.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
    }
    Ok(builder.build())
}
