//! The commands of `cobro-admin`, as a library so tests drive them without a process. Each
//! command returns what it prints: JSON for data, one line for a change. Every change goes
//! through the same validation as the API (`Store::put_tenant`), and can be repeated safely.

use clap::{Args, Parser, Subcommand};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cobro::adapters::aws::{DynamoTable, SecretsManager, SqsQueue};
use cobro::adapters::dir_secrets::DirSecrets;
use cobro::adapters::sqlite::SqliteStore;
use cobro::collect::StrategyBook;
use cobro::compliance::Policy;
use cobro::domain::{AccountId, ChannelKind, DebtorId, Tenant, TenantId};
use cobro::ports::secrets::whatsapp_number_secret;
use cobro::ports::{Outgoing, Queue, Secrets, WhatsAppSecrets};
use cobro::repo::{BackfillOptions, Scope, Store, WhatsAppNumber};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "cobro-admin", version, about = "Operate a cobro deployment")]
pub struct Cli {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub names: AwsNames,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// The local stack's data directory (holds cobro.db, blobs/ and secrets/).
    #[arg(long, value_name = "DIR")]
    pub local: Option<PathBuf>,
    /// The AWS deployment the credentials in the environment reach.
    #[arg(long)]
    pub aws: bool,
}

#[derive(Debug, Args)]
pub struct AwsNames {
    /// The DynamoDB table (AWS).
    #[arg(long, env = "COBRO_TABLE")]
    pub table: Option<String>,
    /// The prefix of per-number secrets (AWS): `<prefix>whatsapp/<phone_number_id>`.
    #[arg(long, env = "COBRO_SECRETS_PREFIX", default_value = "")]
    pub secrets_prefix: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// A tenant's CRM API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// WhatsApp Business numbers.
    #[command(subcommand)]
    Whatsapp(WhatsAppCommand),
    /// A tenant's strategy book.
    #[command(subcommand)]
    Strategy(BookCommand),
    /// A tenant's compliance policy.
    #[command(subcommand)]
    Policy(BookCommand),
    /// Channels stopped for a tenant by an account-wide provider error.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Dead-letter queues.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// A tenant's stored payments.
    #[command(subcommand)]
    Payments(PaymentsCommand),
    /// Why an account was or wasn't contacted: its decisions, newest first, and its attempts.
    Why {
        #[arg(long)]
        tenant: String,
        account: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Creates or replaces a tenant from a JSON or YAML file (`-`: standard input, JSON).
    Create { file: PathBuf },
    /// Prints a tenant.
    Show { id: String },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issues a key and prints its secret: the only time it is ever shown.
    Issue {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Repeat or comma-separate: accounts:read, accounts:write, payments:write, exports,
        /// agent, admin.
        #[arg(long = "scope", required = true, value_delimiter = ',')]
        scopes: Vec<Scope>,
    },
    /// Revokes a key by id: from then on it gets 401. Revoking twice is not an error.
    Revoke {
        #[arg(long)]
        tenant: String,
        key_id: String,
    },
    /// The tenant's keys, revoked ones included; never a secret.
    List {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WhatsAppCommand {
    /// Routes a number's webhooks to a tenant and stores its secrets (a JSON file with
    /// `access_token`, `app_secret`, `verify_token`; `-`: standard input) in the secrets store.
    Register {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        phone_number_id: String,
        #[arg(long)]
        display_phone_number: String,
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// The tenant's stopped channels: when, the provider's code and why.
    Stops {
        #[arg(long)]
        tenant: String,
    },
    /// Lets the channel send again, once what stopped it is fixed at the provider (a token
    /// renewed, a payment method added, a block lifted). Resuming one that runs is no error.
    Resume {
        #[arg(long)]
        tenant: String,
        /// `whatsapp`, `sms` or `email`.
        #[arg(long, value_parser = channel_kind)]
        channel: ChannelKind,
    },
}

fn channel_kind(s: &str) -> Result<ChannelKind, String> {
    serde_json::from_value(Value::String(s.to_string()))
        .map_err(|_| format!("`{s}` is not a channel (whatsapp, sms, email)"))
}

#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// Gives payments stored before cobro kept them (the payment-id record, `recorded_at`
    /// with its recorded-index entry, the month index) what they lack, never overwriting;
    /// prints what it found and wrote. Safe to run again; `--after-debtor` resumes a run that
    /// stopped (it prints where).
    Backfill {
        #[arg(long)]
        tenant: String,
        /// Count what would be written; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Start after this debtor id (the `last_debtor` of an earlier run).
        #[arg(long, value_name = "DEBTOR")]
        after_debtor: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BookCommand {
    /// Checks a JSON or YAML file; errors name the field. A policy is also checked against the
    /// country's preset when `--country` is given.
    Validate {
        file: PathBuf,
        #[arg(long)]
        country: Option<String>,
    },
    /// Validates and stores it on the tenant.
    Load {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Moves dead-lettered messages back to their source queue: locally by name (`outbound`,
    /// `inbound`, `payments`), on AWS by URLs. Each message is sent before it is deleted, so
    /// an interrupted replay repeats a message at worst (every handler is idempotent).
    Replay {
        /// The source queue's name (local).
        queue: Option<String>,
        /// The dead-letter queue's URL (AWS).
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// The source queue's URL (AWS).
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// Stop after this many messages.
        #[arg(long, default_value_t = 10_000)]
        max: u32,
    },
}

/// Where the commands act: the store, the secrets and the queues of one deployment.
pub struct Target {
    pub store: Store,
    pub secrets: Arc<dyn Secrets>,
    pub secrets_prefix: String,
    queues: Queues,
}

enum Queues {
    Local(SqliteStore),
    Aws(aws_sdk_sqs::Client),
}

impl Target {
    /// The local stack's data directory, as `cobro-local` lays it out.
    pub fn local(dir: &Path) -> Result<Self, Error> {
        let db = dir.join("cobro.db");
        if !db.exists() {
            return Err(format!(
                "{} does not exist: run the local stack once first",
                db.display()
            )
            .into());
        }
        let sqlite = SqliteStore::open(&db)?;
        Ok(Self {
            store: Store::new(Arc::new(sqlite.table())),
            secrets: Arc::new(DirSecrets::new(dir.join("secrets"))),
            secrets_prefix: String::new(),
            queues: Queues::Local(sqlite),
        })
    }

    /// An AWS deployment through `config` (credentials and region from the environment, or
    /// an emulator's endpoint).
    pub fn aws(config: &aws_config::SdkConfig, table: &str, secrets_prefix: &str) -> Self {
        Self {
            store: Store::new(Arc::new(DynamoTable::new(
                cobro::adapters::aws::dynamodb_client(config),
                table,
            ))),
            secrets: Arc::new(SecretsManager::new(aws_sdk_secretsmanager::Client::new(
                config,
            ))),
            secrets_prefix: secrets_prefix.to_string(),
            queues: Queues::Aws(aws_sdk_sqs::Client::new(config)),
        }
    }
}

/// Parses the arguments' target and runs the command.
pub async fn run(cli: Cli) -> Result<String, Error> {
    let target = match (&cli.target.local, cli.target.aws) {
        (Some(dir), _) => Target::local(dir)?,
        (None, true) => {
            let table = cli
                .names
                .table
                .as_deref()
                .ok_or("--aws needs --table or COBRO_TABLE")?;
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(cobro::adapters::aws::config::system_https_client())
                .load()
                .await;
            Target::aws(&config, table, &cli.names.secrets_prefix)
        }
        (None, false) => return Err("name a target: --local <dir> or --aws".into()),
    };
    execute(&target, cli.command).await
}

/// Runs one command against `target`.
pub async fn execute(target: &Target, command: Command) -> Result<String, Error> {
    match command {
        Command::Tenant(TenantCommand::Create { file }) => {
            let tenant: Tenant = read_json(&file)?;
            target.store.put_tenant(&tenant).await?;
            Ok(format!("tenant `{}` stored", tenant.id))
        }
        Command::Tenant(TenantCommand::Show { id }) => {
            let tenant = existing_tenant(target, &id).await?;
            Ok(serde_json::to_string_pretty(&tenant)?)
        }
        Command::Key(KeyCommand::Issue {
            tenant,
            name,
            scopes,
        }) => {
            let tenant = existing_tenant(target, &tenant).await?;
            let issued = target
                .store
                .issue_api_key(&tenant.id, &name, &scopes, jiff::Timestamp::now())
                .await?;
            Ok(serde_json::to_string_pretty(&json!({
                "id": issued.id,
                "secret": issued.secret,
                "key": issued.record,
            }))?)
        }
        Command::Key(KeyCommand::Revoke { tenant, key_id }) => {
            let tenant = TenantId::parse(&tenant).map_err(|e| format!("--tenant: {e}"))?;
            if target
                .store
                .revoke_api_key(&tenant, &key_id, jiff::Timestamp::now())
                .await?
            {
                Ok(format!("key {key_id} of tenant `{tenant}` is revoked"))
            } else {
                Err(format!("tenant `{tenant}` has no key {key_id}").into())
            }
        }
        Command::Key(KeyCommand::List { tenant }) => {
            let tenant = TenantId::parse(&tenant).map_err(|e| format!("--tenant: {e}"))?;
            let keys = target.store.list_api_keys(&tenant).await?;
            Ok(serde_json::to_string_pretty(&keys)?)
        }
        Command::Whatsapp(WhatsAppCommand::Register {
            tenant,
            phone_number_id,
            display_phone_number,
            secrets,
        }) => {
            let tenant = existing_tenant(target, &tenant).await?;
            let name = whatsapp_number_secret(&target.secrets_prefix, &phone_number_id);
            cobro::ports::secrets::check_name(&name)?;
            if let Some(file) = secrets {
                let value: WhatsAppSecrets = read_json(&file)?;
                if value.app_secret.is_empty() {
                    return Err(
                        "app_secret: is empty; the webhook needs it to verify deliveries".into(),
                    );
                }
                target.secrets.put(&name, &value.to_json()).await?;
            }
            target
                .store
                .put_whatsapp_number(&WhatsAppNumber {
                    phone_number_id: phone_number_id.clone(),
                    tenant: tenant.id.clone(),
                    display_phone_number,
                })
                .await?;
            Ok(format!(
                "number {phone_number_id} routes to tenant `{}`{}",
                tenant.id,
                if target.secrets.get(&name).await?.is_some() {
                    format!("; its secrets are in `{name}`")
                } else {
                    "; it has no secrets of its own (the deployment's app secret verifies it)"
                        .into()
                }
            ))
        }
        Command::Channel(ChannelCommand::Stops { tenant }) => {
            let tenant = existing_tenant(target, &tenant).await?;
            let stops = target.store.channel_stops(&tenant.id).await?;
            Ok(serde_json::to_string_pretty(&stops)?)
        }
        Command::Channel(ChannelCommand::Resume { tenant, channel }) => {
            let tenant = existing_tenant(target, &tenant).await?;
            let stops = target.store.channel_stops(&tenant.id).await?;
            let Some(stop) = stops.into_iter().find(|s| s.channel == channel) else {
                return Ok(format!(
                    "{} is not stopped for tenant `{}`",
                    channel.as_str(),
                    tenant.id
                ));
            };
            target.store.resume_channel(&tenant.id, channel).await?;
            Ok(format!(
                "{} resumed for tenant `{}` (stopped at {}: {})",
                channel.as_str(),
                tenant.id,
                stop.at,
                stop.reason
            ))
        }
        Command::Strategy(BookCommand::Validate { file, .. }) => {
            let book: StrategyBook = read_json(&file)?;
            book.validate()
                .map_err(|e| format!("{}: {}", e.field, e.message))?;
            Ok(format!("{} is a valid strategy book", file.display()))
        }
        Command::Strategy(BookCommand::Load { tenant, file }) => {
            let book: StrategyBook = read_json(&file)?;
            let named = book.named_templates();
            let mut tenant = existing_tenant(target, &tenant).await?;
            tenant.strategies = Some(book);
            target.store.put_tenant(&tenant).await?;
            // As `PUT /v1/settings/strategies`: the templates it names are tried at their next
            // message, even if Meta refused them lately (they may have been fixed).
            target
                .store
                .clear_template_refusals(&tenant.id, &named, jiff::Timestamp::now())
                .await?;
            Ok(format!("strategy book loaded for tenant `{}`", tenant.id))
        }
        Command::Policy(BookCommand::Validate { file, country }) => {
            let policy: Policy = read_json(&file)?;
            policy
                .validate()
                .map_err(|e| format!("{}: {}", e.field, e.message))?;
            if let Some(country) = country {
                let preset = cobro::compliance::preset(&country)
                    .ok_or_else(|| format!("--country: no compliance preset for `{country}`"))?;
                policy
                    .check_tightens(preset)
                    .map_err(|e| format!("{}: {}", e.field, e.message))?;
            }
            Ok(format!("{} is a valid compliance policy", file.display()))
        }
        Command::Policy(BookCommand::Load { tenant, file }) => {
            let policy: Policy = read_json(&file)?;
            let mut tenant = existing_tenant(target, &tenant).await?;
            tenant.policy = Some(policy);
            target.store.put_tenant(&tenant).await?;
            Ok(format!(
                "compliance policy loaded for tenant `{}`",
                tenant.id
            ))
        }
        Command::Dlq(DlqCommand::Replay {
            queue,
            from,
            to,
            max,
        }) => {
            let (dlq, source): (Arc<dyn Queue>, Arc<dyn Queue>) =
                match (&target.queues, queue, from, to) {
                    (Queues::Local(sqlite), Some(name), None, None) => {
                        if !["outbound", "inbound", "payments"].contains(&name.as_str()) {
                            return Err(format!(
                                "queue: `{name}` is not one of outbound, inbound, payments"
                            )
                            .into());
                        }
                        (
                            Arc::new(sqlite.queue(&format!("{name}-dlq"), None)),
                            Arc::new(sqlite.queue(&name, None)),
                        )
                    }
                    (Queues::Aws(client), None, Some(from), Some(to)) => (
                        Arc::new(SqsQueue::new(client.clone(), from)),
                        Arc::new(SqsQueue::new(client.clone(), to)),
                    ),
                    (Queues::Local(_), ..) => {
                        return Err(
                            "locally, name the source queue: outbound, inbound or payments".into(),
                        )
                    }
                    (Queues::Aws(_), ..) => {
                        return Err(
                            "on AWS, give --from <dead-letter queue URL> --to <source queue URL>"
                                .into(),
                        )
                    }
                };
            let moved = replay(dlq.as_ref(), source.as_ref(), max).await?;
            Ok(format!("{moved} message(s) moved back to the source queue"))
        }
        Command::Payments(PaymentsCommand::Backfill {
            tenant,
            dry_run,
            after_debtor,
        }) => {
            let tenant = existing_tenant(target, &tenant).await?;
            let after_debtor = after_debtor
                .map(|d| DebtorId::parse(&d).map_err(|e| format!("--after-debtor: {e}")))
                .transpose()?;
            let options = BackfillOptions {
                dry_run,
                after_debtor,
            };
            match target.store.backfill_payments(&tenant.id, &options).await {
                Ok(done) => Ok(serde_json::to_string_pretty(&done)?),
                Err(stopped) => Err(format!(
                    "{stopped}; so far: {}",
                    serde_json::to_string(&stopped.so_far)?
                )
                .into()),
            }
        }
        Command::Why { tenant, account } => {
            let tenant = TenantId::parse(&tenant).map_err(|e| format!("--tenant: {e}"))?;
            let account = AccountId::parse(&account).map_err(|e| format!("account: {e}"))?;
            let why = cobro::explain::why(&target.store, &tenant, &account)
                .await?
                .ok_or_else(|| format!("no account `{account}` for tenant `{tenant}`"))?;
            Ok(serde_json::to_string_pretty(&why)?)
        }
    }
}

/// How long a message being moved stays hidden: a replay that dies midway leaves it to come
/// back on the dead-letter queue for the next replay.
const REPLAY_VISIBILITY: Duration = Duration::from_secs(60);

/// Moves up to `max` messages from `dlq` to `source`: each is sent, then deleted.
pub async fn replay(dlq: &dyn Queue, source: &dyn Queue, max: u32) -> Result<u32, Error> {
    let mut moved = 0;
    while moved < max {
        let batch = dlq
            .receive((max - moved).min(10), REPLAY_VISIBILITY)
            .await?;
        if batch.is_empty() {
            break;
        }
        let outgoing: Vec<Outgoing> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| Outgoing::new(i.to_string(), m.body.clone()))
            .collect();
        source.send_batch(outgoing).await?;
        for m in &batch {
            dlq.delete(&m.receipt).await?;
        }
        moved += batch.len() as u32;
    }
    Ok(moved)
}

async fn existing_tenant(target: &Target, id: &str) -> Result<Tenant, Error> {
    let id = TenantId::parse(id).map_err(|e| format!("tenant: {e}"))?;
    target
        .store
        .tenant(&id)
        .await?
        .ok_or_else(|| format!("no tenant `{id}`: create it first").into())
}

/// A JSON or YAML (`.yaml`, `.yml`) file (`-`: standard input, JSON) as `T`; a bad value's
/// error names its field.
fn read_json<T: DeserializeOwned>(file: &Path) -> Result<T, Error> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?
    };
    let yaml = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let named =
        |path: String, e: String| -> Error { format!("{}: {}: {e}", file.display(), path).into() };
    if yaml {
        serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(&text))
            .map_err(|e| named(e.path().to_string(), e.inner().to_string()))
    } else {
        let de = &mut serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(de)
            .map_err(|e| named(e.path().to_string(), e.inner().to_string()))
    }
}

/// The value a command printed, as JSON (for tests and scripts).
pub fn parse_output(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|_| json!(out))
}
