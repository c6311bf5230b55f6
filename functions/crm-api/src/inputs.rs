//! Request bodies. Unknown fields are rejected, so a typo is an error that names the field
//! instead of a silent default.

use jiff::{civil::Date, Timestamp};
use serde::Deserialize;

use cobro::domain::{
    Account, AccountId, AccountStatus, ChannelKind, Consent, Currency, Debtor, DebtorId, Language,
    PaymentId, Phone, TenantId, Zone, MAX_MINOR,
};
use cobro::http::Problem;
use cobro::repo::PaymentConfirmed;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DebtorInput {
    pub name: String,
    /// E.164: `+` then digits.
    #[schema(value_type = String, example = "+56912345678")]
    pub phone: Phone,
    #[serde(default)]
    pub email: Option<String>,
    /// IANA time zone.
    #[schema(value_type = String, example = "America/Santiago")]
    pub time_zone: Zone,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "es")]
    pub language: Language,
    #[serde(default)]
    pub consents: Vec<ConsentInput>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    #[schema(value_type = String, example = "whatsapp")]
    pub channel: ChannelKind,
    pub granted: bool,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<Timestamp>,
    #[serde(default)]
    pub source: Option<String>,
}

impl ConsentInput {
    pub fn into_consent(self, now: Timestamp) -> Consent {
        Consent {
            channel: self.channel,
            granted: self.granted,
            at: self.at.unwrap_or(now),
            source: self.source.unwrap_or_else(|| "crm".into()),
        }
    }
}

impl DebtorInput {
    pub fn into_debtor(self, tenant: TenantId, id: DebtorId, now: Timestamp) -> Debtor {
        Debtor {
            tenant,
            id,
            name: self.name,
            phone: self.phone,
            email: self.email,
            time_zone: self.time_zone,
            language: self.language,
            consents: self
                .consents
                .into_iter()
                .map(|c| c.into_consent(now))
                .collect(),
            preferences: Default::default(),
            holds: Default::default(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    #[schema(value_type = String)]
    pub debtor_id: DebtorId,
    /// ISO 4217.
    #[schema(value_type = String, example = "CLP")]
    pub currency: Currency,
    pub principal_minor: i64,
    pub balance_minor: i64,
    #[schema(value_type = String, format = Date)]
    pub due_date: Date,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "open")]
    pub status: Option<AccountStatus>,
    #[serde(default)]
    pub product: Option<String>,
    /// Who is owed, when it is not the tenant (required of an agency): messages name it as the
    /// creditor. At most 200 characters.
    #[serde(default)]
    pub creditor: Option<String>,
    /// Lawsuit served, insolvency, open dispute, pause: what stops collection by law or policy.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub holds: Option<cobro::compliance::Holds>,
    /// Labels strategy segments can match on.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl AccountInput {
    /// The holds the CRM sent, else the current ones. An open dispute is never closed by a
    /// PUT: the debtor may have opened it in the chat after the CRM's last sync, so a
    /// restatement without it would silently resume collection on a contested debt; it is
    /// closed by `POST /v1/accounts/{id}/resolve-dispute`.
    fn holds_over(&self, current: Option<&Account>) -> cobro::compliance::Holds {
        let current = current.map(|c| c.holds.clone());
        let mut holds = self
            .holds
            .clone()
            .or_else(|| current.clone())
            .unwrap_or_default();
        holds.dispute_open |= current.is_some_and(|c| c.dispute_open);
        holds
    }

    /// The account as the CRM sends it. What it leaves out that an action set (holds; a
    /// closed or paused status) is kept from `current`.
    pub fn into_account(
        self,
        tenant: &cobro::domain::Tenant,
        id: AccountId,
        current: Option<&Account>,
    ) -> Result<Account, Problem> {
        let creditor = cobro::domain::check_creditor(tenant.kind, self.creditor.as_deref())
            .map_err(|why| Problem::invalid_field("creditor", why))?;
        for (field, minor) in [
            ("principal_minor", self.principal_minor),
            ("balance_minor", self.balance_minor),
        ] {
            if !(0..=MAX_MINOR).contains(&minor) {
                return Err(Problem::invalid_field(
                    field,
                    format!("must be 0 to {MAX_MINOR} minor units"),
                ));
            }
        }
        if let Some(c) = current.filter(|c| c.currency != self.currency) {
            return Err(Problem::invalid_field(
                "currency",
                cobro::repo::currency_change(c, self.currency),
            ));
        }
        let status = match self.status {
            // A zero balance is settled whatever the CRM calls it, so nothing reminds of it.
            _ if self.balance_minor == 0 => AccountStatus::Settled,
            Some(s) => s,
            None => match current.map(|c| c.status) {
                Some(s @ (AccountStatus::Closed | AccountStatus::Paused)) => s,
                _ => AccountStatus::Open,
            },
        };
        let holds = self.holds_over(current);
        Ok(Account {
            status,
            creditor,
            product: self.product,
            holds,
            tags: self.tags,
            ..Account::new(
                tenant.id.clone(),
                id,
                self.debtor_id,
                self.currency,
                self.principal_minor,
                self.balance_minor,
                self.due_date,
            )
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    #[schema(value_type = String)]
    pub account_id: AccountId,
    /// The payment's id in the CRM or at the provider: sending it twice applies it once.
    #[schema(value_type = String)]
    pub payment_id: PaymentId,
    pub amount_minor: i64,
    #[schema(value_type = String, example = "CLP")]
    pub currency: Currency,
    /// When it was paid (default: now); at most 5 minutes ahead of cobro's clock.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paid_at: Option<Timestamp>,
    #[serde(default)]
    pub method: Option<String>,
}

impl PaymentInput {
    pub fn into_event(self, tenant: TenantId, now: Timestamp) -> Result<PaymentConfirmed, Problem> {
        if self.amount_minor <= 0 || self.amount_minor > MAX_MINOR {
            return Err(Problem::invalid_field(
                "amount_minor",
                format!("must be a positive number of minor units, at most {MAX_MINOR}"),
            ));
        }
        // Refused, not queued: applied, it would move the account's reminders to that day.
        if let Some(paid_at) = self.paid_at {
            if let Some(why) = cobro::repo::paid_at_too_late(paid_at, now) {
                return Err(Problem::invalid_field("paid_at", why));
            }
        }
        Ok(PaymentConfirmed {
            tenant,
            account: self.account_id,
            payment_id: self.payment_id,
            amount_minor: self.amount_minor,
            currency: self.currency,
            paid_at: self.paid_at.unwrap_or(now),
            method: self.method.unwrap_or_else(|| "unknown".into()),
            source: "crm".into(),
        })
    }
}
